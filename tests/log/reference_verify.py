"""The verifier as it was before issue 10, entry by entry: an oracle for the bulk one.

`verify_log` here and in `auditkeep.log.verify` must report the same findings for any
tampering; `tests/log/test_verify_bulk.py` checks that on larger logs than the CLI tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from auditkeep.errors import CorruptionError
from auditkeep.log.merkle import CompactTree
from auditkeep.log.note import Verifier
from auditkeep.log.verify import (
    _RAW_KEY,
    _WINDOW,
    Finding,
    LogReport,
    _check_checkpoints,
    _check_raws,
    entry_seq,
)
from auditkeep.storage.base import TILE_WIDTH, Backend, LogInfo


def _positions(store: Backend, info: LogInfo, report: LogReport,
               index: list[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """(position, entry) in stored order, reporting gaps, overlaps and unreadable bundles."""
    expected = 0
    for w in range(0, len(index), _WINDOW):
        window = index[w : w + _WINDOW]
        lo, hi = window[0][0], window[-1][0] + window[-1][1]
        try:
            bundles = store.read_bundles(info.id, lo, hi)
        except CorruptionError:
            bundles = []
            for first, count in window:
                try:
                    bundles.extend(b for b in store.read_bundles(info.id, first, first + count)
                                   if b.first_seq == first)
                except CorruptionError as exc:
                    report.findings.append(Finding(
                        info.name, "corrupt", f"{exc}; entries {first}..{first + count - 1} "
                        "cannot be read", seq=first))
        by_first = {b.first_seq: b for b in bundles}
        for first, count in window:
            b = by_first.get(first)
            if b is None:
                continue
            if first > expected:
                report.findings.append(Finding(
                    info.name, "deleted", f"entries {expected}..{first - 1} are missing "
                    f"(next stored entry is {first})", seq=expected))
            elif first < expected:
                report.findings.append(Finding(
                    info.name, "inserted", f"a bundle at seq {first} overlaps entries already "
                    f"stored up to {expected - 1}", seq=first))
                continue
            for i, entry in enumerate(b.entries):
                yield first + i, entry
            expected = first + count
    if expected < info.size:
        report.findings.append(Finding(
            info.name, "deleted", f"entries {expected}..{info.size - 1} are missing: the log's "
            f"size is {info.size} but stored entries end at {expected}", seq=expected))


def verify_log(store: Backend, info: LogInfo, verifiers: Sequence[Verifier],
               journal: Sequence[str] = ()) -> LogReport:
    report = LogReport(info.name)
    index = store.bundle_index(info.id)
    tree = CompactTree()
    # Per level: hashes of the tile being filled. Nodes of a level complete in index
    # order, so a tile is full after 256 appends (no division per node: hot loop).
    computed: list[list[bytes]] = [[] for _ in range(64)]
    tile_idx = [0] * 64
    sha256 = hashlib.sha256
    roots: dict[int, bytes] = {0: tree.root()}
    checkpoints = store.checkpoints(info.id)
    sizes = {cp.size for cp in checkpoints} | {info.size}
    bad_leaves: list[int] = []
    with_raw: list[tuple[int, bytes]] = []

    upper_mismatch: list[tuple[int, int]] = []

    def flush_tile(level: int) -> None:
        idx = tile_idx[level]
        stored = store.read_tile_range(info.id, level, idx, idx + 1)
        mine = b"".join(computed[level])
        got = stored[0] if stored else b""
        if got[: len(mine)] != mine:
            for i in range(0, len(mine), 32):
                if got[i : i + 32] != mine[i : i + 32]:
                    node = idx * TILE_WIDTH + i // 32
                    if level == 0:
                        bad_leaves.append(node)
                    else:
                        upper_mismatch.append((level, node))
                        break
        computed[level] = []
        tile_idx[level] = idx + 1

    for leaf_pos, (pos, entry) in enumerate(_positions(store, info, report, index)):
        if pos != leaf_pos:
            # A gap was reported; leaves cannot be placed, so stop building the tree here.
            break
        seq = entry_seq(entry)
        leaf = sha256(b"\x00" + entry).digest()
        if _RAW_KEY in entry:
            with_raw.append((pos, entry))
        if seq != pos:
            report.findings.append(Finding(
                info.name, "reordered" if seq is not None and seq < info.size else "inserted",
                f"position {pos} holds an entry for seq {seq}", seq=pos))
        for level, _, h in tree.append(leaf):
            buf = computed[level]
            buf.append(h)
            if len(buf) == TILE_WIDTH:
                flush_tile(level)
        if tree.size in sizes:
            roots[tree.size] = tree.root()
    for level, buf in enumerate(computed):
        if buf:
            flush_tile(level)
    reported = {f.seq for f in report.findings}
    for node in sorted(bad_leaves):
        if node not in reported:
            report.findings.append(Finding(
                info.name, "modified", "the entry's bytes no longer hash to the leaf "
                "recorded when it was appended", seq=node))
    if not bad_leaves:
        for level, node in upper_mismatch:
            report.findings.append(Finding(
                info.name, "tile-mismatch", f"stored node ({level}, {node}) differs from the "
                "node recomputed from the entries (proofs served from it would fail)",
                seq=node << level))
    report.entries = tree.size
    extra = [b for b in index if b[0] >= info.size]
    for first, count in extra:
        report.findings.append(Finding(
            info.name, "inserted", f"{count} entries stored beyond the log's size {info.size}",
            seq=first))
    _check_raws(store, info, report, with_raw, store.erased_seqs(info.id))
    _check_checkpoints(info, report, checkpoints, roots, verifiers, journal, bad_leaves)
    return report
