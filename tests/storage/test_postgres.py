"""What only the PostgreSQL backend has to prove: opening errors, several processes on one
database (migrations, leases, commits racing), the error boundary and the stored layout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest

from auditkeep.errors import ConfigError, FencedError, StorageError
from auditkeep.log import merkle
from auditkeep.storage.base import Commit, DetectCommit, Erasure, Lease
from auditkeep.storage.codec import unpack_entries, unpack_json
from auditkeep.storage.pg_schema import MIGRATIONS
from auditkeep.storage.postgres import CONNECT_TIMEOUT, IDLE_IN_TRANSACTION, PostgresBackend
from tests.services import PG_URL, missing, pg_available, with_schema

T = TypeVar("T")

_STUCK = """
import os, socket, sys, time
from auditkeep.storage.postgres import PostgresBackend
store = PostgresBackend(sys.argv[1])
log_id = int(sys.argv[2])
assert store.acquire_lease(log_id, f"{socket.gethostname()}:{os.getpid()}", 0.5)
with store._write("holding the lease row") as w:
    if sys.argv[3] == "synced":  # idle in transaction
        w.execute("SELECT 1 FROM leases WHERE log_id = %s FOR UPDATE", (log_id,))
        print("locked", flush=True)
        time.sleep(600)
    with w.pipeline():  # sent, never synced: as a commit's statements are
        w.execute("SELECT 1 FROM leases WHERE log_id = %s FOR UPDATE", (log_id,))
        w.execute("SELECT pg_sleep(0)")
        time.sleep(0.5)
        print("locked", flush=True)
        time.sleep(600)
"""


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresBackend]:
    s = PostgresBackend(pg_url)
    yield s
    s.close()


@pytest.fixture
def pg2(pg_url: str) -> Iterator[PostgresBackend]:
    """A second backend on the same schema: another server process, as far as the
    database can tell (its own pool of connections)."""
    s = PostgresBackend(pg_url)
    yield s
    s.close()


def race(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run fn(0..n-1) on n threads released at once; each result or exception."""
    barrier = threading.Barrier(n)
    out: list[T | BaseException] = [RuntimeError("did not run")] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except BaseException as exc:  # reported to the test, which asserts on it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return out


def make_commit(tree: merkle.CompactTree, log_id: int, n: int, *, tag: str = "",
                fence: Lease | None = None) -> Commit:
    first = tree.size
    entries = [f'{{"seq":{first + i},"t":"{tag}"}}'.encode() for i in range(n)]
    nodes = tree.extend_runs([merkle.leaf_hash(e) for e in entries])
    return Commit(log_id, first, entries, [hashlib.sha256(e).digest() for e in entries],
                  [first + i for i in range(n)], {first: {"actor.email": ["00", "a@b.c"]}},
                  nodes, tree.size, tree.root(), None, {first: ("k8s.audit", b"{}")},
                  {first: (5,)}, fence=fence)


class TestOpening:
    @pytest.fixture(autouse=True)
    def _server(self) -> None:
        if not pg_available():
            missing(f"PostgreSQL is not running at {PG_URL}")

    def test_a_closed_port_is_one_line_naming_where_and_why_without_the_password(
            self) -> None:
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            PostgresBackend("postgresql://auditor:s3cret-pw@127.0.0.1:5999/audit")
        message = str(info.value)
        assert message == ("cannot connect to PostgreSQL at 127.0.0.1:5999 (user auditor, "
                           "database audit): connection refused")
        assert "s3cret-pw" not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert time.monotonic() - started < CONNECT_TIMEOUT

    def test_a_missing_database_is_named(self) -> None:
        with pytest.raises(ConfigError) as info:
            PostgresBackend("postgresql://postgres@127.0.0.1:5432/auditkeep_no_such_db")
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:5432 "
                                  "(user postgres, database auditkeep_no_such_db): ")
        assert message.endswith('database "auditkeep_no_such_db" does not exist')

    def test_an_unknown_user_is_named(self) -> None:
        with pytest.raises(ConfigError) as info:
            PostgresBackend("postgresql://auditkeep_nobody:pw0rd@127.0.0.1:5432/postgres")
        message = str(info.value)
        assert "\n" not in message and "pw0rd" not in message
        assert 'role "auditkeep_nobody" does not exist' in message

    def test_a_malformed_url_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError) as info:
            PostgresBackend("postgresql://postgres:pw0rd@127.0.0.1:notaport/postgres")
        message = str(info.value)
        assert "\n" not in message and "pw0rd" not in message
        assert message.endswith('invalid integer value "notaport" for connection option "port"')


    def test_a_search_path_naming_no_schema_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError) as info:
            PostgresBackend(with_schema(PG_URL, "auditkeep_no_such_schema"))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("cannot prepare the auditkeep tables in PostgreSQL at ")
        assert "no schema has been selected" in message


