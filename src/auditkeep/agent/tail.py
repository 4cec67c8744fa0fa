"""Follow a growing file across rotations without losing or repeating a line.

A `Follower` hands out complete lines only (never a partly written last line) and reads
each again until the caller `commit`s it, so a line is consumed only once its event is
safe in the spool. `OffsetStore` keeps the committed positions on disk, so a restarted
agent resumes where the last one stopped.

Rotation: when the path names a new file (rename + create), the old one stays open and is
read to its end first, for `rotate_wait` seconds after it last grew (a writer may append
to it until it reopens). A file that shrinks, or whose first bytes change, was truncated
in place (copytruncate) and is read again from the start. A file is identified by
device, inode and a fingerprint (SHA-256 of its first <= 1 KiB already read), so a
recycled inode number is not mistaken for the file it once was.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
SHOWN_BYTES = 200  # of an overlong line, kept to say in the log what it was


@dataclass(slots=True, eq=False)
class Line:
    """One complete line (without its newline) and where it ends in its file."""

    data: bytes
    number: int  # 1-based, counted from where the agent started reading the file
    end: int  # the offset just past the line's newline
    source: OpenFile
    overlong: bool = False  # longer than max_line_bytes: `data` holds only its start

    @property
    def where(self) -> str:
        return f"{self.source.label}:{self.number}"


class OpenFile:
    """One file (one inode) being read, and how far it has been consumed."""

    __slots__ = ("deadline", "dev", "fd", "head", "ino", "label", "lines", "offset", "seen")

    def __init__(self, fd: int, label: str) -> None:
        st = os.fstat(fd)
        self.fd = fd
        self.dev, self.ino = st.st_dev, st.st_ino
        self.label = label
        self.offset = 0
        self.lines = 0
        # The file's first bytes as read (up to FINGERPRINT_BYTES, at least up to
        # `offset`): if they change, the file was rewritten in place.
        self.head = b""
        self.deadline = 0.0  # a rotated file: read on until this (monotonic) time
        self.seen = (st.st_size, st.st_mtime_ns)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def start_at(self, offset: int) -> None:
        self.offset = offset
        self.head = os.pread(self.fd, min(offset, FINGERPRINT_BYTES), 0)

    def resume(self, record: Mapping[str, Any]) -> bool:
        """Continue from a saved record if it describes this file's content; else False."""
        offset = record.get("offset")
        fingerprint = record.get("fingerprint")
        if not isinstance(offset, int) or not isinstance(fingerprint, str) or offset < 0:
            return False
        head = os.pread(self.fd, min(offset, FINGERPRINT_BYTES), 0)
        if self.size() < offset or hashlib.sha256(head).hexdigest() != fingerprint:
            return False
        self.offset, self.head = offset, head
        lines = record.get("lines")
        self.lines = lines if isinstance(lines, int) else 0
        return True

    def saw(self, data: bytes, at: int) -> None:
        """`data` was read at offset `at`: keep what it adds to `head`."""
        have = len(self.head)
        if have < FINGERPRINT_BYTES and at <= have < at + len(data):
            self.head += data[have - at : FINGERPRINT_BYTES - at]

    def unchanged_prefix(self) -> bool:
        return not self.head or os.pread(self.fd, len(self.head), 0) == self.head

    def restart(self) -> None:
        self.offset = self.lines = 0
        self.head = b""

    def record(self) -> dict[str, Any]:
        fingerprint = hashlib.sha256(self.head[:min(self.offset, FINGERPRINT_BYTES)])
        return {"dev": self.dev, "inode": self.ino, "offset": self.offset,
                "fingerprint": fingerprint.hexdigest(), "lines": self.lines}

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open(path: str, label: str) -> OpenFile | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return OpenFile(fd, label)
    except OSError:
        os.close(fd)
        raise


