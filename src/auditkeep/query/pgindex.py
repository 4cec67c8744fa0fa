"""The search index on PostgreSQL: `SearchIndex`'s twin for `serve --storage postgresql://`.

Same interface, same answers (the agreement property test runs the SQLite index, this
one and the in-memory predicate side by side), in the storage backend's database under
tables prefixed `search_`. Derived like the SQLite file: drop the tables and the
indexer rebuilds them from the log.

- `search_events`: one row per event, RANGE-partitioned on `time_us` by month (a
  partition is created when a batch first needs it; times before 1970 or from 2200 on
  go to the default partition), with a BRIN index on `time_us` and the btree indexes
  of the SQLite `events`. Free text is `tsv` (our tokens, GIN) and `words` (the exact
  phrase check), see `query.pgsql`.
- `search_attrs` (key id, `num` | `txt`, event rowid) holds every field beyond the
  columns, as SQLite's `attrs`. Against a `jsonb` column (`{path: [values]}`) with a
  `jsonb_path_ops` GIN index, measured on 100k events with 9 such values each
  (PostgreSQL 15 on this machine, newest 100 matches): writing them 8.9 s against
  4.4 s (the GIN index built once after the load, which favours jsonb), 142 MB
  against 56 MB; equalities alike (0.1% of events 2.0 against 1.6 ms, 10%
  7.2 against 6.7 ms); but a rare range (`metadata.amount:[998 TO 999]`) 2.6 ms
  against 353 ms and a rare prefix (`metadata.ref:r-1234*`) 1.0 ms against 667 ms,
  since jsonpath ranges and prefixes cannot use the GIN index. So: the table.
- Free text: the GIN `tsvector` of our tokens against a `pg_trgm` GIN index on
  `words`, same events: a common word 2.9 against 1.7 ms, a rare one 6.8 against
  2.6 ms, a two-letter prefix 3.1 against 2.3 ms, a phrase 7.0 against 4.9 ms, the
  index 11.8 MB against 21.5 MB. Trigrams were a little faster at this size, but need
  the `pg_trgm` extension created in the database and twice the index: tsvector,
  with `words LIKE` deciding phrases exactly either way.

There are no rollups here: aggregates group the events directly (`query.pgaggregate`).
Writes are serialised per schema by a transaction-scoped advisory lock, as SQLite's
`BEGIN IMMEDIATE` serialises them, so the cursor check and the rows it guards commit
together even with two indexers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool

from auditkeep.errors import StorageError
from auditkeep.query import pgplans
from auditkeep.query.ast import Node
from auditkeep.query.fields import free_text, leaves
from auditkeep.query.index import Window, index_row
from auditkeep.query.pgsql import number, tsv_text, words_of, words_text

if TYPE_CHECKING:
    from auditkeep.query.pgaggregate import PgAggregator

_TEXT = 'text COLLATE "C"'
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS search_events (
    rowid bigint NOT NULL,
    log_id bigint NOT NULL,
    seq bigint NOT NULL,
    time_us bigint NOT NULL,
    actor {_TEXT} NOT NULL,
    actor_type {_TEXT} NOT NULL,
    action {_TEXT} NOT NULL,
    outcome {_TEXT} NOT NULL,
    category {_TEXT} NOT NULL,
    severity {_TEXT},
    rtype {_TEXT},
    rid {_TEXT},
    service {_TEXT},
    trace_id {_TEXT},
    request_id {_TEXT},
    id {_TEXT},
    received {_TEXT},
    words {_TEXT} NOT NULL,
    tsv tsvector NOT NULL,
    PRIMARY KEY (rowid, time_us)
) PARTITION BY RANGE (time_us);
CREATE TABLE IF NOT EXISTS search_events_default PARTITION OF search_events DEFAULT;
CREATE INDEX IF NOT EXISTS search_ev_brin ON search_events USING brin (time_us);
CREATE INDEX IF NOT EXISTS search_ev_time ON search_events (log_id, time_us);
CREATE INDEX IF NOT EXISTS search_ev_seq ON search_events (log_id, seq);
CREATE INDEX IF NOT EXISTS search_ev_actor ON search_events (log_id, actor, time_us);
CREATE INDEX IF NOT EXISTS search_ev_action ON search_events (log_id, action, time_us);
CREATE INDEX IF NOT EXISTS search_ev_rid ON search_events (log_id, rid, time_us)
    WHERE rid IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_ev_trace ON search_events (log_id, trace_id)
    WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_ev_request ON search_events (log_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_ev_id ON search_events (log_id, id) WHERE id IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_ev_tsv ON search_events USING gin (tsv);
CREATE TABLE IF NOT EXISTS search_keys (id serial PRIMARY KEY, key {_TEXT} NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS search_attrs (
    key integer NOT NULL, num numeric, txt {_TEXT}, ev bigint NOT NULL,
    CHECK ((num IS NULL) <> (txt IS NULL))
);
CREATE INDEX IF NOT EXISTS search_attrs_txt ON search_attrs (key, txt, ev)
    WHERE txt IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_attrs_num ON search_attrs (key, num, ev)
    WHERE num IS NOT NULL;
-- A group-by of few events reads their values through this one: without it a top-10
-- of `metadata.region` for one actor's 100 events took 58 ms instead of 1 ms, at the
-- price of 30% more time writing the fields (100k events: 7.8 s against 5.4 s).
CREATE INDEX IF NOT EXISTS search_attrs_ev ON search_attrs (ev, key);
CREATE TABLE IF NOT EXISTS search_cursors (log_id bigint PRIMARY KEY, seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS search_field_cursors (
    log_id bigint PRIMARY KEY, seq bigint NOT NULL
);
"""
# Bump when SCHEMA changes: the index is derived, so an old one is dropped and rebuilt.
SCHEMA_VERSION = 1
TABLES = ("search_events", "search_attrs", "search_keys", "search_cursors",
          "search_field_cursors", "search_meta")
