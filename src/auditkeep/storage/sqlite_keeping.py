"""The SQLite backend's rows for keeping logs for years: retention purges and restores,
retention policies, legal holds, witness cosignatures and heads, and cold-archive ranges.
A mixin of `SQLiteBackend`, kept apart so neither module grows past a few hundred lines."""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator

from auditkeep.errors import StorageError
from auditkeep.storage import runs
from auditkeep.storage.base import (
    ArchiveRecord,
    Cosignature,
    HoldRecord,
    Purge,
    PurgedRange,
    RetentionRecord,
)
from auditkeep.storage.rows import ARCHIVE_COLS as _ARCHIVE_COLS
from auditkeep.storage.rows import COSIGNATURE_COLS as _COSIGNATURE_COLS
from auditkeep.storage.rows import HOLD_COLS as _HOLD_COLS
from auditkeep.storage.rows import archive_record as _archive
from auditkeep.storage.rows import archive_row as _archive_row
from auditkeep.storage.rows import cosignature_record as _cosignature
from auditkeep.storage.rows import cosignature_row as _cosignature_row
from auditkeep.storage.rows import drop_personal, purge_bundle
from auditkeep.storage.rows import hold_record as _hold
from auditkeep.storage.rows import hold_row as _hold_row

_MAX = 2**63 - 1


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"{what}: {exc}") from exc