class Follower:
    """Lines of the file at `path`, across rotations. Not thread-safe: one caller."""

    __slots__ = ("_clock", "_current", "_draining", "_max_line", "_missing_since",
                 "_rotate_wait", "_seen", "_start_at", "path", "rotations", "truncations")

    def __init__(self, path: Path, saved: Mapping[str, Any] | None = None, *,
                 start_at: str = "beginning", rotate_wait: float = 5.0,
                 max_line_bytes: int = 4 << 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = str(path)
        self._start_at = start_at
        self._rotate_wait = rotate_wait
        self._max_line = max_line_bytes
        self._clock = clock
        self._current: OpenFile | None = None
        self._draining: list[OpenFile] = []  # rotated away, oldest first, not yet finished
        self._missing_since: float | None = None
        self._seen = saved is not None  # start_at applies only to a file never seen
        self.rotations = 0
        self.truncations = 0
        if saved:
            self._restore(saved)

    # -- reading ---------------------------------------------------------------------
    def poll(self, max_bytes: int = 1 << 20) -> list[Line]:
        """Complete lines not yet committed, from the oldest file first (at most about
        `max_bytes`); [] when there are none for now."""
        while self._draining:
            old = self._draining[0]
            lines = self._read(old, max_bytes)
            if lines:
                old.deadline = max(old.deadline, self._clock() + self._rotate_wait)
                return lines
            if self._clock() < old.deadline:
                break  # its writer may still append to it: read the new file meanwhile
            last = self._unterminated(old)
            if last:
                return last
            log.info("%s: finished at offset %d", old.label, old.offset)
            old.close()
            self._draining.pop(0)
        if self._current is None:
            self._current = self._open_new()
            if self._current is None:
                return []
        cur = self._current
        self._check_truncation(cur)
        lines = self._read(cur, max_bytes)
        if not lines and self._check_rotation(cur):
            return self.poll(max_bytes)  # the old file's rest first, then the new one
        return lines

    def commit(self, line: Line) -> None:
        """`line` (and every line before it in its file) is consumed."""
        line.source.offset = line.end
        line.source.lines = line.number

    def _read(self, f: OpenFile, max_bytes: int) -> list[Line]:
        data = os.pread(f.fd, max_bytes, f.offset)
        cut = data.rfind(b"\n")
        if cut < 0 and len(data) == max_bytes and max_bytes < self._max_line:
            data = os.pread(f.fd, self._max_line, f.offset)  # one long line
            cut = data.rfind(b"\n")
        f.saw(data, f.offset)
        if cut < 0:
            return self._overlong(f) if len(data) >= self._max_line else []
        out: list[Line] = []
        pos, n = f.offset, f.lines
        for piece in data[:cut].split(b"\n"):
            pos += len(piece) + 1
            n += 1
            if len(piece) > self._max_line:
                out.append(Line(piece[:SHOWN_BYTES], n, pos, f, overlong=True))
                continue
            if piece[:1] == b"\0":  # holes a copytruncate leaves before a non-append writer
                piece = piece.lstrip(b"\0")
            out.append(Line(piece[:-1] if piece.endswith(b"\r") else piece, n, pos, f))
        return out

    def _overlong(self, f: OpenFile) -> list[Line]:
        """A line longer than max_line_bytes: skipped whole once its newline is written."""
        pos = f.offset + self._max_line
        while chunk := os.pread(f.fd, 1 << 20, pos):
            i = chunk.find(b"\n")
            if i >= 0:
                head = os.pread(f.fd, SHOWN_BYTES, f.offset)
                return [Line(head, f.lines + 1, pos + i + 1, f, overlong=True)]
            pos += len(chunk)
        return []

    def _unterminated(self, f: OpenFile) -> list[Line]:
        """The last line of a finished file, which never got its newline."""
        size = f.size()
        if size <= f.offset:
            return []
        n = size - f.offset
        data = os.pread(f.fd, min(n, self._max_line), f.offset)
        return [Line(data if n <= self._max_line else data[:SHOWN_BYTES], f.lines + 1, size,
                     f, overlong=n > self._max_line)]

    # -- rotation and truncation -------------------------------------------------------
    def _open_new(self) -> OpenFile | None:
        f = _open(self.path, self.path)
        first_look, self._seen = not self._seen, True
        if f is not None and first_look and self._start_at == "end":
            f.start_at(_after_last_newline(f))
            log.info("%s: starting at its end (offset %d)", self.path, f.offset)
        return f

    def _check_truncation(self, f: OpenFile) -> None:
        st = os.fstat(f.fd)
        if (st.st_size, st.st_mtime_ns) == f.seen:
            return
        f.seen = (st.st_size, st.st_mtime_ns)
        if st.st_size < f.offset or not f.unchanged_prefix():
            log.warning("%s: truncated in place (copytruncate?) with %d bytes read; reading "
                        "it again from the start", f.label, f.offset)
            f.restart()
            self.truncations += 1

    def _check_rotation(self, cur: OpenFile) -> bool:
        """True when `cur` was rotated away (a new file may be current now)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Renamed or deleted with nothing in its place yet: keep reading what we
            # have open; after rotate_wait, finish it as a rotated file.
            now = self._clock()
            if self._missing_since is None:
                self._missing_since = now
            elif now - self._missing_since >= self._rotate_wait:
                self._retire(cur, now)
                self._current = None
                self._missing_since = None
            return False
        self._missing_since = None
        if (st.st_dev, st.st_ino) == (cur.dev, cur.ino):
            return False
        log.info("%s: rotated; finishing the old file before the new one", self.path)
        self._retire(cur, self._clock() + self._rotate_wait)
        self._current = self._open_new()
        self.rotations += 1
        return True

    def _retire(self, f: OpenFile, deadline: float) -> None:
        f.deadline = deadline
        if f.label == self.path:
            f.label = f"{self.path} (rotated away, inode {f.ino})"
        self._draining.append(f)

    # -- state ---------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """What `OffsetStore` saves for this path (see `_restore`)."""
        out: dict[str, Any] = self._current.record() if self._current else {}
        if self._draining:
            out["rotated"] = [f.record() for f in self._draining]
        return out

    def _restore(self, saved: Mapping[str, Any]) -> None:
        rotated = saved.get("rotated")
        records = [r for r in (rotated if isinstance(rotated, list) else [])
                   if isinstance(r, Mapping)]
        if "inode" in saved:
            records.append(saved)
        at_path = _open(self.path, self.path)
        for rec in records:  # oldest first
            if (at_path is not None and self._current is None
                    and (rec.get("dev"), rec.get("inode")) == (at_path.dev, at_path.ino)):
                self._current, at_path = at_path, None
                if not self._current.resume(rec):
                    log.warning("%s: changed in place while the agent was stopped; reading "
                                "it again from the start", self.path)
                    self.truncations += 1
                continue
            old = _find_rotated(Path(self.path), rec)
            if old is None:
                log.warning("%s: the file read up to offset %s (inode %s) is gone; lines "
                            "appended to it after that were not read", self.path,
                            rec.get("offset"), rec.get("inode"))
                continue
            self._retire(old, self._clock() + self._rotate_wait)
        if at_path is not None:  # created since the agent stopped: all of it is new
            if self._current is None:
                self._current = at_path
            else:
                at_path.close()

    def status(self) -> dict[str, Any]:
        files = ([self._current] if self._current else []) + self._draining
        lag = sum(max(0, f.size() - f.offset) for f in files)
        cur = self._current
        return {"path": self.path, "offset": cur.offset if cur else None,
                "line": cur.lines if cur else None, "lag_bytes": lag,
                "rotated_open": len(self._draining), "rotations": self.rotations,
                "truncations": self.truncations}

    def close(self) -> None:
        for f in ([self._current] if self._current else []) + self._draining:
            f.close()
        self._current = None
        self._draining = []


def _after_last_newline(f: OpenFile) -> int:
    size = f.size()
    start = max(0, size - (1 << 16))
    tail = os.pread(f.fd, size - start, start)
    i = tail.rfind(b"\n")
    return start + i + 1 if i >= 0 else size


def _find_rotated(path: Path, rec: Mapping[str, Any]) -> OpenFile | None:
    """The file `rec` describes, renamed beside `path` while the agent was stopped."""
    want = (rec.get("dev"), rec.get("inode"))
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if (st.st_dev, st.st_ino) != want or entry.name == path.name:
            continue
        f = _open(entry.path, entry.path)
        if f is not None and (f.dev, f.ino) == want and f.resume(rec):
            return f
        if f is not None:
            f.close()
    return None


class OffsetStore:
    """The committed offsets of every followed path, in one JSON file written atomically
    (temporary file, fsync, rename, fsync of the directory)."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            # Re-reading every file is safe (the server drops what it already has).
            log.warning("%s is unreadable; reading every file from the start", self.path)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def save(self, offsets: Mapping[str, Mapping[str, Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, orjson.dumps(offsets, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


__all__ = ["Follower", "Line", "OffsetStore", "OpenFile"]