_EVENT_COLUMNS = ("rowid, log_id, seq, time_us, actor, actor_type, action, outcome, category, "
                  "severity, rtype, rid, service, trace_id, request_id, id, received, words, "
                  "tsv")
#: Months outside these years go to the default partition (a producer's clock may be
#: anywhere; a partition per stray month would be worse than one catch-all).
END_YEAR = 2200
_DAY_US = 86_400_000_000
# One writer per schema (several tests, or tenants, may share a database).
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('auditkeep.search:' || current_schema()))"


@contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Translate psycopg exceptions into StorageError at the boundary."""
    try:
        yield
    except psycopg.Error as exc:
        raise StorageError(f"{what}: {exc}") from exc


def month_of(t_us: int) -> tuple[int, int] | None:
    """(year, month) of a time, or None if it belongs in the default partition."""
    if t_us < 0:
        return None
    when = datetime.fromtimestamp(t_us // 1_000_000, UTC)
    return (when.year, when.month) if when.year < END_YEAR else None


def _month_start_us(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1_000_000


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: such a character is indexed as U+FFFD."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class PgSearchIndex:
    """The search index in a PostgreSQL database (the URL's `search_path` names the
    schema). Same methods, arguments and answers as `query.index.SearchIndex`."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self._write_lock = threading.Lock()
        self._months: set[tuple[int, int]] = set()
        self._read_keys: dict[str, int] = {}  # path -> id, for readers (ids never change)
        with mapped_errors("opening the search index"):
            self._writer = psycopg.connect(url)
            try:
                self._setup()
                # Never prepared: a prepared statement soon runs a generic plan, blind to
                # the key ids and values bound (a tag in 10% of events: 35 ms against 4).
                self._pool = ConnectionPool(url, min_size=1, max_size=pool_size,
                                            kwargs={"autocommit": True,
                                                    "prepare_threshold": None}, open=True)
                # Its first connection is made by a worker thread: wait for it, so an
                # index that opened can be read (and the worker is done with `random`,
                # which Hypothesis forbids while it draws).
                self._pool.wait(timeout=30)
            except BaseException:
                self._writer.close()
                raise

    def _setup(self) -> None:
        w = self._writer
        with w.transaction():
            w.execute(_LOCK)
            w.execute("CREATE TABLE IF NOT EXISTS search_meta "
                      "(version integer NOT NULL, next_rowid bigint NOT NULL)")
            row = w.execute("SELECT version FROM search_meta").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                for table in TABLES:
                    w.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
                w.execute("CREATE TABLE search_meta "
                          "(version integer NOT NULL, next_rowid bigint NOT NULL)")
                w.execute("INSERT INTO search_meta VALUES (%s, 1)", (SCHEMA_VERSION,))
            w.execute(SCHEMA)
            for (name,) in w.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'search_events'::regclass"):
                if name.startswith("search_events_m"):
                    self._months.add((int(name[15:19]), int(name[19:21])))
        self._load_keys()

    def _load_keys(self) -> None:
        self._keys = {k: int(i) for i, k in self._writer.execute(
            "SELECT id, key FROM search_keys")}
        self._writer.rollback()  # end the read's implicit transaction

    # -- reading --------------------------------------------------------------------------

    def execute(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run a read on the index, mapping driver errors."""
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise StorageError(f"searching: {exc}") from exc

    def key_id(self, path: str) -> int:
        """The `search_keys` id of a field path, -1 if no event has it (`pgsql.KeyIds`)."""
        kid = self._read_keys.get(path)
        if kid is None:
            rows = self.execute("SELECT id FROM search_keys WHERE key = %s", [path])
            if not rows:
                return -1  # not remembered: the field may come with the next batch
            kid = self._read_keys[path] = int(rows[0][0])
        return kid

    def keys_under(self, path: str) -> list[int]:
        """The ids of `path` and of every field below it."""
        # "/" sorts right after "."
        return [int(r[0]) for r in self.execute(
            "SELECT id FROM search_keys WHERE key = %s OR (key >= %s AND key < %s)",
            [path, path + ".", path + "/"])]

    def cursor(self, log_id: int) -> int:
        rows = self.execute("SELECT seq FROM search_cursors WHERE log_id = %s", [log_id])
        return int(rows[0][0]) if rows else 0

    def cursors(self) -> dict[int, int]:
        return {int(a): int(b) for a, b in self.execute(
            "SELECT log_id, seq FROM search_cursors", [])}

    def field_cursors(self) -> dict[int, int]:
        """How far each log's `search_attrs` rows (every field beyond the columns) go."""
        return {int(a): int(b) for a, b in self.execute(
            "SELECT log_id, seq FROM search_field_cursors", [])}

    def search(self, log_id: int, node: Node, window: Window, *, limit: int,
               oldest_first: bool = False) -> list[tuple[int, int]]:
        """(time_us, seq) of matches, newest first (or oldest first)."""
        return pgplans.search(self, log_id, node, window, limit=limit,
                              oldest_first=oldest_first)

    def aggregator(self, log_id: int, node: Node, window: Window) -> PgAggregator:
        """Counts, group-bys, distinct counts and histograms of what `node` selects."""
        from auditkeep.query.pgaggregate import PgAggregator

        return PgAggregator(self, log_id, node, window)

    # -- writing --------------------------------------------------------------------------

    def add(self, log_id: int, records: Sequence[dict[str, Any]], next_seq: int,
            raws: dict[int, Any] | None = None, *, fields: bool = True,
            first: int | None = None) -> bool:
        """Index `records` (consecutive, from the log's cursor) and move the cursor, as
        `SearchIndex.add`. False, and nothing written, if the cursor moved meanwhile."""
        rows = []
        for r in records:
            words = words_of(free_text(r))
            rows.append((*(_clean(v) for v in index_row(log_id, r)), words_text(words),
                         tsv_text(words)))
        with self._write_lock, mapped_errors("writing the search index"):
            self._ensure_partitions({row[2] for row in rows})
            w = self._writer
            try:
                with w.transaction():
                    w.execute(_LOCK)
                    if _cursor(w, "search_cursors", log_id) != (
                            next_seq - len(records) if first is None else first):
                        return False
                    start = _take_rowids(w, len(rows))
                    with w.cursor().copy(f"COPY search_events ({_EVENT_COLUMNS}) "
                                         "FROM STDIN") as copy:
                        for i, row in enumerate(rows):
                            copy.write_row((start + i, *row))
                    _move(w, "search_cursors", log_id, next_seq)
                    if fields:
                        self._fields(w, [(start + i, r) for i, r in enumerate(records)],
                                     raws or {})
                        _move(w, "search_field_cursors", log_id, next_seq)
            except BaseException:
                self._forget()
                raise
        return True

    def add_fields(self, log_id: int, records: Sequence[dict[str, Any]], next_seq: int,
                   raws: dict[int, Any] | None = None, *, first: int | None = None) -> bool:
        """The `search_attrs` rows of records already added with `fields=False`,
        consecutive from the log's field cursor. False, and nothing written, if that moved."""
        with self._write_lock, mapped_errors("writing the search index"):
            w = self._writer
            try:
                with w.transaction():
                    w.execute(_LOCK)
                    first = next_seq - len(records) if first is None else first
                    if _cursor(w, "search_field_cursors", log_id) != first or \
                            _cursor(w, "search_cursors", log_id) < next_seq:
                        return False
                    rowids = {int(s): int(r) for s, r in w.execute(
                        "SELECT seq, rowid FROM search_events WHERE log_id = %s AND seq >= %s "
                        "AND seq < %s", (log_id, first, next_seq))}
                    self._fields(w, [(rowids[r["seq"]], r) for r in records], raws or {})
                    _move(w, "search_field_cursors", log_id, next_seq)
            except BaseException:
                self._forget()
                raise
        return True

    def _fields(self, w: psycopg.Connection[Any], rows: list[tuple[int, dict[str, Any]]],
                raws: dict[int, Any]) -> None:
        keys = self._keys
        # One row per distinct (key, value, event), the first of equal values kept, as
        # SQLite's `INSERT OR IGNORE` into its primary key keeps it (1 and 1.0 are equal).
        seen: set[tuple[int, bool, Any, int]] = set()
        out: list[tuple[int, Any, Any, int]] = []
        for rowid, r in rows:
            for k, v in leaves(r, raws.get(r["seq"])):
                kid = keys.get(k)
                if kid is None:
                    kid = keys[k] = self._key_id(w, k)
                text = isinstance(v, str)
                mark = (kid, text, v, rowid)
                if mark in seen:
                    continue
                seen.add(mark)
                out.append((kid, None, _clean(v), rowid) if isinstance(v, str) else
                           (kid, number(v), None, rowid))
        out.sort(key=lambda row: row[0])
        with w.cursor().copy("COPY search_attrs (key, num, txt, ev) FROM STDIN") as copy:
            for row in out:
                copy.write_row(row)

    def forget(self, log_id: int, records: Sequence[dict[str, Any]],
               raws: dict[int, Any] | None = None) -> int:
        """Remove purged events from the search, as `SearchIndex.forget` (here the rows
        are found by seq, and aggregates read the events, so there is nothing else)."""
        seqs = [int(r["seq"]) for r in records]
        with self._write_lock, mapped_errors("forgetting purged events in the search index"):
            w = self._writer
            try:
                with w.transaction():
                    w.execute(_LOCK)
                    rowids = [int(r[0]) for r in w.execute(
                        "SELECT rowid FROM search_events WHERE log_id = %s AND seq = ANY(%s)",
                        (log_id, seqs))]
                    if rowids:
                        w.execute("DELETE FROM search_attrs WHERE ev = ANY(%s)", (rowids,))
                        w.execute("DELETE FROM search_events WHERE log_id = %s AND "
                                  "seq = ANY(%s)", (log_id, seqs))
            except BaseException:
                self._forget()
                raise
        return len(rowids)

    def reindex(self, log_id: int, records: Sequence[dict[str, Any]],
                raws: dict[int, Any] | None = None) -> int:
        """Index again events that `forget` removed and rehydration brought back, as
        `SearchIndex.reindex`. How many were indexed."""
        by_seq: dict[int, tuple[dict[str, Any], tuple[Any, ...]]] = {}
        for r in records:
            words = words_of(free_text(r))
            by_seq[int(r["seq"])] = (r, (*(_clean(v) for v in index_row(log_id, r)),
                                         words_text(words), tsv_text(words)))
        with self._write_lock, mapped_errors("indexing rehydrated events"):
            self._ensure_partitions({row[2] for _, row in by_seq.values()})
            w = self._writer
            try:
                with w.transaction():
                    w.execute(_LOCK)
                    cursor = _cursor(w, "search_cursors", log_id)
                    present = {int(r[0]) for r in w.execute(
                        "SELECT seq FROM search_events WHERE log_id = %s AND seq = ANY(%s)",
                        (log_id, list(by_seq)))}
                    todo = [v for seq, v in by_seq.items() if seq < cursor and seq not in present]
                    if not todo:
                        return 0
                    start = _take_rowids(w, len(todo))
                    with w.cursor().copy(f"COPY search_events ({_EVENT_COLUMNS}) "
                                         "FROM STDIN") as copy:
                        for i, (_, row) in enumerate(todo):
                            copy.write_row((start + i, *row))
                    fielded = _cursor(w, "search_field_cursors", log_id)
                    self._fields(w, [(start + i, r) for i, (r, _) in enumerate(todo)
                                     if r["seq"] < fielded], raws or {})
            except BaseException:
                self._forget()
                raise
        return len(todo)

    @staticmethod
    def _key_id(w: psycopg.Connection[Any], key: str) -> int:
        row = w.execute("INSERT INTO search_keys (key) VALUES (%s) ON CONFLICT (key) "
                        "DO UPDATE SET key = excluded.key RETURNING id", (key,)).fetchone()
        if row is None:  # pragma: no cover -- RETURNING always returns the row
            raise StorageError(f"the search index gave no id for field {key!r}")
        return int(row[0])

    def _forget(self) -> None:
        """After a rolled-back write: the key ids cached may not be stored (and the
        connection may be gone: the next write gets a new one)."""
        self._keys = {}
        try:
            if self._writer.broken or self._writer.closed:
                self._writer = psycopg.connect(self.url)
            self._load_keys()
        except psycopg.Error:
            pass  # the next write fails the same way and says why

    def _ensure_partitions(self, times: set[int]) -> None:
        """Create the month partitions `times` need, each in its own short transaction
        before the batch's (DDL on the parent would block readers until it commits)."""
        months = {m for m in {month_of(t) for t in {t // _DAY_US * _DAY_US for t in times}}
                  if m is not None} - self._months
        for year, month in sorted(months):
            lo = _month_start_us(year, month)
            hi = _month_start_us(year + month // 12, month % 12 + 1)
            w = self._writer
            with w.transaction():
                w.execute(_LOCK)
                w.execute(f"CREATE TABLE IF NOT EXISTS search_events_m{year:04d}{month:02d} "
                          f"PARTITION OF search_events FOR VALUES FROM ({lo}) TO ({hi})")
            self._months.add((year, month))

    def close(self) -> None:
        self._pool.close()
        self._writer.close()


def _cursor(w: psycopg.Connection[Any], table: str, log_id: int) -> int:
    row = w.execute(f"SELECT seq FROM {table} WHERE log_id = %s", (log_id,)).fetchone()  # noqa: S608 -- fixed table names
    return int(row[0]) if row else 0


def _move(w: psycopg.Connection[Any], table: str, log_id: int, seq: int) -> None:
    w.execute(f"INSERT INTO {table} (log_id, seq) VALUES (%s, %s) ON CONFLICT (log_id) "  # noqa: S608
              "DO UPDATE SET seq = excluded.seq", (log_id, seq))


def _take_rowids(w: psycopg.Connection[Any], n: int) -> int:
    """The first of `n` new rowids, in log order (the lock is held)."""
    row = w.execute("UPDATE search_meta SET next_rowid = next_rowid + %s "
                    "RETURNING next_rowid - %s", (n, n)).fetchone()
    if row is None:
        raise StorageError("the search index has no search_meta row; reopen it to rebuild")
    return int(row[0])
