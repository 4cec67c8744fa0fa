"""The shared backend: PostgreSQL through a psycopg 3 connection pool, for many servers.

Table layout (pg_schema.py). Everything of a log is keyed by `(log_id, ...)` primary
keys: bundles and personal values by `(log_id, first_seq)`, tiles by `(log_id, level,
idx)`, dedup keys and subject rows by `(log_id, key, seq)`, raws and erasure marks by
`(log_id, seq)`. None of these is partitioned by time: a bundle has no time, it is
addressed by seq, and every read (proofs, bundles, dedup) is a primary-key lookup or
range scan within one log. The time-partitioned part is the search index, which lives
elsewhere. Bundles, tiles and raws are bytea in exactly SQLite's encodings (codec.py).

Each `append` is one transaction (default synchronous_commit: durable on return) that
first takes the log's row (and its lease's, when fenced) and then sends its rows in one
pipeline. Lease times are the database's `clock_timestamp()`, one clock for every host.
"""

from __future__ import annotations

import bisect
import contextlib
import getpass
import os
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from auditkeep.errors import ConfigError, CorruptionError, FencedError, StorageError, StorageFull
from auditkeep.log.merkle import EMPTY_ROOT
from auditkeep.storage.base import (
    TILE_WIDTH,
    AlertRecord,
    Bundle,
    Commit,
    DeliveryRecord,
    DetectCommit,
    Erasure,
    Lease,
    LogInfo,
    SavedSearch,
    SigningKeyRecord,
    StoredCheckpoint,
    TokenRecord,
)
from auditkeep.storage.codec import (
    pack_json,
    tile_groups,
    unpack_blob,
    unpack_entries,
    unpack_json,
)
from auditkeep.storage.pg_keeping import KeepingRows
from auditkeep.storage.pg_schema import MIGRATIONS
from auditkeep.storage.rows import ALERT_COLS as _ALERT_COLS
from auditkeep.storage.rows import DELIVERY_COLS as _DELIVERY_COLS
from auditkeep.storage.rows import Rows as _Rows
from auditkeep.storage.rows import alert_record as _alert
from auditkeep.storage.rows import alert_row as _alert_row
from auditkeep.storage.rows import alerts_where, deliveries_where
from auditkeep.storage.rows import delivery_record as _delivery
from auditkeep.storage.rows import delivery_row as _delivery_row
from auditkeep.storage.rows import pack_rows as _pack_rows
from auditkeep.storage.rows import split_digests as _split_digests
from auditkeep.storage.rows import token_record as _token

CONNECT_TIMEOUT = 5  # seconds, unless the URL says otherwise
#: PostgreSQL ends a session whose transaction has waited this long for its client
#: (seconds). A commit locks its lease's row; a leader paused inside one (a VM freeze, a
#: stopped process) would otherwise keep that lock, and with it every standby from
#: taking over the expired lease, for as long as the pause lasts. Ended, its transaction
#: rolls back and nothing of it was acknowledged.
IDLE_IN_TRANSACTION = 5
_Conn = psycopg.Connection[tuple[Any, ...]]


