"""Checkpoint compaction: thin out a log's stored checkpoints and its checkpoint journal
so they stop growing with every second of write activity, without losing evidence.

Policy (`retained`): every checkpoint of the last hour, then the last one of each hour
for a week, then the last one of each day, and always the first and the newest. A
checkpoint is dropped only if it proves nothing the retained ones do not: its signature
verifies under a published key, its stored columns match its note, its root is the
root the stored tree gives at its size, and no other root is known for its size (in the
database or the journal). Anything else is kept as evidence for `verify`.

The journal is rewritten atomically (temp file, fsync, rename, fsync of the directory)
under the same `flock` every append takes, so an append racing a compaction is never
lost, whichever process makes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from auditkeep.errors import AuditkeepError, NoteError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint
from auditkeep.log.note import Verifier
from auditkeep.storage.base import Backend, LogInfo, StoredCheckpoint

log = logging.getLogger(__name__)

HOUR = 3600
DAY = 86_400
KEEP_ALL_FOR = HOUR  # seconds: every checkpoint younger than this is kept
KEEP_HOURLY_FOR = 7 * DAY  # then one per hour; older ones one per day
SEPARATOR = b"\x00\n"  # ends each note in the journal
_DELETE_BATCH = 5000  # checkpoints deleted per transaction (keeps the write lock short)
_READ_CHUNK = 1 << 20


@dataclass(slots=True)
class Compaction:
    """What one compaction of one log did."""

    log: str
    checkpoints: int  # stored before
    dropped: int  # stored checkpoints removed (their journal copies with them)
    evidence: int  # would have been dropped by age, kept because they did not check out
    journal_before: int  # bytes
    journal_after: int

    def __str__(self) -> str:
        text = (f"{self.log}: {self.checkpoints} -> {self.checkpoints - self.dropped} "
                f"checkpoints, journal {self.journal_before:,} -> {self.journal_after:,} bytes")
        if self.evidence:
            text += (f"; kept {self.evidence} that do not check out (run `auditkeep verify`)")
        return text


def _epoch(created: str) -> float | None:
    try:
        return datetime.fromisoformat(created).timestamp()
    except ValueError:
        return None


def retained(created: Sequence[float | None], now: float) -> set[int]:
    """Indices of the checkpoints to keep, given their creation times (seconds since the
    epoch, None if unknown) in size order.

    Buckets are aligned to UTC hours and days and the last checkpoint of a bucket wins,
    so the one kept for an hour is also the one kept for its day later: repeated
    compactions converge instead of dropping what an earlier one kept."""
    if not created:
        return set()
    keep = {0, len(created) - 1}
    last_of: dict[tuple[int, int], int] = {}
    for i, t in enumerate(created):
        if t is None or now - t < KEEP_ALL_FOR:  # unknown or recent (or from the future)
            keep.add(i)
        elif now - t < KEEP_HOURLY_FOR:
            last_of[(HOUR, int(t // HOUR))] = i
        else:
            last_of[(DAY, int(t // DAY))] = i
    return keep | set(last_of.values())


# the journal ----------------------------------------------------------------------------

@contextlib.contextmanager
def locked_journal(path: Path) -> Iterator[BinaryIO]:
    """The journal at `path` opened for appending, under an exclusive `flock`.

    A compaction replaces the file while holding the lock on the old one, so after
    waiting for the lock check that the file is still the one at `path`; if not, take
    the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        f = open(path, "ab")  # noqa: SIM115 -- closed below or handed to the caller
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield f
                return
        finally:
            f.close()  # also releases the lock


def append_note(path: Path, note: str) -> None:
    """Append one note to the journal and fsync it."""
    with locked_journal(path) as f:
        f.write(note.encode() + SEPARATOR)
        f.flush()
        os.fsync(f.fileno())


def _notes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int]]:
    """(note with its separator, file offset after it) of each complete note in
    [start, end); an unterminated tail is left for the caller."""
    f.seek(start)
    base = pos = start  # base: the file offset of buf[0]
    buf = b""
    while pos < end:
        chunk = f.read(min(_READ_CHUNK, end - pos))
        if not chunk:
            break
        pos += len(chunk)
        buf += chunk
        at = 0
        while (i := buf.find(SEPARATOR, at)) >= 0:
            stop = i + len(SEPARATOR)
            yield buf[at:stop], base + stop
            at = stop
        buf = buf[at:]
        base += at


def _claim(note: bytes) -> Checkpoint | None:
    """The checkpoint a journal note claims, signature unchecked (None if it is junk)."""
    try:
        text = note.removesuffix(SEPARATOR).decode()
        split = text.rfind("\n\n")
        return Checkpoint.parse(text[: split + 1]) if split >= 0 else None
    except (UnicodeDecodeError, NoteError):
        return None


