"""The search index: a second SQLite file (`DATA/search.db`) built from the log after commit.

Nothing here is on the acknowledgement path and nothing here is authoritative: delete
the file and the indexer rebuilds it from the log. Keeping it in its own file means
the indexer never competes with the sequencers for the log database's write lock.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkeep.errors import FieldProblem, StorageError, ValidationError
from auditkeep.query.ast import Node
from auditkeep.query.fields import column_values, free_text, leaves
from auditkeep.query.sql import Condition, compile_where
from auditkeep.storage.sqlite import Connections, mapped_errors

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,
    log_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    actor TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT,
    rtype TEXT,
    rid TEXT,
    service TEXT,
    trace_id TEXT,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS ev_time ON events (log_id, time_us);
CREATE INDEX IF NOT EXISTS ev_actor ON events (log_id, actor, time_us);
CREATE INDEX IF NOT EXISTS ev_action ON events (log_id, action, time_us);
CREATE INDEX IF NOT EXISTS ev_resource ON events (log_id, rtype, rid, time_us);
CREATE INDEX IF NOT EXISTS ev_rid ON events (log_id, rid, time_us);
CREATE INDEX IF NOT EXISTS ev_outcome ON events (log_id, outcome, time_us);
CREATE INDEX IF NOT EXISTS ev_category ON events (log_id, category, time_us);
CREATE INDEX IF NOT EXISTS ev_service ON events (log_id, service, time_us);
CREATE INDEX IF NOT EXISTS ev_trace ON events (log_id, trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ev_request ON events (log_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS attrs (
    key TEXT NOT NULL,
    value NOT NULL,
    rowid INTEGER NOT NULL,
    PRIMARY KEY (key, value, rowid)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (text, content='');
CREATE TABLE IF NOT EXISTS cursors (log_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS field_cursors (log_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ev_seq ON events (log_id, seq);
"""

# Bump when SCHEMA changes: the index is derived, so an old one is dropped and rebuilt.
SCHEMA_VERSION = 4
TABLES = ("events_fts", "events", "attrs", "cursors", "field_cursors")
WRITER_CACHE_KIB = 512 * 1024


def index_row(log_id: int, rec: dict[str, Any]) -> tuple[Any, ...]:
    c = column_values(rec)
    return (log_id, c["seq"], c["time"], c["actor.id"], c["actor.type"], c["action"],
            c["outcome"], c["category"], c["severity"], c["resource.type"],
            c["resource.id"], c["source.service"], c["trace_id"], c["request_id"])


def encode_cursor(t: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{t}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        t, s = raw.split(":")
        return int(t), int(s)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor is not one this server issued", problems=[
            FieldProblem("/query/cursor", "not a cursor this server issued")]) from None


@dataclass(frozen=True, slots=True)
class Window:
    """Where a search looks: a time window and a keyset position (newest first)."""

    since_us: int | None = None
    until_us: int | None = None
    cursor: tuple[int, int] | None = None  # strictly older than this (time_us, seq)
    after: tuple[int, int] | None = None  # strictly newer than this (time_us, seq)

    def conditions(self, table: str = "") -> Condition:
        """The window as SQL; `table` qualifies the columns (`e.`) when needed."""
        t, s = f"{table}time_us", f"{table}seq"
        parts: list[str] = []
        args: list[Any] = []
        if self.since_us is not None:
            parts.append(f"{t} >= ?")
            args.append(self.since_us)
        if self.until_us is not None:
            parts.append(f"{t} < ?")
            args.append(self.until_us)
        if self.cursor is not None:
            parts.append(f"{t} <= ? AND ({t} < ? OR {s} < ?)")
            args += [self.cursor[0], self.cursor[0], self.cursor[1]]
        if self.after is not None:
            parts.append(f"{t} >= ? AND ({t} > ? OR {s} > ?)")
            args += [self.after[0], self.after[0], self.after[1]]
        return Condition(" AND ".join(parts) or "1", args)


def _cursor(w: sqlite3.Connection, table: str, log_id: int) -> int:
    row = w.execute(f"SELECT seq FROM {table} WHERE log_id = ?", (log_id,)).fetchone()  # noqa: S608 -- fixed table names
    return int(row[0]) if row else 0


def _move(w: sqlite3.Connection, table: str, log_id: int, seq: int) -> None:
    w.execute(f"INSERT INTO {table} (log_id, seq) VALUES (?, ?) ON CONFLICT (log_id) "  # noqa: S608
              "DO UPDATE SET seq = excluded.seq", (log_id, seq))


def _insert_fields(w: sqlite3.Connection, rows: list[tuple[int, dict[str, Any]]],
                   raws: dict[int, Any]) -> None:
    w.executemany("INSERT OR IGNORE INTO attrs (key, value, rowid) VALUES (?, ?, ?)",
                  [(k, v, rowid) for rowid, r in rows for k, v in leaves(r, raws.get(r["seq"]))])


