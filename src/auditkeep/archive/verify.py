"""Offline verification of an archive, for an auditor who trusts only the log's public
key: each manifest's signature, the Parquet file's SHA-256, every entry's leaf hash,
the subtree root, its inclusion proof into the checkpoint and the checkpoint's
signature; optionally every leaf against a hot store's level-0 tiles.

Every problem names the object, the check and, where there is one, the seq.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from auditkeep.archive.manifest import (
    SUFFIX,
    Manifest,
    archive_verifiers,
    open_manifest,
    parse_manifest,
)
from auditkeep.archive.objects import Objects
from auditkeep.archive.proofs import range_root, verify_subtree
from auditkeep.archive.seal import stored_leaves
from auditkeep.archive.table import entry_seqs, read_columns
from auditkeep.errors import AuditkeepError, CorruptionError, NoteError, ProofError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint
from auditkeep.log.note import Verifier
from auditkeep.storage.base import Backend


@dataclass(frozen=True, slots=True)
class Problem:
    name: str  # the object (manifest or Parquet file) at fault
    check: str  # manifest, signature, checkpoint, file, sha256, parquet, rows, leaf, entry,
    #             subtree, proof, hot
    detail: str
    seq: int | None = None

    def __str__(self) -> str:
        at = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.name}:{at} {self.check}: {self.detail}"


@dataclass(slots=True)
class RangeResult:
    manifest: str
    log: str | None = None
    first: int | None = None
    end: int | None = None
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class ArchiveReport:
    url: str
    embedded_keys: bool  # no keys were given: each manifest's own were used
    ranges: list[RangeResult] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # Parquet files no manifest names

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.ranges for p in r.problems]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_archive(objects: Objects, vkeys: Sequence[str] = (), *,
                   hot: Backend | None = None, only: Sequence[str] = ()) -> ArchiveReport:
    """Check every manifest under the archive (of the logs in `only`, if given).
    `vkeys`: the trusted log keys; none: each manifest's embedded keys (which proves
    integrity, not origin). `hot`: also compare every leaf with this store's tiles."""
    trusted = archive_verifiers(vkeys) if vkeys else None
    names = objects.names()
    report = ArchiveReport(objects.url, trusted is None)
    named: set[str] = set()
    for name in names:
        if not name.endswith(SUFFIX) or (only and name.split("/", 1)[0] not in only):
            continue
        result = RangeResult(name)
        report.ranges.append(result)
        file = _verify_range(objects, name, trusted, hot, result)
        if file is not None:
            named.add(file)
    report.orphans = [n for n in names if n.endswith(".parquet") and n not in named
                      and not (only and n.split("/", 1)[0] not in only)]
    return report


def _verify_range(objects: Objects, name: str, trusted: list[Verifier] | None,
                  hot: Backend | None, result: RangeResult) -> str | None:
    """Fill `result`; the Parquet file's name if the manifest could be read."""
    problems = result.problems
    try:
        note = objects.get(name)
        m, _ = parse_manifest(note)
    except AuditkeepError as exc:
        problems.append(Problem(name, "manifest", str(exc)))
        return None
    result.log, result.first, result.end = m.log, m.first, m.end
    verifiers = trusted if trusted is not None else _embedded(name, m, problems)
    try:
        open_manifest(note, verifiers)
    except NoteError as exc:
        problems.append(Problem(name, "signature", str(exc)))
    cp = _checkpoint(name, m, verifiers, problems)
    folder = name.rsplit("/", 1)[0]
    file = f"{folder}/{m.file}" if "/" in name else m.file
    try:
        data = objects.get(file)
    except AuditkeepError as exc:
        problems.append(Problem(file, "file", str(exc)))
        return file
    if len(data) != m.file_size:
        problems.append(Problem(file, "sha256", f"the file is {len(data)} bytes, the "
                                f"manifest says {m.file_size}"))
    elif hashlib.sha256(data).hexdigest() != m.sha256:
        problems.append(Problem(file, "sha256", "the file's SHA-256 is not the manifest's"))
    leaves = _check_rows(file, m, data, problems)
    result.rows = len(leaves) if leaves is not None else 0
    if leaves is None:
        return file
    root = range_root(leaves)
    if root != m.root:
        problems.append(Problem(file, "subtree", f"the root of the leaves [{m.first}, "
                                f"{m.end}) is not the manifest's subtree root"))
    if cp is not None:
        try:
            verify_subtree(m.root, m.first, m.width, cp.size, list(m.proof), cp.root)
        except ProofError as exc:
            problems.append(Problem(name, "proof", f"the subtree is not in the checkpoint's "
                                    f"tree: {exc}"))
    if hot is not None:
        _check_hot(file, m, leaves, hot, problems)
    return file


def _embedded(name: str, m: Manifest, problems: list[Problem]) -> list[Verifier]:
    try:
        return archive_verifiers(m.keys)
    except NoteError as exc:
        problems.append(Problem(name, "manifest", f"an embedded key: {exc}"))
        return []


def _checkpoint(name: str, m: Manifest, verifiers: list[Verifier],
                problems: list[Problem]) -> Checkpoint | None:
    try:
        cp, _ = open_checkpoint(m.checkpoint, [v for v in verifiers if v.name == m.origin],
                                m.origin)
    except NoteError as exc:
        problems.append(Problem(name, "checkpoint", str(exc)))
        return None
    if cp.size != m.checkpoint_size or cp.size < m.end:
        problems.append(Problem(name, "checkpoint", f"the checkpoint's size {cp.size} does "
                                f"not cover [{m.first}, {m.end}) as the manifest says"))
        return None
    return cp


def _check_rows(file: str, m: Manifest, data: bytes,
                problems: list[Problem]) -> list[bytes] | None:
    """The leaf column if rows are in place, each entry's hash checked against it."""
    try:
        table = read_columns(data)
    except CorruptionError as exc:
        problems.append(Problem(file, "parquet", str(exc)))
        return None
    seqs = table.column("seq").to_pylist()
    if seqs != list(range(m.first, m.end)) or m.rows != len(seqs):
        problems.append(Problem(file, "rows", f"{len(seqs)} rows, expected seqs "
                                f"[{m.first}, {m.end}) in order"))
        return None
    entries = table.column("entry").to_pylist()
    leaves = table.column("leaf").to_pylist()
    for seq, said, leaf, mine in zip(seqs, entry_seqs(entries), leaves,
                                     merkle.leaf_hashes(entries), strict=True):
        if mine != leaf:
            problems.append(Problem(file, "leaf", "SHA-256(0x00 || entry) is not the leaf "
                                    "column", seq))
        elif said != seq:
            problems.append(Problem(file, "entry", "the entry's own seq is not its row's", seq))
    return [bytes(x) for x in leaves]


def _check_hot(file: str, m: Manifest, leaves: list[bytes], hot: Backend,
               problems: list[Problem]) -> None:
    info = hot.get_log(m.log)
    if info is None:
        problems.append(Problem(file, "hot", f"the store has no log named {m.log!r}"))
        return
    stored = stored_leaves(hot, info.id, m.first, m.end)
    if len(stored) != len(leaves):
        problems.append(Problem(file, "hot", f"the store has {len(stored)} leaves of "
                                f"[{m.first}, {m.end})"))
        return
    for i, (mine, theirs) in enumerate(zip(leaves, stored, strict=True)):
        if mine != theirs:
            problems.append(Problem(file, "hot", "the leaf is not the hot store's level-0 "
                                    "tile", m.first + i))