def rewrite_journal(path: Path, drop: Callable[[bytes], bool]) -> tuple[int, int] | None:
    """Rewrite the journal without the notes `drop` selects; (bytes before, bytes after),
    or None if another compaction replaced the file meanwhile (nothing changed).

    The bulk is filtered without the lock, so appends are not held up by a large first
    compaction; then, under the lock, what was appended meanwhile is copied over as it
    is and the new file renamed into place."""
    tmp = path.with_name(f"{path.name}.compact-{os.getpid()}-{threading.get_ident()}")
    try:
        old = open(path, "rb")  # noqa: SIM115 -- its lock must outlive the rename
    except FileNotFoundError:
        return 0, 0
    try:
        st = os.fstat(old.fileno())
        boundary = 0
        with open(tmp, "wb") as out:
            os.fchmod(out.fileno(), st.st_mode & 0o7777)
            for note, after in _notes(old, 0, st.st_size):
                boundary = after
                if not drop(note):
                    out.write(note)
            fcntl.flock(old.fileno(), fcntl.LOCK_EX)
            if os.stat(path).st_ino != st.st_ino:
                tmp.unlink()
                return None
            before = os.fstat(old.fileno()).st_size
            old.seek(boundary)
            while chunk := old.read(_READ_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            after_size = out.tell()
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return before, after_size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        old.close()  # releases the lock: waiting appenders see the new file


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# one log --------------------------------------------------------------------------------

def compact_log(store: Backend, info: LogInfo, verifiers: Sequence[Verifier],
                journal: Path | None, now: float) -> Compaction:
    """Drop the checkpoints of `info` that the policy ages out and that check out, from
    the journal first and then from the database (a crash in between leaves database
    rows the next run drops; never journal notes without their row)."""
    stored = store.checkpoints(info.id)
    keep = retained([_epoch(c.created) for c in stored], now)
    kept_sizes = {stored[i].size for i in keep}
    roots: dict[int, set[bytes]] = {}
    for cp in stored:
        roots.setdefault(cp.size, set()).add(bytes(cp.root))
    # A size with a kept row keeps all its rows: deletion is by (size, root).
    aged = [cp for i, cp in enumerate(stored) if i not in keep and cp.size not in kept_sizes]
    dropping = [cp for cp in aged if _checks_out(store, info, verifiers, cp, roots)]
    if journal is not None and dropping:
        dropping = _without_journal_conflicts(journal, info.origin, dropping)
    notes = {cp.note.encode() + SEPARATOR for cp in dropping}
    before = after = journal.stat().st_size if journal is not None and journal.exists() else 0
    if journal is not None and notes:
        sizes = rewrite_journal(journal, notes.__contains__)
        if sizes is None:  # another compaction got there first; it drops these too
            log.info("checkpoint journal %s was compacted meanwhile; skipping", journal)
            return Compaction(info.name, len(stored), 0, 0, before, before)
        before, after = sizes
    pairs = [(cp.size, bytes(cp.root)) for cp in dropping]
    for i in range(0, len(pairs), _DELETE_BATCH):
        store.delete_checkpoints(info.id, pairs[i : i + _DELETE_BATCH])
    return Compaction(info.name, len(stored), len(dropping), len(aged) - len(dropping),
                      before, after)


def _checks_out(store: Backend, info: LogInfo, verifiers: Sequence[Verifier],
                cp: StoredCheckpoint, roots: dict[int, set[bytes]]) -> bool:
    """Whether dropping `cp` loses no evidence: validly signed, consistent with its
    columns, the only root known for its size, and the stored tree's root at its size."""
    if len(roots[cp.size]) > 1:
        return False
    try:
        parsed, _ = open_checkpoint(cp.note, verifiers, origin=info.origin)
        if parsed.size != cp.size or parsed.root != cp.root:
            return False
        mine = merkle.root_from_reader(cp.size, lambda c: store.read_nodes(info.id, c))
    except AuditkeepError:  # NoteError, ProofError, CorruptionError, StorageError
        return False
    return mine == parsed.root


def _without_journal_conflicts(journal: Path, origin: str, dropping: list[StoredCheckpoint]
                               ) -> list[StoredCheckpoint]:
    """`dropping` less any size for which the journal claims another root (a fork that
    `verify` must still see on both sides)."""
    root_of = {cp.size: bytes(cp.root) for cp in dropping}
    conflicts: set[int] = set()
    try:
        with open(journal, "rb") as f:
            for note, _ in _notes(f, 0, os.fstat(f.fileno()).st_size):
                cp = _claim(note)
                if (cp is not None and cp.origin == origin and cp.size in root_of
                        and root_of[cp.size] != cp.root):
                    conflicts.add(cp.size)
    except FileNotFoundError:
        return dropping
    return [cp for cp in dropping if cp.size not in conflicts]


class CheckpointCompactor:
    """Runs `compact(stopping)` (every log) once at start and then every `every` seconds,
    in a daemon thread; a failure is logged and retried at the next round."""

    def __init__(self, compact: Callable[[Callable[[], bool]], object],
                 every: float = HOUR) -> None:
        self._compact = compact
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint-compactor",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._compact(self._stop.is_set)  # checked between logs
            except Exception:
                log.exception("checkpoint compaction failed; retrying in %.0f s", self._every)
            self._stop.wait(self._every)
