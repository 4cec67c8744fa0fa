"""Sealing: writing each due range of each log to the archive as Parquet plus a signed
manifest, and recording it with `put_archive`.

A range [first, first + W) is due once a persisted checkpoint covers it and it is not
archived yet. Every leaf is hashed from the entry bytes and compared with the stored
level-0 tile, and the subtree root with the stored node, before anything is written:
an archive never holds what the tree does not. The Parquet file goes first and the
manifest last, so a manifest's presence means its range is complete.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from auditkeep.archive.manifest import PARQUET, SUFFIX, Manifest, range_name
from auditkeep.archive.objects import Objects
from auditkeep.archive.proofs import check_aligned, range_root, subtree_proof, verify_subtree
from auditkeep.archive.table import range_table, write_parquet
from auditkeep.errors import ConflictError, CorruptionError, NotFoundError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import with_cosignatures
from auditkeep.log.service import LogService, tenant_of
from auditkeep.storage.base import TILE_WIDTH, ArchiveRecord, Backend, LogInfo, StoredCheckpoint

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class SealReport:
    """One archiver pass: the ranges written, and those due but not sealable (why)."""

    sealed: list[ArchiveRecord] = field(default_factory=list)
    skipped: list[tuple[str, int, int, str]] = field(default_factory=list)  # log, first, end, why

    def to_json(self) -> dict[str, object]:
        return {"sealed": [archive_json(r) for r in self.sealed],
                "skipped": [{"log": n, "first": a, "end": b, "reason": why}
                            for n, a, b, why in self.skipped]}


def archive_json(r: ArchiveRecord, log_name: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {"first": r.first, "end": r.end, "url": r.url,
                              "manifest_url": r.manifest_url, "sha256": r.sha256,
                              "checkpoint_size": r.checkpoint_size, "created": r.created}
    if log_name is not None:
        out = {"log": log_name, **out}
    return out


class Archiver:
    """Seals the due ranges of every log into one archive. One pass at a time."""

    __slots__ = ("_lock", "logs", "objects", "width")

    def __init__(self, logs: LogService, objects: Objects, width: int) -> None:
        check_aligned(0, width)
        self.logs = logs
        self.objects = objects
        self.width = width
        self._lock = threading.Lock()

    def due(self, info: LogInfo) -> list[int]:
        """First seqs of the ranges a persisted checkpoint covers that no archived range
        overlaps."""
        cp = self.logs.store.latest_checkpoint(info.id)
        if cp is None:
            return []
        # Overlap, not equal firsts: ranges sealed under another `range` setting count.
        done = [(r.first, r.end) for r in self.logs.store.archives(info.id)]
        return [f for f in range(0, cp.size - self.width + 1, self.width)
                if not any(a < f + self.width and b > f for a, b in done)]

    def run(self, *, limit: int | None = None) -> SealReport:
        """Seal what is due now in every log (at most `limit` ranges)."""
        report = SealReport()
        with self._lock:
            for info in self.logs.store.list_logs():
                for first in self.due(info):
                    if limit is not None and len(report.sealed) >= limit:
                        return report
                    end = first + self.width
                    if self.logs.store.purged_ranges(info.id, first, end):
                        # A purged entry's bytes are gone: the range cannot be archived
                        # whole, and an archive with holes could not be rehydrated.
                        report.skipped.append((info.name, first, end,
                                               "purged before it was archived"))
                        continue
                    try:
                        report.sealed.append(self._seal(info, first))
                    except ConflictError as exc:  # purged while being read
                        report.skipped.append((info.name, first, end, exc.detail))
        return report

    def _seal(self, info: LogInfo, first: int) -> ArchiveRecord:
        store, width = self.logs.store, self.width
        end = first + width
        cp = store.latest_checkpoint(info.id)
        if cp is None or cp.size < end:
            raise NotFoundError(f"log {info.name}: no persisted checkpoint covers [{first}, {end})")
        entries = range_entries(self.logs, info, first, end)
        leaves = merkle.leaf_hashes(entries)
        check_leaves(info.name, first, leaves, stored_leaves(store, info.id, first, end))
        level = check_aligned(first, width)
        root = range_root(leaves)
        stored = store.read_nodes(info.id, [(level, first >> level)])[0]
        if root != stored:
            raise CorruptionError(f"log {info.name}: the root of [{first}, {end}) is not the "
                                  f"stored node ({level}, {first >> level})")
        read = lambda coords: store.read_nodes(info.id, coords)  # noqa: E731
        proof = subtree_proof(first, width, cp.size, read)
        verify_subtree(root, first, width, cp.size, proof, cp.root)
        data = write_parquet(range_table(first, entries, leaves))
        digest = hashlib.sha256(data).hexdigest()
        stem = range_name(info.name, first, end)
        origin = info.origin
        signer = self.logs.keys.signer()
        manifest = Manifest(
            info.name, tenant_of(info.name), origin, first, end, width, len(entries),
            stem.rsplit("/", 1)[1] + PARQUET, digest, len(data), root, tuple(proof),
            cosigned_note(self.logs, info.id, cp), cp.size,
            tuple(k.verifier(origin).to_string() for k in self.logs.keys.published()),
            _now())
        self.objects.put(stem + PARQUET, data)
        self.objects.put(stem + SUFFIX, manifest.sign(signer).encode())
        record = ArchiveRecord(info.id, first, end, self.objects.url_of(stem + PARQUET),
                               self.objects.url_of(stem + SUFFIX), digest, cp.size,
                               manifest.created)
        store.put_archive(record)
        log.info("archived %s [%d, %d) to %s", info.name, first, end, record.url)
        return record


def range_entries(logs: LogService, info: LogInfo, first: int, end: int) -> list[bytes]:
    """The stored entries [first, end); ConflictError if any is missing or purged."""
    out: list[bytes] = []
    for b in logs.store.read_bundles(info.id, first, end):
        for i, entry in enumerate(b.entries):
            if first <= b.first_seq + i < end:
                if b.first_seq + i != first + len(out) or not entry:
                    raise ConflictError(f"log {info.name}: seq {first + len(out)} is not "
                                        f"stored (purged?), so [{first}, {end}) cannot be "
                                        "archived")
                out.append(entry)
    if len(out) != end - first:
        raise ConflictError(f"log {info.name}: only {len(out)} of [{first}, {end}) are stored")
    return out


def stored_leaves(store: Backend, log_id: int, first: int, end: int) -> list[bytes]:
    """The stored level-0 hashes of seqs [first, end), cut out of their tiles."""
    lo, hi = first // TILE_WIDTH, -(-end // TILE_WIDTH)
    joined = b"".join(store.read_tile_range(log_id, 0, lo, hi))
    skip = first - lo * TILE_WIDTH
    size = merkle.HASH_SIZE
    return [joined[i * size:(i + 1) * size]
            for i in range(skip, min(skip + end - first, len(joined) // size))]


def check_leaves(log_name: str, first: int, leaves: list[bytes], stored: list[bytes]) -> None:
    """CorruptionError naming the first seq whose leaf hash is not the stored one."""
    if len(stored) != len(leaves):
        raise CorruptionError(f"log {log_name}: {len(stored)} stored leaves for "
                              f"{len(leaves)} entries from seq {first}")
    for i, (mine, theirs) in enumerate(zip(leaves, stored, strict=True)):
        if mine != theirs:
            raise CorruptionError(f"log {log_name}: seq {first + i}: the entry's leaf hash "
                                  "is not the stored level-0 tile's")


def cosigned_note(logs: LogService, log_id: int, cp: StoredCheckpoint) -> str:
    """The checkpoint's signed note with every witness cosignature stored for it."""
    lines = [c.line for c in logs.store.cosignatures(log_id, cp.size) if c.root == cp.root]
    return with_cosignatures(cp.note, lines) if lines else cp.note