class KeepingRows:
    """Purge, restore and the retention, hold, cosignature, witness-head and archive rows."""

    _write_lock: threading.Lock
    _writer: sqlite3.Connection
    _reader: Callable[[], sqlite3.Connection]
    # SQLiteBackend's: the writer inside a transaction, disk-full mapped to StorageFull
    _write: Callable[[str], contextlib.AbstractContextManager[sqlite3.Connection]]

    @contextlib.contextmanager
    def _scrubbing_write(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction whose deleted content is overwritten with zeros, not left
        in free pages; then the WAL is emptied so no older copy of those pages stays in
        it (as erasure does)."""
        with self._write_lock, _mapped(what):
            w = self._writer
            w.execute("PRAGMA secure_delete = ON")
            try:
                w.execute("BEGIN IMMEDIATE")
                try:
                    yield w
                    w.execute("COMMIT")
                except BaseException:
                    if w.in_transaction:
                        w.execute("ROLLBACK")
                    raise
            finally:
                w.execute("PRAGMA secure_delete = OFF")
            w.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # purge and restore ------------------------------------------------------------

    def purge(self, purge: Purge) -> int:
        log_id = purge.log_id
        if not purge.seqs:
            return 0
        with self._scrubbing_write(f"purging entries of log {log_id}") as w:
            row = w.execute("SELECT name, size FROM logs WHERE id = ?", (log_id,)).fetchone()
            if row is None:
                raise StorageError(f"no log with id {log_id}")
            if min(purge.seqs) < 0 or max(purge.seqs) >= row[1]:
                raise StorageError(f"log {row[0]}: cannot purge seqs outside [0, {row[1]})")
            lo, hi = min(purge.seqs), max(purge.seqs) + 1
            old = _runs_near(w, log_id, lo, hi)
            marks, fresh = runs.add(old, purge.seqs, purge.record_seq)
            if not fresh:
                return 0
            _replace_runs(w, log_id, old, marks)
            _rewrite_bundles(w, log_id, dict.fromkeys(fresh, b""))
            _drop_personal(w, log_id, fresh)
            w.executemany("DELETE FROM raws WHERE log_id = ? AND seq = ?",
                          [(log_id, s) for s in fresh])
            w.executemany("DELETE FROM subjects WHERE log_id = ? AND seq = ?",
                          [(log_id, s) for s in fresh])
            return len(fresh)

    def purged_ranges(self, log_id: int, start: int = 0, end: int | None = None
                      ) -> list[PurgedRange]:
        with _mapped(f"reading purged ranges of log {log_id}"):
            found = _runs_near(self._reader(), log_id, start, _MAX if end is None else end,
                               touching=False)
        return runs.clip(found, start, end)

    def stored_bytes(self) -> dict[str, int]:
        # length() of a BLOB reads its size from the record header, not its pages.
        with _mapped("measuring the stored bytes of each log"):
            rows = self._reader().execute(
                "SELECT l.name, (SELECT coalesce(sum(length(entries) + length(digests)), 0) "
                "FROM bundles WHERE log_id = l.id) + (SELECT coalesce(sum(length(data)), 0) "
                "FROM raws WHERE log_id = l.id) FROM logs l").fetchall()
        return {name: int(size) for name, size in rows}

    def restore(self, log_id: int, entries: dict[int, bytes]) -> int:
        if not entries:
            return 0
        with self._write(f"restoring entries of log {log_id}") as w:
            old = _runs_near(w, log_id, min(entries), max(entries) + 1, touching=False)
            marks, back = runs.remove(old, entries)
            if not back:
                return 0
            _replace_runs(w, log_id, old, marks)
            _rewrite_bundles(w, log_id, {s: bytes(entries[s]) for s in back})
            return len(back)

    # retention policies and holds ---------------------------------------------------

    def put_retention(self, record: RetentionRecord) -> None:
        with self._write(f"storing the retention policy of {record.tenant}") as w:
            w.execute("INSERT INTO retention (tenant, body, updated, updated_by) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET "
                      "body = excluded.body, updated = excluded.updated, "
                      "updated_by = excluded.updated_by",
                      (record.tenant, record.body, record.updated, record.updated_by))

    def get_retention(self, tenant: str) -> RetentionRecord | None:
        with _mapped(f"reading the retention policy of {tenant}"):
            row = self._reader().execute(
                "SELECT tenant, body, updated, updated_by FROM retention WHERE tenant = ?",
                (tenant,)).fetchone()
        return RetentionRecord(*row) if row else None

    def list_retention(self) -> list[RetentionRecord]:
        with _mapped("listing retention policies"):
            rows = self._reader().execute(
                "SELECT tenant, body, updated, updated_by FROM retention ORDER BY tenant"
            ).fetchall()
        return [RetentionRecord(*r) for r in rows]

    def put_hold(self, hold: HoldRecord) -> None:
        with self._write(f"storing hold {hold.id}") as w:
            w.execute(f"INSERT OR REPLACE INTO holds ({_HOLD_COLS}) "  # noqa: S608 -- a constant column list
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _hold_row(hold))

    def get_hold(self, tenant: str, hold_id: str) -> HoldRecord | None:
        with _mapped(f"reading hold {hold_id}"):
            row = self._reader().execute(
                f"SELECT {_HOLD_COLS} FROM holds WHERE tenant = ? AND id = ?",  # noqa: S608 -- a constant column list
                (tenant, hold_id)).fetchone()
        return _hold(row) if row else None

    def holds(self, tenant: str | None = None, *, active: bool | None = None
              ) -> list[HoldRecord]:
        where = ["1 = 1"]
        args: list[object] = []
        if tenant is not None:
            where.append("tenant = ?")
            args.append(tenant)
        if active is not None:
            where.append("released IS NULL" if active else "released IS NOT NULL")
        with _mapped("listing holds"):
            rows = self._reader().execute(
                f"SELECT {_HOLD_COLS} FROM holds WHERE {' AND '.join(where)} "  # noqa: S608 -- only fixed conditions and placeholders are formatted in
                "ORDER BY created, tenant, id", args).fetchall()
        return [_hold(r) for r in rows]

    # witnesses ------------------------------------------------------------------------

    def put_cosignature(self, cosignature: Cosignature) -> None:
        with self._write(f"storing a cosignature of log {cosignature.log_id}") as w:
            w.execute(f"INSERT OR REPLACE INTO cosignatures ({_COSIGNATURE_COLS}) "  # noqa: S608 -- a constant column list
                      "VALUES (?, ?, ?, ?, ?, ?)", _cosignature_row(cosignature))

    def cosignatures(self, log_id: int, size: int | None = None) -> list[Cosignature]:
        with _mapped(f"reading cosignatures of log {log_id}"):
            rows = self._reader().execute(
                f"SELECT {_COSIGNATURE_COLS} FROM cosignatures WHERE log_id = ? "  # noqa: S608 -- a constant column list
                "AND (? IS NULL OR size = ?) ORDER BY size, witness",
                (log_id, size, size)).fetchall()
        return [_cosignature(r) for r in rows]

    def witness_head(self, origin: str) -> tuple[int, bytes] | None:
        with _mapped(f"reading the witness head of {origin}"):
            row = self._reader().execute(
                "SELECT size, root FROM witness_heads WHERE origin = ?", (origin,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def set_witness_head(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        with self._write(f"updating the witness head of {origin}") as w:
            row = w.execute("SELECT size FROM witness_heads WHERE origin = ?",
                            (origin,)).fetchone()
            if (int(row[0]) if row else 0) != old_size:
                return False
            w.execute("INSERT OR REPLACE INTO witness_heads (origin, size, root) "
                      "VALUES (?, ?, ?)", (origin, size, bytes(root)))
            return True

    # cold archive ---------------------------------------------------------------------

    def put_archive(self, record: ArchiveRecord) -> None:
        with self._write(f"storing an archive row of log {record.log_id}") as w:
            w.execute(f"INSERT OR REPLACE INTO archives ({_ARCHIVE_COLS}) "  # noqa: S608 -- a constant column list
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _archive_row(record))

    def archives(self, log_id: int) -> list[ArchiveRecord]:
        with _mapped(f"reading archive rows of log {log_id}"):
            rows = self._reader().execute(
                f"SELECT {_ARCHIVE_COLS} FROM archives WHERE log_id = ? "  # noqa: S608 -- a constant column list
                "ORDER BY first_seq", (log_id,)).fetchall()
        return [_archive(r) for r in rows]


def _runs_near(c: sqlite3.Connection, log_id: int, lo: int, hi: int, *, touching: bool = True
               ) -> list[PurgedRange]:
    """Runs overlapping [lo, hi) (or touching it, to merge with), ascending. Runs are
    disjoint, so the scan starts at the last run starting at or before lo (- 1)."""
    a, b = (lo - 1, hi + 1) if touching else (lo, hi)
    rows = c.execute(
        "SELECT first_seq, end_seq, record_seq FROM purged WHERE log_id = ? AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM purged WHERE log_id = ? AND first_seq <= ?), ?) "
        "AND first_seq < ? ORDER BY first_seq", (log_id, log_id, a, a, b)).fetchall()
    return [PurgedRange(int(f), int(e), int(r)) for f, e, r in rows
            if (e >= lo if touching else e > lo)]


def _replace_runs(w: sqlite3.Connection, log_id: int, old: list[PurgedRange],
                  new: list[PurgedRange]) -> None:
    w.executemany("DELETE FROM purged WHERE log_id = ? AND first_seq = ?",
                  [(log_id, r.first) for r in old])
    w.executemany("INSERT INTO purged (log_id, first_seq, end_seq, record_seq) "
                  "VALUES (?, ?, ?, ?)", [(log_id, r.first, r.end, r.record_seq) for r in new])


def _rewrite_bundles(w: sqlite3.Connection, log_id: int, entries: dict[int, bytes]) -> None:
    """Rewrite the bundle rows holding these seqs with these entries in their place;
    digests and dedup keys stay."""
    lo, hi = min(entries), max(entries)
    rows = w.execute(
        "SELECT first_seq, count, entries FROM bundles WHERE log_id = ? AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM bundles WHERE log_id = ? AND first_seq <= ?), ?) "
        "AND first_seq <= ? ORDER BY first_seq", (log_id, log_id, lo, lo, hi)).fetchall()
    seqs = sorted(entries)
    updates = []
    for first, count, blob in rows:
        i = bisect.bisect_left(seqs, first)
        if i < len(seqs) and seqs[i] < first + count:
            packed = purge_bundle(blob, first, count, entries,
                                  f"log {log_id} bundle at seq {first}")
            updates.append((packed, log_id, first))
    w.executemany("UPDATE bundles SET entries = ? WHERE log_id = ? AND first_seq = ?", updates)


def _drop_personal(w: sqlite3.Connection, log_id: int, seqs: list[int]) -> None:
    lo, hi = min(seqs), max(seqs)
    gone = set(seqs)
    rows = w.execute(
        "SELECT first_seq, data FROM personal WHERE log_id = ? AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM personal WHERE log_id = ? AND first_seq <= ?), ?) "
        "AND first_seq <= ?", (log_id, log_id, lo, lo, hi)).fetchall()
    for first, blob in rows:
        left, changed = drop_personal(blob, gone)
        if not changed:
            continue
        if left is None:
            w.execute("DELETE FROM personal WHERE log_id = ? AND first_seq = ?", (log_id, first))
        else:
            w.execute("UPDATE personal SET data = ? WHERE log_id = ? AND first_seq = ?",
                      (left, log_id, first))