class TestSharedDatabase:
    def test_backends_opening_a_fresh_schema_at_once_migrate_it_once(
            self, pg_url: str) -> None:
        opened = race(4, lambda _: PostgresBackend(pg_url, pool_size=2))
        try:
            assert all(isinstance(b, PostgresBackend) for b in opened), opened
            with psycopg.connect(pg_url) as conn:
                rows = conn.execute("SELECT version FROM schema_migrations "
                                    "ORDER BY version").fetchall()
            assert rows == [(v,) for v, _ in MIGRATIONS]  # each once
        finally:
            for b in opened:
                if isinstance(b, PostgresBackend):
                    b.close()

    def test_what_one_backend_wrote_another_reads_after_reopening(self, pg_url: str) -> None:
        a = PostgresBackend(pg_url)
        log = a.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        a.append(make_commit(tree, log.id, 300))
        secret = a.secret("pseudonym")
        a.close()
        b = PostgresBackend(pg_url)
        try:
            info = b.get_log("acme")
            assert info is not None and (info.size, info.root) == (300, tree.root())
            assert b.secret("pseudonym") == secret
            assert [n for _, n in b.bundle_index(log.id)] == [256, 44]
        finally:
            b.close()

    def test_backends_racing_for_a_lease_have_exactly_one_winner(
            self, pg: PostgresBackend, pg2: PostgresBackend) -> None:
        for round_ in range(10):
            log = pg.open_log(f"log{round_}", "o")
            got = race(8, lambda i, log_id=log.id: (pg, pg2)[i % 2].acquire_lease(
                log_id, f"seq-{i}", 30.0))
            won = [g for g in got if isinstance(g, Lease)]
            assert len(won) == 1 and won[0].epoch == 1, got
            assert all(g is None for g in got if not isinstance(g, Lease))

    def test_a_racing_takeover_of_an_expired_lease_has_one_winner_one_epoch_on(
            self, pg: PostgresBackend, pg2: PostgresBackend) -> None:
        log = pg.open_log("acme", "o/acme")
        assert pg.acquire_lease(log.id, "old", 0.05) is not None
        time.sleep(0.15)
        got = race(6, lambda i: (pg, pg2)[i % 2].acquire_lease(log.id, f"seq-{i}", 30.0))
        won = [g for g in got if isinstance(g, Lease)]
        assert len(won) == 1 and won[0].epoch == 2, got

    def test_the_deposed_holders_commit_is_fenced_and_the_new_ones_lands(
            self, pg: PostgresBackend, pg2: PostgresBackend) -> None:
        log = pg.open_log("acme", "o/acme")
        old = pg.acquire_lease(log.id, "seq-a", 0.05)
        time.sleep(0.15)
        new = pg2.acquire_lease(log.id, "seq-b", 30.0)
        assert old is not None and new is not None
        with pytest.raises(FencedError):
            pg.append(make_commit(merkle.CompactTree(), log.id, 5, tag="old", fence=old))
        tree = merkle.CompactTree()
        pg2.append(make_commit(tree, log.id, 5, tag="new", fence=new))
        got = [e for b in pg.read_bundles(log.id, 0, 5) for e in b.entries]
        assert got and all(b'"t":"new"' in e for e in got)
        assert pg.read_personal(log.id, [0]) == {0: {"actor.email": ["00", "a@b.c"]}}

    def test_commits_racing_at_one_size_store_exactly_one(
            self, pg: PostgresBackend, pg2: PostgresBackend) -> None:
        log = pg.open_log("acme", "o/acme")
        commits = [make_commit(merkle.CompactTree(), log.id, 300, tag=str(i)) for i in range(6)]
        got = race(6, lambda i: (pg, pg2)[i % 2].append(commits[i]))
        assert sum(g is None for g in got) == 1, got
        assert all(isinstance(g, FencedError) for g in got if g is not None), got
        winner = commits[got.index(None)]
        info = pg2.get_log("acme")
        assert info is not None and (info.size, info.root) == (300, winner.root)
        assert [e for b in pg.read_bundles(log.id, 0, 300) for e in b.entries] == winner.entries
        assert pg.subject_seqs(log.id, [5]) == [0]

    @pytest.mark.parametrize("how", ["synced", "pipelined"])
    def test_a_holder_stuck_inside_a_commit_does_not_keep_a_standby_from_the_lease(
            self, pg: PostgresBackend, pg_url: str, how: str) -> None:
        log = pg.open_log("acme", "o/acme")
        # Another process holds the lease, takes its row as a commit does, then goes
        # silent mid-transaction (paused, frozen) and never ends it.
        stuck = subprocess.Popen([sys.executable, "-c", _STUCK, pg_url, str(log.id), how],
                                 stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": "src"})
        try:
            assert stuck.stdout is not None and stuck.stdout.readline() == b"locked\n"
            time.sleep(0.6)  # the lease lapses; its row is still locked
            deadline = time.monotonic() + IDLE_IN_TRANSACTION + 10
            lease = None
            while lease is None and time.monotonic() < deadline:
                lease = pg.acquire_lease(log.id, "standby", 5.0)
            assert lease is not None and lease.holder == "standby" and lease.epoch == 2
        finally:
            stuck.kill()
            stuck.communicate()

    def test_the_secret_is_made_once_across_backends(
            self, pg: PostgresBackend, pg2: PostgresBackend) -> None:
        got = race(8, lambda i: (pg, pg2)[i % 2].secret("pseudonym"))
        assert all(isinstance(g, bytes) and len(g) == 32 for g in got), got
        assert len(set(got)) == 1  # type: ignore[arg-type]  # all bytes, checked above

    def test_many_threads_append_and_read_through_one_pool(self, pg: PostgresBackend) -> None:
        logs = [pg.open_log(f"log{i}", "o").id for i in range(6)]

        def work(i: int) -> int:
            tree = merkle.CompactTree()
            for _ in range(5):
                pg.append(make_commit(tree, logs[i], 40))
                assert pg.read_nodes(logs[i], [(0, tree.size - 1)]) == [
                    merkle.leaf_hash(f'{{"seq":{tree.size - 1},"t":""}}'.encode())]
            return tree.size

        assert race(6, work) == [200] * 6
        assert [log.size for log in pg.list_logs()] == [200] * 6


class TestErrorBoundary:
    def test_a_server_error_is_a_storage_error(self, pg: PostgresBackend) -> None:
        log = pg.open_log("acme", "o/acme")
        with pytest.raises(StorageError) as info:
            pg.find_dedup(log.id, [2**64])  # beyond bigint: the server refuses it
        assert isinstance(info.value.__cause__, psycopg.Error)

    def test_a_failing_detection_pass_leaves_nothing_behind(self, pg: PostgresBackend) -> None:
        pg.detect_commit(DetectCommit({1: 5}, {("r1", "a"): b"old"}))
        bad = DetectCommit({1: 9}, {("r1", "a"): None})
        from tests.storage.test_conformance import alert, delivery, t

        broken = alert("al_2", t(2))
        broken.rule = None  # type: ignore[assignment]  # violates NOT NULL after the cursors
        bad.alerts, bad.deliveries = [broken], [delivery("dl_2", "al_2")]
        with pytest.raises(StorageError):
            pg.detect_commit(bad)
        assert pg.detect_cursors() == {1: 5}
        assert pg.detect_state() == {("r1", "a"): b"old"}
        assert pg.alerts("acme") == [] and pg.deliveries("acme") == []

    def test_a_connection_the_server_ended_fails_one_call_then_the_pool_recovers(
            self, pg_url: str) -> None:
        pg = PostgresBackend(pg_url, pool_size=1)
        try:
            log = pg.open_log("acme", "o/acme")
            with pg._pool.connection() as conn:  # the pool's only connection
                pid = conn.info.backend_pid
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(StorageError):
                pg.get_log("acme")
            info = pg.get_log("acme")
            assert info is not None and info.id == log.id
        finally:
            pg.close()


class TestLayout:
    def test_bundles_and_personal_values_are_stored_in_the_shared_codec(
            self, pg: PostgresBackend, pg_url: str) -> None:
        log = pg.open_log("acme", "o/acme")
        c = make_commit(merkle.CompactTree(), log.id, 300)
        pg.append(c)
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT first_seq, count, entries, digests FROM bundles "
                                "ORDER BY first_seq").fetchall()
            personal = conn.execute("SELECT data FROM personal").fetchall()
        assert [(r[0], r[1]) for r in rows] == [(0, 256), (256, 44)]
        assert unpack_entries(rows[0][2], 256, "t") + unpack_entries(rows[1][2], 44, "t") \
            == c.entries
        assert rows[0][3] == b"".join(c.digests[:256])
        assert unpack_json(personal[0][0]) == {"0": {"actor.email": ["00", "a@b.c"]}}

    def test_erase_vacuums_the_tables_it_touched(self, pg: PostgresBackend, pg_url: str
                                                 ) -> None:
        log = pg.open_log("acme", "o/acme")
        pg.append(make_commit(merkle.CompactTree(), log.id, 3))
        pg.erase(Erasure(log.id, {0: None}, [0], [5], [0], record_seq=2))
        assert pg.read_personal(log.id, [0]) == {} and pg.read_raw(log.id, 0) is None
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = "
                "current_schema() AND relname IN ('personal', 'raws', 'subjects') "
                "AND last_vacuum IS NOT NULL ORDER BY relname").fetchall()
        assert rows == [("personal", 0), ("raws", 0), ("subjects", 0)]