def _this_process() -> str:
    """How a lease names this process's sequencers (`cli/scale.py` `holder_name`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _session_name(holder: str) -> str:
    return f"auditkeep {holder}"[:63]  # PostgreSQL keeps 63 bytes of it


def _configure(conn: _Conn) -> None:
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}s'")


@contextlib.contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Translate psycopg exceptions (pool timeouts included) into StorageError, and
    StorageFull for the server's disk_full (SQLSTATE 53100: the transaction was rolled
    back, so the write may be retried once space is freed)."""
    try:
        yield
    except psycopg.errors.DiskFull as exc:
        raise StorageFull(f"{what}: PostgreSQL's disk is full; nothing of this write was "
                          f"stored (free space: docs/runbooks/disk-full.md): "
                          f"{_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"{what}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class PostgresBackend(KeepingRows):
    """Backend on a PostgreSQL database (`--storage postgresql://user@host/db`). Purge,
    restore and the retention, hold, witness and archive rows are in pg_keeping.py."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        params = _parse_url(url)
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        # What pg_stat_activity shows: the process as a lease names its holder (host:pid),
        # so a standby can end the sessions of a holder whose lease expired.
        params.setdefault("application_name", _session_name(_this_process()))
        self._where = _describe(params)
        conninfo = make_conninfo(**params)
        self._secret = params.get("password")
        try:
            with psycopg.connect(conninfo) as conn:
                self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise ConfigError(self._scrub(
                f"cannot connect to PostgreSQL at {self._where}: {_cause(exc)}")) from None
        except psycopg.Error as exc:
            raise ConfigError(self._scrub(
                f"cannot prepare the auditkeep tables in PostgreSQL at {self._where}: "
                f"{_first_line(exc)}")) from None
        self._pool: ConnectionPool[_Conn] = ConnectionPool(
            conninfo, min_size=1, max_size=max(pool_size, 1), kwargs={"autocommit": True},
            configure=_configure,
            # a call waits this long for a connection, then fails (StorageError), not 30 s
            timeout=float(params["connect_timeout"]) + 5, open=False, name="auditkeep")
        try:
            self._pool.open(wait=True, timeout=float(params["connect_timeout"]) + 5)
        except psycopg.Error as exc:
            self._pool.close()
            raise ConfigError(self._scrub(
                f"cannot connect to PostgreSQL at {self._where}: {_cause(exc)}")) from None
        # zstd runs without the GIL: bundles are packed while the log's row is taken
        self._packer = ThreadPoolExecutor(min(max(pool_size, 1), 4),
                                          thread_name_prefix="pg-pack")

    def _scrub(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret else message

    @staticmethod
    def _migrate(conn: _Conn) -> None:
        with conn.transaction():
            # Two processes opening one fresh database at once: the second waits here and
            # then finds every version applied. The key is per schema (search_path).
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended("
                         "'auditkeep.migrate.' || coalesce(current_schema(), ''), 0))")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version integer PRIMARY KEY, applied timestamptz NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version not in done:
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations VALUES (%s, now())", (version,))

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[_Conn]:
        with mapped_errors(what), self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[_Conn]:
        with mapped_errors(what), self._pool.connection() as conn, conn.transaction():
            yield conn

    # logs -----------------------------------------------------------------

    def open_log(self, name: str, origin: str) -> LogInfo:
        found = self.get_log(name)
        if found is not None:
            return found
        with self._write(f"creating log {name}") as w:
            w.execute("INSERT INTO logs (name, origin, size, root) VALUES (%s, %s, 0, %s) "
                      "ON CONFLICT (name) DO NOTHING", (name, origin, EMPTY_ROOT))
        log = self.get_log(name)
        if log is None:
            raise StorageError(f"log {name} vanished after creation")
        return log

    def get_log(self, name: str) -> LogInfo | None:
        with self._read(f"reading log {name}") as c:
            row = c.execute(f"SELECT {_LOG_COLS} FROM logs WHERE name = %s",  # noqa: S608 -- a constant column list
                            (name,)).fetchone()
        return _log(row) if row else None

    def list_logs(self) -> list[LogInfo]:
        with self._read("listing logs") as c:
            rows = c.execute(f"SELECT {_LOG_COLS} FROM logs ORDER BY name").fetchall()  # noqa: S608 -- a constant column list
        return [_log(r) for r in rows]

    def append(self, commit: Commit) -> None:
        packed = self._packer.submit(_pack_rows, commit)
        try:
            self._append(commit, packed)
        finally:
            packed.cancel()

    def _append(self, commit: Commit, packed: Future[_Rows]) -> None:
        log_id, fence = commit.log_id, commit.fence
        with self._write(f"appending to log {log_id}") as w:
            # The lease and the log's row first: a fenced or stale commit stops before it
            # writes a row, and a concurrent writer of the log waits here, not on an index.
            with w.pipeline():
                held = None if fence is None else w.execute(
                    "SELECT 1 FROM leases WHERE log_id = %s AND holder = %s AND epoch = %s "
                    "AND expires > clock_timestamp() FOR UPDATE",
                    (log_id, fence.holder, fence.epoch))
                moved = w.execute(
                    "UPDATE logs SET size = %s, root = %s, bus_seq = coalesce(%s, bus_seq) "
                    "WHERE id = %s AND size = %s",
                    (commit.size, commit.root, commit.bus_seq, log_id, commit.first_seq))
            if fence is not None and (held is None or held.fetchone() is None
                                      or fence.log_id != log_id):
                raise FencedError(f"log {log_id}: the lease of {fence.holder} "
                                  f"(epoch {fence.epoch}) is no longer held; nothing stored")
            if moved.rowcount != 1:
                raise FencedError(f"log {log_id} is not at size {commit.first_seq}; "
                                  "another sequencer wrote it; nothing stored")
            with w.pipeline(), w.cursor() as cur:
                cur.executemany(
                    "INSERT INTO tiles (log_id, level, idx, hashes) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (log_id, level, idx) DO UPDATE SET "
                    "hashes = tiles.hashes || excluded.hashes",
                    [(log_id, lvl, idx, bytes(buf))
                     for (lvl, idx), buf in tile_groups(commit.nodes).items()])
                if commit.dedup:
                    # seqs are new (the log was at first_seq), so no key can conflict. %b:
                    # a binary array, ~25% less than text for 1,000 keys (no quoting).
                    cur.execute("INSERT INTO dedup (log_id, key, seq) SELECT %s, k, %s + o - 1 "
                                "FROM unnest(%b::bigint[]) WITH ORDINALITY AS d(k, o)",
                                (log_id, commit.first_seq, commit.dedup))
                if commit.subjects:
                    pairs = [(key, seq) for seq, keys in commit.subjects.items()
                             for key in keys]
                    cur.execute("INSERT INTO subjects (log_id, key, seq) SELECT %s, k, s "
                                "FROM unnest(%b::bigint[], %b::bigint[]) AS u(k, s) "
                                "ON CONFLICT DO NOTHING",
                                (log_id, [k for k, _ in pairs], [s for _, s in pairs]))
                if commit.checkpoint is not None:
                    self._insert_checkpoint(cur, log_id, commit.checkpoint)
                bundle_rows, personal_rows, raw_rows = packed.result()
                cur.executemany("INSERT INTO bundles (log_id, first_seq, count, entries, "
                                "digests) VALUES (%s, %s, %s, %s, %s)", bundle_rows)
                if personal_rows:
                    cur.executemany("INSERT INTO personal (log_id, first_seq, data) "
                                    "VALUES (%s, %s, %s)", personal_rows)
                if raw_rows:
                    cur.executemany("INSERT INTO raws (log_id, seq, format, data) "
                                    "VALUES (%s, %s, %s, %s)", raw_rows)

    # leases ------------------------------------------------------------------

    def acquire_lease(self, log_id: int, holder: str, ttl: float) -> Lease | None:
        # One statement, so two processes racing for a free or expired lease serialize
        # on its row: the loser's WHERE sees the winner's live lease and returns nothing.
        try:
            return self._take_lease(log_id, holder, ttl)
        except StorageError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                raise
        # The row is locked past its expiry: its holder is paused inside a commit, with
        # the commit's statements sent and not yet synced, where PostgreSQL's
        # idle_in_transaction_session_timeout does not reach. End that holder's sessions
        # (its lease is over; what it was committing was never acknowledged) and try
        # again on the next round.
        with self._read(f"ending the sessions of log {log_id}'s expired holder") as c:
            c.execute("SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a "
                      "JOIN leases l ON a.application_name = left('auditkeep ' || l.holder, "
                      "63) WHERE l.log_id = %s AND l.expires <= clock_timestamp() "
                      "AND a.pid <> pg_backend_pid() AND a.state <> 'idle'", (log_id,))
        return None

    def _take_lease(self, log_id: int, holder: str, ttl: float) -> Lease | None:
        with self._write(f"taking the lease of log {log_id}") as w:
            w.execute("SET LOCAL lock_timeout = '1s'")
            row = w.execute(
                "INSERT INTO leases AS l (log_id, holder, epoch, expires) "  # noqa: S608 -- a constant column list
                "VALUES (%s, %s, 1, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (log_id) DO UPDATE SET holder = excluded.holder, "
                "expires = excluded.expires, epoch = CASE WHEN l.holder = excluded.holder "
                "AND l.expires > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END "
                "WHERE l.holder = excluded.holder OR l.expires <= clock_timestamp() "
                f"RETURNING {_LEASE_COLS}", (log_id, holder, float(ttl))).fetchone()
        return _lease(row) if row else None

    def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        with self._write(f"renewing the lease of log {lease.log_id}") as w:
            row = w.execute(
                "UPDATE leases SET expires = clock_timestamp() + make_interval(secs => %s) "  # noqa: S608 -- a constant column list
                "WHERE log_id = %s AND holder = %s AND epoch = %s "
                f"AND expires > clock_timestamp() RETURNING {_LEASE_COLS}",
                (float(ttl), lease.log_id, lease.holder, lease.epoch)).fetchone()
        return _lease(row) if row else None

    def release_lease(self, lease: Lease) -> None:
        with self._write(f"releasing the lease of log {lease.log_id}") as w:
            w.execute("UPDATE leases SET expires = clock_timestamp() WHERE log_id = %s "
                      "AND holder = %s AND epoch = %s AND expires > clock_timestamp()",
                      (lease.log_id, lease.holder, lease.epoch))

    # reads of the log ----------------------------------------------------------

    def read_nodes(self, log_id: int, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        keys = sorted({(level, index // TILE_WIDTH) for level, index in coords})
        tiles: dict[tuple[int, int], bytes] = {}
        if keys:
            with self._read(f"reading tiles of log {log_id}") as c:
                rows = c.cursor(binary=True).execute(
                    "SELECT t.level, t.idx, t.hashes FROM tiles AS t JOIN unnest("
                    "%s::integer[], %s::bigint[]) AS k(level, idx) "
                    "ON t.level = k.level AND t.idx = k.idx WHERE t.log_id = %s",
                    ([k[0] for k in keys], [k[1] for k in keys], log_id)).fetchall()
            tiles = {(int(lvl), int(idx)): bytes(h) for lvl, idx, h in rows}
        out = []
        for level, index in coords:
            off = (index % TILE_WIDTH) * 32
            h = tiles.get((level, index // TILE_WIDTH), b"")[off : off + 32]
            if len(h) != 32:
                raise CorruptionError(f"log {log_id}: node ({level}, {index}) is missing")
            out.append(h)
        return out

    def read_tile_range(self, log_id: int, level: int, start: int, end: int) -> list[bytes]:
        with self._read(f"reading tiles of log {log_id}") as c:
            rows = c.cursor(binary=True).execute(
                "SELECT hashes FROM tiles WHERE log_id = %s AND level = %s AND idx >= %s "
                "AND idx < %s ORDER BY idx", (log_id, level, start, end)).fetchall()
        return [bytes(r[0]) for r in rows]

    def read_bundles(self, log_id: int, start: int, end: int) -> list[Bundle]:
        with self._read(f"reading entries of log {log_id}") as c:
            rows = c.cursor(binary=True).execute(
                "SELECT first_seq, count, entries, digests FROM bundles WHERE log_id = %s "
                "AND first_seq >= coalesce((SELECT max(first_seq) FROM bundles "
                "WHERE log_id = %s AND first_seq <= %s), %s) AND first_seq < %s "
                "ORDER BY first_seq", (log_id, log_id, start, start, end)).fetchall()
        out = []
        for first, count, blob, digests in rows:
            if first + count <= start:
                continue
            entries = unpack_entries(blob, count, f"log {log_id} bundle at seq {first}")
            out.append(Bundle(first, entries, _split_digests(bytes(digests), count)))
        return out

    def bundle_index(self, log_id: int) -> list[tuple[int, int]]:
        with self._read(f"listing bundles of log {log_id}") as c:
            rows = c.execute("SELECT first_seq, count FROM bundles WHERE log_id = %s "
                             "ORDER BY first_seq", (log_id,)).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def read_raw(self, log_id: int, seq: int) -> tuple[str, bytes] | None:
        with self._read(f"reading the raw object of seq {seq} in log {log_id}") as c:
            row = c.cursor(binary=True).execute(
                "SELECT format, data FROM raws WHERE log_id = %s AND seq = %s",
                (log_id, seq)).fetchone()
        if row is None:
            return None
        return str(row[0]), unpack_blob(row[1], f"raw object of seq {seq} in log {log_id}")

    def read_raws(self, log_id: int, start: int, end: int) -> dict[int, tuple[str, bytes]]:
        with self._read(f"reading raw objects of seqs {start}-{end} in log {log_id}") as c:
            rows = c.cursor(binary=True).execute(
                "SELECT seq, format, data FROM raws WHERE log_id = %s AND seq >= %s "
                "AND seq < %s", (log_id, start, end)).fetchall()
        return {int(seq): (str(fmt), unpack_blob(data, f"raw object of seq {seq} in log {log_id}"))
                for seq, fmt, data in rows}

    def read_personal(self, log_id: int, seqs: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        out: dict[int, dict[str, list[str]]] = {}
        wanted = set(seqs)
        if not wanted:
            return out
        with self._read(f"reading personal data of log {log_id}") as c:
            rows = c.cursor(binary=True).execute(
                "SELECT p.data FROM personal AS p WHERE p.log_id = %s AND p.first_seq IN ("  # noqa: S608 -- a constant subquery
                f"{_BUNDLE_OF_SEQ})", (log_id, log_id, sorted(wanted))).fetchall()
        for (blob,) in rows:
            data: Any = unpack_json(blob)
            for k, v in data.items():
                if int(k) in wanted:
                    out[int(k)] = v
        return out

    def find_dedup(self, log_id: int, keys: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        if not keys:
            return out
        with self._read(f"looking up event ids in log {log_id}") as c:
            rows = c.execute("SELECT key, seq FROM dedup WHERE log_id = %s AND "
                             "key = ANY(%s::bigint[]) ORDER BY key, seq",
                             (log_id, list(keys))).fetchall()
        for k, s in rows:
            out.setdefault(int(k), []).append(int(s))
        return out

    # privacy -------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        # ON CONFLICT waits for a concurrent maker's commit, so every process reads its value
        with self._write(f"making the {name} secret") as w:
            w.execute("INSERT INTO secrets (name, value) VALUES (%s, %s) "
                      "ON CONFLICT (name) DO NOTHING", (name, os.urandom(32)))
            row = w.execute("SELECT value FROM secrets WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise StorageError(f"the {name} secret vanished after creation")
        return bytes(row[0])

    def subject_seqs(self, log_id: int, keys: Sequence[int]) -> list[int]:
        if not keys:
            return []
        with self._read(f"looking up data subjects in log {log_id}") as c:
            rows = c.execute("SELECT DISTINCT seq FROM subjects WHERE log_id = %s AND "
                             "key = ANY(%s::bigint[]) ORDER BY seq",
                             (log_id, list(keys))).fetchall()
        return [int(r[0]) for r in rows]

    def erase(self, erasure: Erasure) -> None:
        """Delete personal values, raw objects and subject rows in one transaction, then
        VACUUM those tables so the dead row versions holding the values are reclaimed
        now rather than whenever autovacuum comes by.

        PostgreSQL cannot overwrite freed space the way SQLite's secure_delete does:
        after VACUUM the old bytes are unreachable through SQL, but they stay in the WAL
        segments until those are recycled (and in any WAL archive, replica or base
        backup), and in the free space of pages until new rows overwrite it. A
        transaction older than the erasure keeps the old row versions alive until it
        ends; autovacuum removes them after that."""
        log_id = erasure.log_id
        with self._write(f"erasing personal data in log {log_id}") as w:
            self._erase(w, erasure)
        with self._read(f"vacuuming after an erasure in log {log_id}") as c:
            c.execute("VACUUM personal, raws, subjects")

    def _erase(self, w: _Conn, e: Erasure) -> None:
        log_id = e.log_id
        rows: dict[int, dict[str, Any]] = {}
        if e.personal:
            found = w.execute(
                "SELECT p.first_seq, p.data FROM personal AS p WHERE p.log_id = %s AND "  # noqa: S608 -- a constant subquery
                f"p.first_seq IN ({_BUNDLE_OF_SEQ}) FOR UPDATE",
                (log_id, log_id, sorted(e.personal))).fetchall()
            for first, blob in found:
                data = unpack_json(blob)
                rows[int(first)] = data if isinstance(data, dict) else {}
        firsts = sorted(rows)
        for seq, left in e.personal.items():
            at = bisect.bisect_right(firsts, seq) - 1
            if at < 0 or str(seq) not in rows[firsts[at]]:
                continue
            if left:
                rows[firsts[at]][str(seq)] = left
            else:
                del rows[firsts[at]][str(seq)]
        with w.pipeline(), w.cursor() as cur:
            for first, data in rows.items():
                if data:
                    cur.execute("UPDATE personal SET data = %s WHERE log_id = %s AND "
                                "first_seq = %s", (pack_json(data), log_id, first))
                else:
                    cur.execute("DELETE FROM personal WHERE log_id = %s AND first_seq = %s",
                                (log_id, first))
            if e.raws:
                cur.execute("DELETE FROM raws WHERE log_id = %s AND seq = ANY(%s::bigint[])",
                            (log_id, list(e.raws)))
            if e.subject_keys and e.seqs:
                cur.execute("DELETE FROM subjects WHERE log_id = %s AND key = ANY(%s::bigint[]) "
                            "AND seq = ANY(%s::bigint[])",
                            (log_id, list(e.subject_keys), list(e.seqs)))
            if e.seqs:
                cur.execute("INSERT INTO erased (log_id, seq, by_seq) SELECT %s, s, %s "
                            "FROM unnest(%s::bigint[]) AS u(s) ON CONFLICT DO NOTHING",
                            (log_id, e.record_seq, list(e.seqs)))

    def erased_seqs(self, log_id: int, start: int = 0, end: int | None = None
                    ) -> dict[int, int]:
        with self._read(f"reading erased seqs of log {log_id}") as c:
            rows = c.execute("SELECT seq, by_seq FROM erased WHERE log_id = %s AND seq >= %s "
                             "AND (%s::bigint IS NULL OR seq < %s)",
                             (log_id, start, end, end)).fetchall()
        return {int(a): int(b) for a, b in rows}

    # checkpoints -------------------------------------------------------------

    @staticmethod
    def _insert_checkpoint(cur: psycopg.Cursor[Any], log_id: int, cp: StoredCheckpoint
                           ) -> None:
        cur.execute("INSERT INTO checkpoints (log_id, size, root, note, created) "
                    "VALUES (%s, %s, %s, %s, %s)", (log_id, cp.size, cp.root, cp.note, cp.created))

    def put_checkpoint(self, log_id: int, cp: StoredCheckpoint) -> None:
        with self._write(f"storing a checkpoint of log {log_id}") as w, w.cursor() as cur:
            self._insert_checkpoint(cur, log_id, cp)

    def checkpoints(self, log_id: int) -> list[StoredCheckpoint]:
        with self._read(f"reading checkpoints of log {log_id}") as c:
            rows = c.execute("SELECT size, root, note, created FROM checkpoints "
                             "WHERE log_id = %s ORDER BY size, id", (log_id,)).fetchall()
        return [StoredCheckpoint(*r) for r in rows]

    def latest_checkpoint(self, log_id: int) -> StoredCheckpoint | None:
        with self._read(f"reading checkpoints of log {log_id}") as c:
            row = c.execute("SELECT size, root, note, created FROM checkpoints "
                            "WHERE log_id = %s ORDER BY size DESC, id DESC LIMIT 1",
                            (log_id,)).fetchone()
        return StoredCheckpoint(*row) if row else None

    def delete_checkpoints(self, log_id: int, which: Sequence[tuple[int, bytes]]) -> int:
        if not which:
            return 0
        with self._write(f"deleting checkpoints of log {log_id}") as w:
            cur = w.execute("DELETE FROM checkpoints WHERE log_id = %s AND (size, root) IN "
                            "(SELECT * FROM unnest(%s::bigint[], %s::bytea[]))",
                            (log_id, [s for s, _ in which], [bytes(r) for _, r in which]))
            return cur.rowcount

    # per-action schemas and saved searches ----------------------------------

    def put_schema(self, tenant: str, action: str, schema: str, created: str) -> int:
        with self._write(f"storing a schema for {action}") as w:
            # two servers adding a version at once would both pick max + 1
            w.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                      (f"auditkeep.schema.{tenant}.{action}",))
            row = w.execute("SELECT coalesce(max(version), 0) + 1 FROM action_schemas "
                            "WHERE tenant = %s AND action = %s", (tenant, action)).fetchone()
            version = int(row[0]) if row else 1
            w.execute("INSERT INTO action_schemas (tenant, action, version, schema, created) "
                      "VALUES (%s, %s, %s, %s, %s)", (tenant, action, version, schema, created))
        return version

    def get_schema(self, tenant: str, action: str, version: int | None = None
                   ) -> tuple[int, str] | None:
        with self._read(f"reading the schema of {action}") as c:
            row = c.execute("SELECT version, schema FROM action_schemas WHERE tenant = %s "
                            "AND action = %s AND (%s::integer IS NULL OR version = %s) "
                            "ORDER BY version DESC LIMIT 1",
                            (tenant, action, version, version)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def latest_schemas(self, tenant: str) -> dict[str, tuple[int, str]]:
        with self._read(f"reading the schemas of tenant {tenant}") as c:
            rows = c.execute("SELECT DISTINCT ON (action) action, version, schema "
                             "FROM action_schemas WHERE tenant = %s "
                             "ORDER BY action, version DESC", (tenant,)).fetchall()
        return {str(a): (int(v), str(t)) for a, v, t in rows}

    def put_saved_search(self, tenant: str, name: str, body: str, created_by: str,
                         updated: str) -> None:
        with self._write(f"saving the search {name}") as w:
            w.execute("INSERT INTO saved_searches (tenant, name, body, created_by, updated) "
                      "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, name) DO UPDATE SET "
                      "body = excluded.body, created_by = excluded.created_by, "
                      "updated = excluded.updated", (tenant, name, body, created_by, updated))

    def saved_searches(self, tenant: str) -> list[SavedSearch]:
        with self._read(f"reading the saved searches of tenant {tenant}") as c:
            rows = c.execute("SELECT name, body, created_by, updated FROM saved_searches "
                             "WHERE tenant = %s ORDER BY name", (tenant,)).fetchall()
        return [SavedSearch(str(n), str(b), str(c), str(u)) for n, b, c, u in rows]

    def delete_saved_search(self, tenant: str, name: str) -> bool:
        with self._write(f"deleting the saved search {name}") as w:
            cur = w.execute("DELETE FROM saved_searches WHERE tenant = %s AND name = %s",
                            (tenant, name))
            return cur.rowcount > 0

    # detection -------------------------------------------------------------

    def detect_cursors(self) -> dict[int, int]:
        with self._read("reading detection cursors") as c:
            rows = c.execute("SELECT log_id, next_seq FROM detect_cursors").fetchall()
        return {int(a): int(b) for a, b in rows}

    def detect_state(self) -> dict[tuple[str, str], bytes]:
        with self._read("reading detection state") as c:
            rows = c.execute("SELECT rule, key, data FROM detect_state").fetchall()
        return {(str(r), str(k)): bytes(d) for r, k, d in rows}

    def detect_commit(self, commit: DetectCommit) -> None:
        gone = [k for k, v in commit.state.items() if v is None]
        kept = [(r, k, v) for (r, k), v in commit.state.items() if v is not None]
        with self._write("committing a detection pass") as w, w.pipeline(), w.cursor() as cur:
            if commit.cursors:
                cur.executemany("INSERT INTO detect_cursors (log_id, next_seq) VALUES (%s, %s) "
                                "ON CONFLICT (log_id) DO UPDATE SET next_seq = excluded.next_seq",
                                list(commit.cursors.items()))
            if gone:
                cur.executemany("DELETE FROM detect_state WHERE rule = %s AND key = %s", gone)
            if kept:
                cur.executemany("INSERT INTO detect_state (rule, key, data) VALUES (%s, %s, %s) "
                                "ON CONFLICT (rule, key) DO UPDATE SET data = excluded.data",
                                kept)
            if commit.alerts:
                # An id is never taken over by another tenant, and a logged alert stays logged.
                cur.executemany(
                    f"INSERT INTO alerts ({_ALERT_COLS}) VALUES "  # noqa: S608 -- a constant column list
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                    "updated = excluded.updated, body = excluded.body, level = excluded.level, "
                    "logged_seq = coalesce(alerts.logged_seq, excluded.logged_seq) "
                    "WHERE alerts.tenant = excluded.tenant",
                    [_alert_row(a) for a in commit.alerts])
            if commit.deliveries:
                # DO NOTHING: a pass repeated after a crash must not reset a delivery's progress
                cur.executemany(
                    f"INSERT INTO deliveries ({_DELIVERY_COLS}) VALUES "  # noqa: S608 -- a constant column list
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    [_delivery_row(d) for d in commit.deliveries])

    def alerts(self, tenant: str, *, rule: str | None = None, level: str | None = None,
               status: str | None = None, since: str | None = None, until: str | None = None,
               before: tuple[str, str] | None = None, limit: int = 100) -> list[AlertRecord]:
        where, args = alerts_where(tenant, rule, level, status, since, until, before, "%s")
        with self._read(f"listing alerts of tenant {tenant}") as c:
            rows = c.execute(
                f"SELECT {_ALERT_COLS} FROM alerts WHERE {where} "  # noqa: S608 -- only fixed column names and placeholders are formatted in
                "ORDER BY created DESC, id DESC LIMIT %s", (*args, max(limit, 0))).fetchall()
        return [_alert(r) for r in rows]

    def get_alert(self, tenant: str, alert_id: str) -> AlertRecord | None:
        with self._read(f"reading alert {alert_id}") as c:
            row = c.execute(f"SELECT {_ALERT_COLS} FROM alerts WHERE id = %s AND tenant = %s",  # noqa: S608 -- a constant column list
                            (alert_id, tenant)).fetchone()
        return _alert(row) if row else None

    def open_alert(self, tenant: str, dedup_key: str) -> AlertRecord | None:
        with self._read(f"looking up the open alert for {dedup_key}") as c:
            row = c.execute(
                f"SELECT {_ALERT_COLS} FROM alerts WHERE tenant = %s AND dedup_key = %s "  # noqa: S608 -- a constant column list
                "AND status = 'open' ORDER BY created DESC, id DESC LIMIT 1",
                (tenant, dedup_key)).fetchone()
        return _alert(row) if row else None

    def update_alert(self, record: AlertRecord) -> None:
        with self._write(f"updating alert {record.id}") as w:
            w.execute("UPDATE alerts SET status = %s, updated = %s, body = %s, level = %s "
                      "WHERE id = %s AND tenant = %s",
                      (record.status, record.updated, record.body, record.level, record.id,
                       record.tenant))

    def unlogged_alerts(self, limit: int = 100) -> list[AlertRecord]:
        with self._read("listing alerts not yet logged") as c:
            rows = c.execute(
                f"SELECT {_ALERT_COLS} FROM alerts WHERE logged_seq IS NULL "  # noqa: S608 -- a constant column list
                "ORDER BY created, id LIMIT %s", (max(limit, 0),)).fetchall()
        return [_alert(r) for r in rows]

    def set_alert_logged(self, alert_id: str, seq: int) -> None:
        with self._write(f"marking alert {alert_id} logged") as w:
            w.execute("UPDATE alerts SET logged_seq = %s WHERE id = %s", (seq, alert_id))

    def due_deliveries(self, now: str, limit: int = 100) -> list[DeliveryRecord]:
        with self._read("listing due deliveries") as c:
            rows = c.execute(
                f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE status = 'pending' "  # noqa: S608 -- a constant column list
                "AND next_attempt <= %s ORDER BY next_attempt, id LIMIT %s",
                (now, max(limit, 0))).fetchall()
        return [_delivery(r) for r in rows]

    def update_delivery(self, record: DeliveryRecord) -> None:
        with self._write(f"updating delivery {record.id}") as w:
            w.execute("UPDATE deliveries SET status = %s, attempts = %s, next_attempt = %s, "
                      "updated = %s, last_error = %s WHERE id = %s AND tenant = %s",
                      (record.status, record.attempts, record.next_attempt, record.updated,
                       record.last_error, record.id, record.tenant))

    def deliveries(self, tenant: str, *, status: str | None = None, alert_id: str | None = None,
                   limit: int = 100) -> list[DeliveryRecord]:
        where, args = deliveries_where(tenant, status, alert_id, "%s")
        with self._read(f"listing deliveries of tenant {tenant}") as c:
            rows = c.execute(
                f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE {where} "  # noqa: S608 -- only fixed column names and placeholders are formatted in
                "ORDER BY updated DESC, id DESC LIMIT %s", (*args, max(limit, 0))).fetchall()
        return [_delivery(r) for r in rows]

    def get_delivery(self, tenant: str, delivery_id: str) -> DeliveryRecord | None:
        with self._read(f"reading delivery {delivery_id}") as c:
            row = c.execute(
                f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE id = %s AND tenant = %s",  # noqa: S608 -- a constant column list
                (delivery_id, tenant)).fetchone()
        return _delivery(row) if row else None

    # tokens and keys ---------------------------------------------------------

    def put_token(self, token_hash: bytes, record: TokenRecord) -> None:
        with self._write("storing a token") as w:
            w.execute("INSERT INTO tokens (hash, id, tenant, scopes, name, created, revoked) "
                      "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                      (token_hash, record.id, record.tenant, " ".join(record.scopes),
                       record.name, record.created, record.revoked))

    def token_by_hash(self, token_hash: bytes) -> TokenRecord | None:
        with self._read("reading a token") as c:
            row = c.execute("SELECT id, tenant, scopes, name, created, revoked FROM tokens "
                            "WHERE hash = %s", (token_hash,)).fetchone()
        return _token(row) if row else None

    def list_tokens(self) -> list[TokenRecord]:
        with self._read("listing tokens") as c:
            rows = c.execute("SELECT id, tenant, scopes, name, created, revoked FROM tokens "
                             "ORDER BY created, id").fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, when: str) -> bool:
        with self._write("revoking a token") as w:
            cur = w.execute("UPDATE tokens SET revoked = %s WHERE id = %s AND revoked IS NULL",
                            (when, token_id))
            return cur.rowcount == 1

    def put_signing_key(self, record: SigningKeyRecord) -> None:
        with self._write("storing a signing key") as w:
            w.execute("INSERT INTO signing_keys (public_key, created, retired) "
                      "VALUES (%s, %s, %s)", (record.public_key, record.created, record.retired))

    def signing_keys(self) -> list[SigningKeyRecord]:
        with self._read("reading signing keys") as c:
            rows = c.execute("SELECT public_key, created, retired FROM signing_keys "
                             "ORDER BY created, n").fetchall()
        return [SigningKeyRecord(bytes(r[0]), r[1], r[2]) for r in rows]

    def retire_signing_key(self, public_key: bytes, when: str) -> None:
        with self._write("retiring a signing key") as w:
            w.execute("UPDATE signing_keys SET retired = %s WHERE public_key = %s",
                      (when, public_key))

    # migration (storage/migrate.py is the only caller) ---------------------------

    def export_secrets(self) -> dict[str, bytes]:
        with self._read("reading secrets") as c:
            rows = c.execute("SELECT name, value FROM secrets ORDER BY name").fetchall()
        return {str(n): bytes(v) for n, v in rows}

    def import_secret(self, name: str, value: bytes) -> None:
        with self._write("storing a secret") as w:
            w.execute("INSERT INTO secrets (name, value) VALUES (%s, %s) "
                      "ON CONFLICT (name) DO NOTHING", (name, value))

    def export_tokens(self) -> list[tuple[bytes, TokenRecord]]:
        with self._read("reading tokens") as c:
            rows = c.execute("SELECT hash, id, tenant, scopes, name, created, revoked "
                             "FROM tokens ORDER BY created, id").fetchall()
        return [(bytes(r[0]), _token(r[1:])) for r in rows]

    def close(self) -> None:
        self._packer.shutdown(wait=True)
        self._pool.close()


# opening -------------------------------------------------------------------


def _parse_url(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.Error as exc:
        # libpq names the bad part; the URL itself (and any password in it) stays out
        raise ConfigError(f"invalid PostgreSQL URL: {_cause(exc)}") from None


def _describe(params: dict[str, Any]) -> str:
    """host:port (user U, database D), with libpq's defaults filled in."""
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST", "localhost")
    port = params.get("port") or os.environ.get("PGPORT", "5432")
    user = params.get("user") or os.environ.get("PGUSER") or _os_user()
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{host}:{port} (user {user}, database {dbname})"


def _os_user() -> str:
    try:
        return getpass.getuser()  # libpq's default user
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "?"


def _cause(exc: BaseException) -> str:
    """libpq's reason on one line: 'connection refused', 'database "x" does not exist'."""
    line = _first_line(exc)
    for prefix in ("connection is bad: ", "connection failed: "):
        line = line.removeprefix(prefix)
    line = line.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return line[:1].lower() + line[1:] if line else type(exc).__name__


# rows ------------------------------------------------------------------------

_LOG_COLS = "id, name, origin, size, root, bus_seq"
_LEASE_COLS = "log_id, holder, epoch, extract(epoch FROM expires)::float8"
# the first_seq of the personal row (bundle) holding each seq of an array
_BUNDLE_OF_SEQ = ("SELECT (SELECT max(first_seq) FROM personal WHERE log_id = %s AND "
                  "first_seq <= s) FROM unnest(%s::bigint[]) AS u(s)")


def _log(row: tuple[Any, ...]) -> LogInfo:
    return LogInfo(int(row[0]), str(row[1]), str(row[2]), int(row[3]), bytes(row[4]),
                   int(row[5]))


def _lease(row: tuple[Any, ...]) -> Lease:
    return Lease(int(row[0]), str(row[1]), int(row[2]), float(row[3]))


