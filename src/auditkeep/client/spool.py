"""Where the SDK keeps events between `emit` and the server's acknowledgement.

A disk spool is a directory of append-only segment files and a ledger naming the first
record not yet acknowledged. Each record is `magic ‖ length ‖ crc32 ‖ payload`, written
with one `write(2)` before `emit` returns, so a process killed right after `emit` loses
nothing (the page cache outlives the process; `fsync=True` also survives power loss, at
~1 ms an event). Chosen over SQLite because an append is one syscall (~1 µs here) where an
SQLite insert + commit costs 10-20 µs, and `emit` has a 20 µs budget; the price is the
corruption handling below, which SQLite would have given us.

A torn or garbled record (a crash mid-write, a bad disk) is skipped: the reader searches
for the next magic whose checksum holds, counts what it skipped and logs where. It never
raises into the application.

A directory belongs to one process at a time (an exclusive `flock` on its `lock` file).
Directories whose owner died are adopted by the next client on the same spool root and
drained before they are deleted.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import struct
import threading
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"\xa7K"
HEADER = struct.Struct("<2sII")  # magic, payload length, crc32(payload)
MAX_RECORD = 16 << 20
SEGMENT_BYTES = 8 << 20
_SEG = "seg-{:012d}.log"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a spool: the start of the next record to read."""

    segment: int
    offset: int


@dataclass(slots=True)
class Corruption:
    records: int = 0
    bytes: int = 0


