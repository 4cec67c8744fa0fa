"""The PostgreSQL backend's rows for keeping logs for years: retention purges and
restores, retention policies, legal holds, witness cosignatures and heads, and
cold-archive ranges. A mixin of `PostgresBackend`, the twin of sqlite_keeping.py."""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable
from typing import Any

import psycopg

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

_Conn = psycopg.Connection[tuple[Any, ...]]
_MAX = 2**63 - 1
_HOLD_SET = ", ".join(f"{c} = excluded.{c}" for c in _HOLD_COLS.split(", ")[2:])


class KeepingRows:
    """Purge, restore and the retention, hold, cosignature, witness-head and archive rows."""

    # PostgresBackend's: a pooled connection, and one inside a transaction
    _read: Callable[[str], contextlib.AbstractContextManager[_Conn]]
    _write: Callable[[str], contextlib.AbstractContextManager[_Conn]]

    # purge and restore ------------------------------------------------------------

    def purge(self, purge: Purge) -> int:
        """One transaction, then VACUUM of the tables it deleted from, as `erase` does
        (and with the same limits: PostgreSQL cannot overwrite the freed space; the old
        bytes stay in WAL segments and page free space until they are reused)."""
        log_id = purge.log_id
        if not purge.seqs:
            return 0
        with self._write(f"purging entries of log {log_id}") as w:
            _lock_marks(w, log_id)
            row = w.execute("SELECT name, size FROM logs WHERE id = %s", (log_id,)).fetchone()
            if row is None:
                raise StorageError(f"no log with id {log_id}")
            if min(purge.seqs) < 0 or max(purge.seqs) >= row[1]:
                raise StorageError(f"log {row[0]}: cannot purge seqs outside [0, {row[1]})")
            old = _runs_near(w, log_id, min(purge.seqs), max(purge.seqs) + 1)
            marks, fresh = runs.add(old, purge.seqs, purge.record_seq)
            if not fresh:
                return 0
            _replace_runs(w, log_id, old, marks)
            _rewrite_bundles(w, log_id, dict.fromkeys(fresh, b""))
            _drop_personal(w, log_id, fresh)
            w.execute("DELETE FROM raws WHERE log_id = %s AND seq = ANY(%s::bigint[])",
                      (log_id, fresh))
            w.execute("DELETE FROM subjects WHERE log_id = %s AND seq = ANY(%s::bigint[])",
                      (log_id, fresh))
        with self._read(f"vacuuming after a purge in log {log_id}") as c:
            c.execute("VACUUM bundles, personal, raws, subjects")
        return len(fresh)

    def purged_ranges(self, log_id: int, start: int = 0, end: int | None = None
                      ) -> list[PurgedRange]:
        with self._read(f"reading purged ranges of log {log_id}") as c:
            found = _runs_near(c, log_id, start, _MAX if end is None else end, touching=False)
        return runs.clip(found, start, end)

    def stored_bytes(self) -> dict[str, int]:
        with self._read("measuring the stored bytes of each log") as c:
            rows = c.execute(
                "SELECT l.name, (SELECT coalesce(sum(octet_length(entries) + "
                "octet_length(digests)), 0) FROM bundles WHERE log_id = l.id) + "
                "(SELECT coalesce(sum(octet_length(data)), 0) FROM raws WHERE log_id = l.id) "
                "FROM logs l").fetchall()
        return {name: int(size) for name, size in rows}

    def restore(self, log_id: int, entries: dict[int, bytes]) -> int:
        if not entries:
            return 0
        with self._write(f"restoring entries of log {log_id}") as w:
            _lock_marks(w, log_id)
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
                      "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant) DO UPDATE SET "
                      "body = excluded.body, updated = excluded.updated, "
                      "updated_by = excluded.updated_by",
                      (record.tenant, record.body, record.updated, record.updated_by))

    def get_retention(self, tenant: str) -> RetentionRecord | None:
        with self._read(f"reading the retention policy of {tenant}") as c:
            row = c.execute("SELECT tenant, body, updated, updated_by FROM retention "
                            "WHERE tenant = %s", (tenant,)).fetchone()
        return RetentionRecord(*row) if row else None

    def list_retention(self) -> list[RetentionRecord]:
        with self._read("listing retention policies") as c:
            rows = c.execute("SELECT tenant, body, updated, updated_by FROM retention "
                             "ORDER BY tenant").fetchall()
        return [RetentionRecord(*r) for r in rows]

    def put_hold(self, hold: HoldRecord) -> None:
        with self._write(f"storing hold {hold.id}") as w:
            w.execute(f"INSERT INTO holds ({_HOLD_COLS}) VALUES ({', '.join(['%s'] * 12)}) "  # noqa: S608 -- a constant column list
                      f"ON CONFLICT (tenant, id) DO UPDATE SET {_HOLD_SET}", _hold_row(hold))

    def get_hold(self, tenant: str, hold_id: str) -> HoldRecord | None:
        with self._read(f"reading hold {hold_id}") as c:
            row = c.execute(f"SELECT {_HOLD_COLS} FROM holds WHERE tenant = %s AND id = %s",  # noqa: S608 -- a constant column list
                            (tenant, hold_id)).fetchone()
        return _hold(row) if row else None

    def holds(self, tenant: str | None = None, *, active: bool | None = None
              ) -> list[HoldRecord]:
        with self._read("listing holds") as c:
            rows = c.execute(
                f"SELECT {_HOLD_COLS} FROM holds WHERE (%s::text IS NULL OR tenant = %s) "  # noqa: S608 -- a constant column list
                "AND (%s::boolean IS NULL OR (released IS NULL) = %s) "
                "ORDER BY created, tenant, id", (tenant, tenant, active, active)).fetchall()
        return [_hold(r) for r in rows]

    # witnesses ------------------------------------------------------------------------

    def put_cosignature(self, cosignature: Cosignature) -> None:
        with self._write(f"storing a cosignature of log {cosignature.log_id}") as w:
            w.execute(f"INSERT INTO cosignatures ({_COSIGNATURE_COLS}) "  # noqa: S608 -- a constant column list
                      "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (log_id, size, witness) "
                      "DO UPDATE SET root = excluded.root, line = excluded.line, "
                      "created = excluded.created", _cosignature_row(cosignature))

    def cosignatures(self, log_id: int, size: int | None = None) -> list[Cosignature]:
        with self._read(f"reading cosignatures of log {log_id}") as c:
            rows = c.execute(
                f"SELECT {_COSIGNATURE_COLS} FROM cosignatures WHERE log_id = %s "  # noqa: S608 -- a constant column list
                "AND (%s::bigint IS NULL OR size = %s) ORDER BY size, witness",
                (log_id, size, size)).fetchall()
        return [_cosignature(r) for r in rows]

    def witness_head(self, origin: str) -> tuple[int, bytes] | None:
        with self._read(f"reading the witness head of {origin}") as c:
            row = c.execute("SELECT size, root FROM witness_heads WHERE origin = %s",
                            (origin,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def set_witness_head(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        # One statement either way, so two servers racing cannot both win: the update
        # only matches the old size, and the insert of a first head conflicts.
        with self._write(f"updating the witness head of {origin}") as w:
            if old_size == 0:
                cur = w.execute(
                    "INSERT INTO witness_heads (origin, size, root) VALUES (%s, %s, %s) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                    "root = excluded.root WHERE witness_heads.size = 0",
                    (origin, size, bytes(root)))
            else:
                cur = w.execute("UPDATE witness_heads SET size = %s, root = %s "
                                "WHERE origin = %s AND size = %s",
                                (size, bytes(root), origin, old_size))
            return cur.rowcount == 1

    # cold archive ---------------------------------------------------------------------

    def put_archive(self, record: ArchiveRecord) -> None:
        with self._write(f"storing an archive row of log {record.log_id}") as w:
            w.execute(f"INSERT INTO archives ({_ARCHIVE_COLS}) "  # noqa: S608 -- a constant column list
                      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                      "ON CONFLICT (log_id, first_seq) DO UPDATE SET end_seq = excluded.end_seq, "
                      "url = excluded.url, manifest_url = excluded.manifest_url, "
                      "sha256 = excluded.sha256, checkpoint_size = excluded.checkpoint_size, "
                      "created = excluded.created", _archive_row(record))

    def archives(self, log_id: int) -> list[ArchiveRecord]:
        with self._read(f"reading archive rows of log {log_id}") as c:
            rows = c.execute(f"SELECT {_ARCHIVE_COLS} FROM archives WHERE log_id = %s "  # noqa: S608 -- a constant column list
                             "ORDER BY first_seq", (log_id,)).fetchall()
        return [_archive(r) for r in rows]


def _lock_marks(w: _Conn, log_id: int) -> None:
    # Purges and restores of one log take turns (their runs are read, then rewritten);
    # appends do not wait for them: they never touch the purge marks or old bundles.
    w.execute("SELECT pg_advisory_xact_lock(hashtextextended('auditkeep.purge.' || %s, 0))",
              (str(log_id),))


def _runs_near(c: _Conn, log_id: int, lo: int, hi: int, *, touching: bool = True
               ) -> list[PurgedRange]:
    """Runs overlapping [lo, hi) (or touching it, to merge with), ascending."""
    a, b = (lo - 1, hi + 1) if touching else (lo, hi)
    rows = c.execute(
        "SELECT first_seq, end_seq, record_seq FROM purged WHERE log_id = %s AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM purged WHERE log_id = %s AND first_seq <= %s), "
        "%s) AND first_seq < %s ORDER BY first_seq", (log_id, log_id, a, a, b)).fetchall()
    return [PurgedRange(int(f), int(e), int(r)) for f, e, r in rows
            if (e >= lo if touching else e > lo)]


def _replace_runs(w: _Conn, log_id: int, old: list[PurgedRange], new: list[PurgedRange]
                  ) -> None:
    w.execute("DELETE FROM purged WHERE log_id = %s AND first_seq = ANY(%s::bigint[])",
              (log_id, [r.first for r in old]))
    with w.cursor() as cur:
        cur.executemany("INSERT INTO purged (log_id, first_seq, end_seq, record_seq) "
                        "VALUES (%s, %s, %s, %s)",
                        [(log_id, r.first, r.end, r.record_seq) for r in new])


def _rewrite_bundles(w: _Conn, log_id: int, entries: dict[int, bytes]) -> None:
    """Rewrite the bundle rows holding these seqs; digests and dedup keys stay."""
    lo, hi = min(entries), max(entries)
    rows = w.cursor(binary=True).execute(
        "SELECT first_seq, count, entries FROM bundles WHERE log_id = %s AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM bundles WHERE log_id = %s AND first_seq <= %s), "
        "%s) AND first_seq <= %s ORDER BY first_seq FOR UPDATE",
        (log_id, log_id, lo, lo, hi)).fetchall()
    seqs = sorted(entries)
    updates = []
    for first, count, blob in rows:
        i = bisect.bisect_left(seqs, first)
        if i < len(seqs) and seqs[i] < first + count:
            updates.append((purge_bundle(bytes(blob), first, count, entries,
                                         f"log {log_id} bundle at seq {first}"), log_id, first))
    with w.cursor() as cur:
        cur.executemany("UPDATE bundles SET entries = %s WHERE log_id = %s AND first_seq = %s",
                        updates)


def _drop_personal(w: _Conn, log_id: int, seqs: list[int]) -> None:
    lo, hi = min(seqs), max(seqs)
    rows = w.cursor(binary=True).execute(
        "SELECT first_seq, data FROM personal WHERE log_id = %s AND first_seq >= "
        "coalesce((SELECT max(first_seq) FROM personal WHERE log_id = %s AND first_seq <= %s), "
        "%s) AND first_seq <= %s FOR UPDATE", (log_id, log_id, lo, lo, hi)).fetchall()
    gone = set(seqs)
    for first, blob in rows:
        left, changed = drop_personal(bytes(blob), gone)
        if not changed:
            continue
        if left is None:
            w.execute("DELETE FROM personal WHERE log_id = %s AND first_seq = %s",
                      (log_id, first))
        else:
            w.execute("UPDATE personal SET data = %s WHERE log_id = %s AND first_seq = %s",
                      (left, log_id, first))