class SearchIndex:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # The index is rebuilt from the log after a crash, so it need not fsync each batch.
        self._conns = Connections(self.path, synchronous="NORMAL", cache_kib=131072)
        self._reader = self._conns.reader
        self._write_lock = threading.Lock()
        with mapped_errors(f"opening {self.path}"):
            self._writer = self._conns.new()
            # Index pages are touched at random as rows arrive (actors, actions, attrs
            # values); a larger cache for the one writer keeps more of them in memory.
            self._writer.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                for table in TABLES:
                    self._writer.execute(f"DROP TABLE IF EXISTS {table}")
            self._writer.executescript(SCHEMA)
            self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def cursor(self, log_id: int) -> int:
        row = self._reader().execute("SELECT seq FROM cursors WHERE log_id = ?",
                                     (log_id,)).fetchone()
        return int(row[0]) if row else 0

    def cursors(self) -> dict[int, int]:
        return dict(self._reader().execute("SELECT log_id, seq FROM cursors").fetchall())

    def field_cursors(self) -> dict[int, int]:
        """How far each log's `attrs` rows (every field beyond the columns) go."""
        return dict(self._reader().execute("SELECT log_id, seq FROM field_cursors").fetchall())

    def add(self, log_id: int, records: Sequence[dict[str, Any]], next_seq: int,
            raws: dict[int, Any] | None = None, *, fields: bool = True) -> bool:
        """Index `records` (consecutive, from the log's cursor) and move the cursor.
        `raws` maps seq -> the parsed raw source object of records that have one.
        With `fields=False` only the columns and free text are written, and
        `add_fields` must follow (the indexer does this so the hot fields stay
        searchable within a second under load; the `attrs` rows cost twice as much).
        False, and nothing written, if the cursor moved meanwhile (another indexer)."""
        rows = [index_row(log_id, r) for r in records]
        texts = [free_text(r) for r in records]
        with self._write_lock, mapped_errors("writing the search index"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                if _cursor(w, "cursors", log_id) != next_seq - len(records):
                    w.execute("ROLLBACK")
                    return False
                start = w.execute("SELECT coalesce(max(rowid), 0) + 1 FROM events").fetchone()[0]
                w.executemany(
                    "INSERT INTO events (rowid, log_id, seq, time_us, actor, actor_type, action, "
                    "outcome, category, severity, rtype, rid, service, trace_id, request_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(start + i, *row) for i, row in enumerate(rows)])
                w.executemany("INSERT INTO events_fts (rowid, text) VALUES (?, ?)",
                              [(start + i, t) for i, t in enumerate(texts)])
                _move(w, "cursors", log_id, next_seq)
                if fields:
                    _insert_fields(w, [(start + i, r) for i, r in enumerate(records)], raws or {})
                    _move(w, "field_cursors", log_id, next_seq)
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                raise
        return True

    def add_fields(self, log_id: int, records: Sequence[dict[str, Any]], next_seq: int,
                   raws: dict[int, Any] | None = None) -> bool:
        """The `attrs` rows of records already added with `fields=False`, consecutive
        from the log's field cursor. False, and nothing written, if that moved."""
        with self._write_lock, mapped_errors("writing the search index"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                first = next_seq - len(records)
                if _cursor(w, "field_cursors", log_id) != first or \
                        _cursor(w, "cursors", log_id) < next_seq:
                    w.execute("ROLLBACK")
                    return False
                rowids = dict(w.execute(
                    "SELECT seq, rowid FROM events WHERE log_id = ? AND seq >= ? AND seq < ?",
                    (log_id, first, next_seq)).fetchall())
                _insert_fields(w, [(rowids[r["seq"]], r) for r in records], raws or {})
                _move(w, "field_cursors", log_id, next_seq)
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                raise
        return True

    def search(self, log_id: int, node: Node, window: Window, *, limit: int,
               oldest_first: bool = False) -> list[tuple[int, int]]:
        """(time_us, seq) of matches, newest first (or oldest first)."""
        where = compile_where(node)
        win = window.conditions()
        order = "ASC" if oldest_first else "DESC"
        sql = ("SELECT time_us, seq FROM events WHERE log_id = ? AND " + win.sql  # noqa: S608 -- compiled from fixed fragments; values are bound
               + " AND " + where.sql + f" ORDER BY time_us {order}, rowid {order} LIMIT ?")
        rows = self.execute(sql, [log_id, *win.args, *where.args, limit])
        return [(int(t), int(s)) for t, s in rows]

    def execute(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run a read on the index, mapping driver errors (full text syntax errors
        cannot happen: free text reaches FTS5 as tokens we built)."""
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"searching: {exc}") from exc

    def close(self) -> None:
        self._conns.close()
