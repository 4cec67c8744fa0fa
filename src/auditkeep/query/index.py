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
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from auditkeep.errors import FieldProblem, StorageError, ValidationError
from auditkeep.query import plans, rollups
from auditkeep.query.ast import Node
from auditkeep.query.fields import column_values, free_text, leaves, time_us
from auditkeep.query.sql import Condition
from auditkeep.storage.sqlite import Connections, cache_kib, mapped_errors

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
    request_id TEXT,
    id TEXT,
    received TEXT
);
CREATE INDEX IF NOT EXISTS ev_time ON events (log_id, time_us);
CREATE INDEX IF NOT EXISTS ev_seq ON events (log_id, seq);
CREATE INDEX IF NOT EXISTS ev_actor ON events (log_id, actor, time_us);
CREATE INDEX IF NOT EXISTS ev_action ON events (log_id, action, time_us);
CREATE INDEX IF NOT EXISTS ev_rid ON events (log_id, rid, time_us) WHERE rid IS NOT NULL;
CREATE INDEX IF NOT EXISTS ev_trace ON events (log_id, trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ev_request ON events (log_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ev_id ON events (log_id, id) WHERE id IS NOT NULL;
CREATE TABLE IF NOT EXISTS keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS attrs (
    key INTEGER NOT NULL,
    value NOT NULL,
    rowid INTEGER NOT NULL,
    PRIMARY KEY (key, value, rowid)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (text, content='');
CREATE TABLE IF NOT EXISTS blocks (
    block INTEGER PRIMARY KEY, max_time INTEGER NOT NULL, prefix_max INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (log_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS field_cursors (log_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
""" + rollups.SCHEMA

# Bump when SCHEMA changes: the index is derived, so an old one is dropped and rebuilt.
SCHEMA_VERSION = 5
TABLES = ("events_fts", "events", "attrs", "keys", "blocks", "cursors", "field_cursors",
          *rollups.TABLES)
WRITER_CACHE_KIB = 512 * 1024
_KEY_ID = itemgetter(0)


def index_row(log_id: int, rec: dict[str, Any]) -> tuple[Any, ...]:
    c = column_values(rec)
    return (log_id, c["seq"], c["time"], c["actor.id"], c["actor.type"], c["action"],
            c["outcome"], c["category"], c["severity"], c["resource.type"],
            c["resource.id"], c["source.service"], c["trace_id"], c["request_id"],
            c["id"], c["received"])


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


class SearchIndex:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # The index is rebuilt from the log after a crash, so it need not fsync each batch.
        self._conns = Connections(self.path, synchronous="NORMAL", cache_kib=131072)
        self._reader = self._conns.reader
        self._write_lock = threading.Lock()
        self._rollups = rollups.RollupWriter()
        with mapped_errors(f"opening {self.path}"):
            self._writer = self._conns.new()
            # Index pages are touched at random as rows arrive (actors, actions, attrs
            # values); a larger cache for the one writer keeps more of them in memory.
            self._writer.execute(f"PRAGMA cache_size = -{cache_kib(WRITER_CACHE_KIB)}")
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                for table in TABLES:
                    self._writer.execute(f"DROP TABLE IF EXISTS {table}")
            self._writer.executescript(SCHEMA)
            self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._load_keys()

    def _load_keys(self) -> None:
        """The `attrs` key ids, both ways (the writer's cache of the `keys` table)."""
        self._keys = {k: int(i) for i, k in self._writer.execute("SELECT id, key FROM keys")}
        self._names = {i: k for k, i in self._keys.items()}

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
            raws: dict[int, Any] | None = None, *, fields: bool = True,
            first: int | None = None) -> bool:
        """Index `records` (consecutive, from the log's cursor) and move the cursor.
        `first`: the seq the batch starts at, when purged entries (none to index) make
        the records fewer than the seqs [first, next_seq).
        `raws` maps seq -> the parsed raw source object of records that have one.
        With `fields=False` only the columns, free text and their rollups are written,
        and `add_fields` must follow (the indexer does this so the hot fields stay
        searchable within a second under load; the `attrs` rows cost as much again).
        False, and nothing written, if the cursor moved meanwhile (another indexer)."""
        rows = [index_row(log_id, r) for r in records]
        texts = [free_text(r) for r in records]
        with self._write_lock, mapped_errors("writing the search index"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                if _cursor(w, "cursors", log_id) != (
                        next_seq - len(records) if first is None else first):
                    w.execute("ROLLBACK")
                    return False
                start = w.execute("SELECT coalesce(max(rowid), 0) + 1 FROM events").fetchone()[0]
                w.executemany(
                    "INSERT INTO events (rowid, log_id, seq, time_us, actor, actor_type, action, "
                    "outcome, category, severity, rtype, rid, service, trace_id, request_id, "
                    "id, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(start + i, *row) for i, row in enumerate(rows)])
                w.executemany("INSERT INTO events_fts (rowid, text) VALUES (?, ?)",
                              [(start + i, t) for i, t in enumerate(texts)])
                _blocks(w, start, [row[2] for row in rows])
                self._rollups.add_rows(w, rows)
                _move(w, "cursors", log_id, next_seq)
                if fields:
                    self._fields(w, log_id, [(start + i, r) for i, r in enumerate(records)],
                                 raws or {})
                    _move(w, "field_cursors", log_id, next_seq)
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                self._forget()
                raise
        return True

    def add_fields(self, log_id: int, records: Sequence[dict[str, Any]], next_seq: int,
                   raws: dict[int, Any] | None = None, *, first: int | None = None) -> bool:
        """The `attrs` rows of records already added with `fields=False`, consecutive
        from the log's field cursor (`first`, as for `add`). False, and nothing written,
        if that moved."""
        with self._write_lock, mapped_errors("writing the search index"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                first = next_seq - len(records) if first is None else first
                if _cursor(w, "field_cursors", log_id) != first or \
                        _cursor(w, "cursors", log_id) < next_seq:
                    w.execute("ROLLBACK")
                    return False
                rowids = dict(w.execute(
                    "SELECT seq, rowid FROM events WHERE log_id = ? AND seq >= ? AND seq < ?",
                    (log_id, first, next_seq)).fetchall())
                self._fields(w, log_id, [(rowids[r["seq"]], r) for r in records], raws or {})
                _move(w, "field_cursors", log_id, next_seq)
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                self._forget()
                raise
        return True

    def _fields(self, w: sqlite3.Connection, log_id: int, rows: list[tuple[int, dict[str, Any]]],
                raws: dict[int, Any]) -> None:
        keys = self._keys
        out: list[tuple[int, Any, int]] = []
        when: dict[int, tuple[int, str]] = {}
        for rowid, r in rows:
            when[rowid] = (time_us(r["time"]) // rollups.HOUR_US, r["action"])
            for k, v in leaves(r, raws.get(r["seq"])):
                kid = keys.get(k)
                if kid is None:
                    kid = keys[k] = int(w.execute("INSERT INTO keys (key) VALUES (?) RETURNING id",
                                                  (k,)).fetchone()[0])
                    self._names[kid] = k
                out.append((kid, v, rowid))
        # In key order, so each B-tree page of `attrs` is visited once per batch.
        out.sort(key=_KEY_ID)
        w.executemany("INSERT OR IGNORE INTO attrs (key, value, rowid) VALUES (?, ?, ?)", out)
        names = self._names
        dead = {keys[k] for k in self._rollups.retired_keys(w, log_id) if k in keys}
        self._rollups.add_fields(w, log_id, ((names[kid], v, when[rowid])
                                             for kid, v, rowid in set(out) if kid not in dead))

    def forget(self, log_id: int, records: Sequence[dict[str, Any]],
               raws: dict[int, Any] | None = None) -> int:
        """Remove purged events (retention/purge.py) from the search: their rows, free
        text, fields and what they added to the rollups, so neither a search nor an
        aggregate finds them. `records` are the entries as they were indexed, read just
        before the purge (the contentless free-text index and the `attrs` keys need them);
        records not indexed yet are skipped (the indexer finds them purged). How many
        events went."""
        raws = raws or {}
        with self._write_lock, mapped_errors("forgetting purged events in the search index"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                by_seq = {int(r["seq"]): r for r in records}
                found = w.execute(
                    "SELECT rowid, log_id, seq, time_us, actor, actor_type, action, outcome, "
                    "category, severity, rtype, rid, service, trace_id, request_id, id, "
                    "received FROM events WHERE log_id = ? AND seq IN "
                    "(SELECT value FROM json_each(?))",
                    (log_id, orjson.dumps(list(by_seq)).decode())).fetchall()
                if not found:
                    w.execute("ROLLBACK")
                    return 0
                fielded = _cursor(w, "field_cursors", log_id)
                keys = self._keys
                dead = self._rollups.retired_keys(w, log_id)
                attrs: set[tuple[int, Any, int]] = set()
                rolled: list[tuple[str, Any, tuple[int, str]]] = []
                for row in found:
                    rowid, seq = row[0], row[2]
                    rec = by_seq[seq]
                    w.execute("INSERT INTO events_fts (events_fts, rowid, text) "
                              "VALUES ('delete', ?, ?)", (rowid, free_text(rec)))
                    if seq >= fielded:
                        continue
                    when = (time_us(rec["time"]) // rollups.HOUR_US, rec["action"])
                    for k, v in leaves(rec, raws.get(seq)):
                        kid = keys.get(k)
                        if kid is not None and (kid, v, rowid) not in attrs:
                            attrs.add((kid, v, rowid))
                            if k not in dead:
                                rolled.append((k, v, when))
                w.executemany("DELETE FROM attrs WHERE key = ? AND value = ? AND rowid = ?",
                              sorted(attrs, key=_KEY_ID))
                w.execute("DELETE FROM events WHERE rowid IN (SELECT value FROM json_each(?))",
                          (orjson.dumps([row[0] for row in found]).decode(),))
                self._rollups.remove_rows(w, [tuple(row[1:]) for row in found])
                self._rollups.remove_fields(w, log_id, rolled)
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                raise
            finally:
                self._forget()
        return len(found)

    def reindex(self, log_id: int, records: Sequence[dict[str, Any]],
                raws: dict[int, Any] | None = None) -> int:
        """Index again events that `forget` removed and rehydration brought back
        (archive/reading.py): rows, free text, rollups and, below the field cursor,
        fields. Cursors stay; records at or past the cursor (the indexer's) and records
        still indexed are skipped. How many were indexed."""
        with self._write_lock, mapped_errors("indexing rehydrated events"):
            w = self._writer
            w.execute("BEGIN IMMEDIATE")
            try:
                cursor = _cursor(w, "cursors", log_id)
                present = {int(r[0]) for r in w.execute(
                    "SELECT seq FROM events WHERE log_id = ? AND seq IN "
                    "(SELECT value FROM json_each(?))",
                    (log_id, orjson.dumps([r["seq"] for r in records]).decode()))}
                todo = [r for r in records if r["seq"] < cursor and r["seq"] not in present]
                if not todo:
                    w.execute("ROLLBACK")
                    return 0
                rows = [index_row(log_id, r) for r in todo]
                start = w.execute("SELECT coalesce(max(rowid), 0) + 1 FROM events").fetchone()[0]
                w.executemany(
                    "INSERT INTO events (rowid, log_id, seq, time_us, actor, actor_type, action, "
                    "outcome, category, severity, rtype, rid, service, trace_id, request_id, "
                    "id, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(start + i, *row) for i, row in enumerate(rows)])
                w.executemany("INSERT INTO events_fts (rowid, text) VALUES (?, ?)",
                              [(start + i, free_text(r)) for i, r in enumerate(todo)])
                _blocks(w, start, [row[2] for row in rows])
                self._rollups.add_rows(w, rows)
                fielded = _cursor(w, "field_cursors", log_id)
                self._fields(w, log_id, [(start + i, r) for i, r in enumerate(todo)
                                         if r["seq"] < fielded], raws or {})
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                self._forget()
                raise
        return len(todo)

    def _forget(self) -> None:
        """After a rolled-back write: what the writer cached may not be stored."""
        self._rollups.forget()
        self._load_keys()

    def search(self, log_id: int, node: Node, window: Window, *, limit: int,
               oldest_first: bool = False) -> list[tuple[int, int]]:
        """(time_us, seq) of matches, newest first (or oldest first)."""
        return plans.search(self, log_id, node, window, limit=limit, oldest_first=oldest_first)

    def execute(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run a read on the index, mapping driver errors (full text syntax errors
        cannot happen: free text reaches FTS5 as tokens we built)."""
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"searching: {exc}") from exc

    def close(self) -> None:
        self._conns.close()


def _blocks(w: sqlite3.Connection, start: int, times: list[int]) -> None:
    """Keep each block's newest time and the newest time at or below it."""
    if not times:
        return
    newest: dict[int, int] = {}
    for i, t in enumerate(times):
        b = (start + i) >> plans.BLOCK_BITS
        if newest.get(b, t - 1) < t:
            newest[b] = t
    first = min(newest)
    row = w.execute("SELECT max_time, prefix_max FROM blocks WHERE block = ?", (first,)).fetchone()
    below = w.execute("SELECT prefix_max FROM blocks WHERE block < ? ORDER BY block DESC LIMIT 1",
                      (first,)).fetchone()
    running = below[0] if below else None
    out = []
    for b in sorted(newest):
        t = newest[b]
        if b == first and row is not None:
            t = max(t, row[0])
        running = t if running is None else max(running, t)
        out.append((b, t, running))
    w.executemany("INSERT INTO blocks (block, max_time, prefix_max) VALUES (?, ?, ?) "
                  "ON CONFLICT (block) DO UPDATE SET max_time = excluded.max_time, "
                  "prefix_max = excluded.prefix_max", out)