class DiskSpool:
    """One spool directory. `writable` spools take appends; adopted ones only drain."""

    def __init__(self, directory: Path, lock_fd: int, *, writable: bool,
                 fsync: bool = False) -> None:
        self.directory = directory
        self.lock_fd = lock_fd
        self.writable = writable
        self._fsync = fsync
        self._lock = threading.Lock()
        self.corruption = Corruption()
        self.appended = 0  # records appended by this process
        self.acked = 0  # records acknowledged by this process (of any origin)
        acked_at = self._load_ledger()
        for n in self._segments():
            if n < acked_at.segment:
                (directory / _SEG.format(n)).unlink(missing_ok=True)
        self._ack = acked_at
        self._read = acked_at
        segments = self._segments()
        self.pending_bytes = sum((directory / _SEG.format(n)).stat().st_size
                                 for n in segments) - acked_at.offset
        # The writer starts a fresh segment: a torn tail from an earlier owner stays
        # behind, where the reader finds and reports it.
        self._active = max([*segments, acked_at.segment - 1]) + 1
        self._written = 0  # bytes of the active segment known complete
        self._fd = -1
        if writable:
            self._open_active()

    # -- writing ------------------------------------------------------------------
    def _open_active(self) -> None:
        path = self.directory / _SEG.format(self._active)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._written = 0

    def append(self, payload: bytes) -> None:
        record = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._written >= SEGMENT_BYTES:
                os.fsync(self._fd)  # one fsync per 8 MiB, so `sync` need only do the last
                os.close(self._fd)
                self._active += 1
                self._open_active()
            os.write(self._fd, record)
            if self._fsync:
                os.fsync(self._fd)
            self._written += len(record)
            self.pending_bytes += len(record)
            self.appended += 1

    def sync(self) -> None:
        """Make every record appended so far survive a power loss (fsync the active
        segment and the directory that names it)."""
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        """Stop writing and give the directory up (the next client adopts what is left)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self.lock_fd >= 0:
                os.close(self.lock_fd)
                self.lock_fd = -1

    # -- reading ------------------------------------------------------------------
    def read(self, max_records: int, max_bytes: int) -> tuple[list[bytes], Cursor]:
        """Up to `max_records` payloads after the read cursor, and the cursor after them.
        The cursor moves on; `ack(cursor)` later makes that durable."""
        out: list[bytes] = []
        size = 0
        cur = self._read
        while len(out) < max_records and size < max_bytes:
            with self._lock:
                active, written = self._active, self._written
            path = self.directory / _SEG.format(cur.segment)
            if cur.segment > active or (cur.segment == active and not self.writable
                                         and not path.exists()):
                break
            limit = written if (self.writable and cur.segment == active) else None
            got, cur = self._read_segment(path, cur, limit, max_records - len(out),
                                          max_bytes - size)
            out.extend(got)
            size += sum(len(p) for p in got)
            if cur.offset == -1:  # the segment is finished: on to the next one
                cur = Cursor(cur.segment + 1, 0)
                continue
            if not got:
                break
        self._read = cur
        return out, cur

    def _read_segment(self, path: Path, cur: Cursor, limit: int | None, max_records: int,
                      max_bytes: int) -> tuple[list[bytes], Cursor]:
        """Records of one segment from `cur`; offset -1 in the result = segment done.
        `limit`: where the complete records of the active segment end (None: a closed
        segment, complete to its end)."""
        try:
            with open(path, "rb") as f:
                end = os.fstat(f.fileno()).st_size if limit is None else limit
                f.seek(cur.offset)
                data = f.read(max(0, min(end - cur.offset, max(2 * max_bytes, 1 << 20))))
        except FileNotFoundError:
            return [], Cursor(cur.segment, -1) if limit is None else cur
        partial = cur.offset + len(data) < end  # more of the segment lies beyond `data`
        out: list[bytes] = []
        pos = 0
        size = 0
        while pos < len(data) and len(out) < max_records and size < max_bytes:
            good = _record_at(data, pos)
            if good is None:
                if partial and _cut_off(data, pos):
                    break  # the record continues past what was read: read it next time
                skip_to = _resync(data, pos + 1, partial)
                self._report(path, cur.offset + pos, skip_to - pos)
                pos = skip_to
                continue
            out.append(good)
            size += len(good)
            pos += HEADER.size + len(good)
        if limit is None and not partial and pos >= len(data):
            return out, Cursor(cur.segment, -1)  # a closed segment, read to its end
        return out, Cursor(cur.segment, cur.offset + pos)

    def _report(self, path: Path, offset: int, n: int) -> None:
        self.corruption.records += 1
        self.corruption.bytes += n
        self.pending_bytes -= n
        log.warning("auditkeep spool: skipped %d corrupt bytes in %s at offset %d "
                    "(a torn or damaged record)", n, path, offset)

    # -- acknowledging ---------------------------------------------------------------
    def ack(self, cursor: Cursor, records: int, nbytes: int) -> None:
        """Everything before `cursor` is acknowledged: record it, free finished segments."""
        tmp = self.directory / "ledger.tmp"
        tmp.write_text(f"{cursor.segment} {cursor.offset}\n")
        if self._fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / "ledger")
        for n in self._segments():
            if n < cursor.segment and not (self.writable and n == self._active):
                (self.directory / _SEG.format(n)).unlink(missing_ok=True)
        with self._lock:
            self._ack = cursor
            self.acked += records
            self.pending_bytes -= nbytes + HEADER.size * records

    def drained(self) -> bool:
        """No record is left to read (for an adopted spool: it can be deleted)."""
        with self._lock:
            active = self._active
        return self._read == self._ack and (self._read.segment > active or (
            self._read.segment == active and self._read.offset >= self._written))

    def remove(self) -> None:
        for p in self.directory.iterdir():
            p.unlink(missing_ok=True)
        self.directory.rmdir()
        self.close()

    def _segments(self) -> list[int]:
        return sorted(int(p.name[4:16]) for p in self.directory.glob("seg-*.log"))

    def _load_ledger(self) -> Cursor:
        try:
            seg, off = (self.directory / "ledger").read_text().split()
            return Cursor(int(seg), int(off))
        except FileNotFoundError:
            first = self._segments()
            return Cursor(first[0] if first else 0, 0)
        except ValueError:
            log.warning("auditkeep spool: unreadable ledger in %s; re-sending the whole "
                        "spool (the server drops what it already has)", self.directory)
            first = self._segments()
            return Cursor(first[0] if first else 0, 0)


def _record_at(data: bytes, pos: int) -> bytes | None:
    if pos + HEADER.size > len(data):
        return None
    magic, n, crc = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + n
    if magic != MAGIC or n > MAX_RECORD or end > len(data):
        return None
    payload = data[pos + HEADER.size : end]
    return payload if zlib.crc32(payload) == crc else None


def _cut_off(data: bytes, pos: int) -> bool:
    """The bytes at `pos` start a plausible record that `data` ends inside."""
    if pos + HEADER.size > len(data):
        return True
    magic: bytes
    n: int
    magic, n, _ = HEADER.unpack_from(data, pos)
    return magic == MAGIC and n <= MAX_RECORD and pos + HEADER.size + n > len(data)


def _resync(data: bytes, start: int, partial: bool) -> int:
    """The next position at or after `start` holding a valid record (or, when `partial`,
    one that may continue past `data`), or the end."""
    pos = data.find(MAGIC, start)
    while pos != -1:
        if _record_at(data, pos) is not None or (partial and _cut_off(data, pos)):
            return pos
        pos = data.find(MAGIC, pos + 1)
    return len(data)


class MemorySpool:
    """The same interface in memory (`durability="memory"`): nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: collections.deque[bytes] = collections.deque()
        self._first = 0  # the number of the first record in `_records`
        self._read = 0
        self.corruption = Corruption()
        self.appended = 0
        self.acked = 0
        self.pending_bytes = 0
        self.writable = True

    def append(self, payload: bytes) -> None:
        with self._lock:
            self._records.append(payload)
            self.pending_bytes += len(payload)
            self.appended += 1

    def read(self, max_records: int, max_bytes: int) -> tuple[list[bytes], Cursor]:
        with self._lock:
            out: list[bytes] = []
            size = 0
            i = self._read - self._first
            while i < len(self._records) and len(out) < max_records and size < max_bytes:
                out.append(self._records[i])
                size += len(self._records[i])
                i += 1
            self._read += len(out)
            return out, Cursor(0, self._read)

    def ack(self, cursor: Cursor, records: int, nbytes: int) -> None:
        with self._lock:
            while self._first < cursor.offset:
                self._records.popleft()
                self._first += 1
            self.acked += records
            self.pending_bytes -= nbytes

    def drained(self) -> bool:
        with self._lock:
            return self._read - self._first >= len(self._records)

    def discard(self) -> int:
        """Forget every record (a forked child must not re-send its parent's)."""
        with self._lock:
            n = len(self._records)
            self._first += n
            self._read = self._first
            self._records.clear()
            self.pending_bytes = 0
            return n

    def close(self) -> None:
        pass


def open_spools(root: Path, *, fsync: bool = False) -> tuple[DiskSpool, list[DiskSpool]]:
    """A new writable spool under `root`, and every orphaned one found there."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    own_dir = root / f"w-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    own_dir.mkdir(mode=0o700)
    fd = _lock(own_dir, blocking=True)
    if fd is None:  # pragma: no cover - a blocking flock waits rather than fail
        raise OSError(f"cannot lock {own_dir}")
    own = DiskSpool(own_dir, fd, writable=True, fsync=fsync)
    return own, adopt_orphans(root, {own_dir}, fsync=fsync)


def adopt_orphans(root: Path, known: set[Path], *, fsync: bool = False) -> list[DiskSpool]:
    """Spool directories under `root` whose owner is gone (their lock is free)."""
    out: list[DiskSpool] = []
    for d in sorted(root.glob("w-*")):
        if d in known or not d.is_dir():
            continue
        fd = _lock(d, blocking=False)
        if fd is not None:
            out.append(DiskSpool(d, fd, writable=False, fsync=fsync))
    return out


def _lock(directory: Path, *, blocking: bool) -> int | None:
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
