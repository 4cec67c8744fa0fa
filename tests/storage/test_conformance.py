"""One conformance suite, run against every backend (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from auditkeep.errors import FencedError, StorageError
from auditkeep.log import merkle
from auditkeep.storage.base import (
    AlertRecord,
    ArchiveRecord,
    Backend,
    Commit,
    Cosignature,
    DeliveryRecord,
    DetectCommit,
    Erasure,
    HoldRecord,
    Lease,
    Purge,
    PurgedRange,
    RetentionRecord,
    StoredCheckpoint,
    TokenRecord,
)
from auditkeep.storage.memory import MemoryBackend
from auditkeep.storage.postgres import PostgresBackend
from auditkeep.storage.sqlite import SQLiteBackend


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    s: Backend
    if request.param == "memory":
        s = MemoryBackend()
    elif request.param == "sqlite":
        s = SQLiteBackend(tmp_path / "t.db")
    else:
        s = PostgresBackend(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def commit(store: Backend, log_id: int, tree: merkle.CompactTree, n: int,
           personal: bool = False, raws: dict[int, tuple[str, bytes]] | None = None
           ) -> list[bytes]:
    first = tree.size
    entries = [f'{{"seq":{first + i}}}'.encode() for i in range(n)]
    nodes: list[tuple[int, int, bytes]] = []
    for e in entries:
        nodes.extend(tree.append(merkle.leaf_hash(e)))
    store.append(Commit(
        log_id, first, entries, [hashlib.sha256(e).digest() for e in entries],
        [first + i for i in range(n)],
        {first: {"actor.email": ["00", "a@b.c"]}} if personal else {},
        nodes, tree.size, tree.root(), None, raws or {}))
    return entries


class TestLogs:
    def test_open_log_is_idempotent_and_starts_empty(self, store: Backend) -> None:
        a = store.open_log("acme", "o/acme")
        b = store.open_log("acme", "o/acme")
        assert a.id == b.id
        assert a.size == 0 and a.root == merkle.EMPTY_ROOT
        assert [log.name for log in store.list_logs()] == ["acme"]
        assert store.get_log("nope") is None

    def test_appended_entries_and_nodes_read_back(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        written = commit(store, log.id, tree, 300) + commit(store, log.id, tree, 7)
        got = [e for b in store.read_bundles(log.id, 0, 307) for e in b.entries]
        assert got == written
        # a read from the middle returns the bundles that overlap it
        mid = store.read_bundles(log.id, 290, 301)
        assert mid[0].first_seq <= 290 and mid[-1].first_seq + len(mid[-1].entries) >= 301
        info = store.get_log("acme")
        assert info is not None and info.size == 307 and info.root == tree.root()
        read = lambda coords: store.read_nodes(log.id, coords)  # noqa: E731
        assert merkle.root_from_reader(307, read) == tree.root()
        proof = merkle.inclusion_proof(123, 307, read)
        merkle.verify_inclusion(merkle.leaf_hash(written[123]), 123, 307, proof, tree.root())

    def test_append_at_the_wrong_size_is_refused(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        commit(store, log.id, tree, 3)
        stale = merkle.CompactTree()
        with pytest.raises(FencedError):
            commit(store, log.id, stale, 3)
        info = store.get_log("acme")
        assert info is not None and info.size == 3

    def test_dedup_keys_and_personal_values(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        commit(store, log.id, tree, 5, personal=True)
        assert store.find_dedup(log.id, [2, 99]) == {2: [2]}
        assert store.read_personal(log.id, [0, 1]) == {0: {"actor.email": ["00", "a@b.c"]}}

    def test_dedup_keys_span_the_whole_int64_range(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        keys = [-(2**63), -1, 0, 2**63 - 1]
        entries = [f'{{"seq":{i}}}'.encode() for i in range(4)]
        store.append(Commit(log.id, 0, entries, [hashlib.sha256(e).digest() for e in entries],
                            keys, {}, tree.extend_runs([merkle.leaf_hash(e) for e in entries]),
                            tree.size, tree.root()))
        assert store.find_dedup(log.id, [*keys, 5]) == {k: [i] for i, k in enumerate(keys)}

    def test_raw_objects_read_back_byte_exactly(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        original = b'{ "kind": "Event",  "auditID":"x" }\n' + bytes(range(256)) * 40
        commit(store, log.id, tree, 3, raws={1: ("k8s.audit", original)})
        commit(store, log.id, tree, 2, raws={4: ("otlp.protobuf", b"\x00\x01")})
        assert store.read_raw(log.id, 1) == ("k8s.audit", original)
        assert store.read_raw(log.id, 4) == ("otlp.protobuf", b"\x00\x01")
        assert store.read_raw(log.id, 0) is None and store.read_raw(log.id, 99) is None
        assert store.read_raws(log.id, 0, 99) == {1: ("k8s.audit", original),
                                                  4: ("otlp.protobuf", b"\x00\x01")}
        assert store.read_raws(log.id, 2, 4) == {}

    def test_action_schemas_are_versioned_per_tenant(self, store: Backend) -> None:
        assert store.get_schema("acme", "orders.refund") is None
        assert store.put_schema("acme", "orders.refund", '{"a":1}', "t") == 1
        assert store.put_schema("acme", "orders.refund", '{"a":2}', "t") == 2
        assert store.put_schema("other", "orders.refund", '{"b":1}', "t") == 1
        assert store.get_schema("acme", "orders.refund") == (2, '{"a":2}')
        assert store.get_schema("acme", "orders.refund", 1) == (1, '{"a":1}')
        assert store.get_schema("acme", "orders.refund", 3) is None
        assert store.latest_schemas("acme") == {"orders.refund": (2, '{"a":2}')}

    def test_saved_searches_are_per_tenant_and_replaced_whole(self, store: Backend) -> None:
        assert store.saved_searches("acme") == []
        store.put_saved_search("acme", "b", '{"query":"x"}', "tok1", "t1")
        store.put_saved_search("acme", "a", '{"query":"y"}', "tok1", "t1")
        store.put_saved_search("other", "a", '{"query":"z"}', "tok2", "t1")
        store.put_saved_search("acme", "b", '{"query":"x2"}', "tok3", "t2")
        got = store.saved_searches("acme")
        assert [(s.name, s.body, s.created_by, s.updated) for s in got] == [
            ("a", '{"query":"y"}', "tok1", "t1"), ("b", '{"query":"x2"}', "tok3", "t2")]
        assert store.delete_saved_search("acme", "a") is True
        assert store.delete_saved_search("acme", "a") is False
        assert [s.name for s in store.saved_searches("acme")] == ["b"]
        assert [s.body for s in store.saved_searches("other")] == ['{"query":"z"}']

    def test_checkpoints_are_kept_in_size_order(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        for size in (3, 1, 2):
            store.put_checkpoint(log.id, StoredCheckpoint(size, b"r" * 32, f"n{size}", "t"))
        assert [c.size for c in store.checkpoints(log.id)] == [1, 2, 3]
        latest = store.latest_checkpoint(log.id)
        assert latest is not None and latest.size == 3

    def test_checkpoints_are_deleted_by_size_and_root_only(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        other = store.open_log("other", "o/other")
        for size in (1, 2, 3):
            store.put_checkpoint(log.id, StoredCheckpoint(size, b"r" * 32, f"n{size}", "t"))
        store.put_checkpoint(log.id, StoredCheckpoint(2, b"f" * 32, "fork", "t"))
        store.put_checkpoint(other.id, StoredCheckpoint(2, b"r" * 32, "o2", "t"))
        assert store.delete_checkpoints(log.id, [(2, b"r" * 32), (3, b"x" * 32)]) == 1
        assert [(c.size, c.note) for c in store.checkpoints(log.id)] == [
            (1, "n1"), (2, "fork"), (3, "n3")]
        assert [c.note for c in store.checkpoints(other.id)] == ["o2"]
        assert store.delete_checkpoints(log.id, []) == 0


class TestTokens:
    def test_tokens_are_found_by_hash_and_revoked_once(self, store: Backend) -> None:
        rec = TokenRecord("tok_1", "acme", ("read",), "n", "2026-01-01T00:00:00Z")
        store.put_token(b"h" * 32, rec)
        found = store.token_by_hash(b"h" * 32)
        assert found is not None and found.scopes == ("read",)
        assert store.revoke_token("tok_1", "later") is True
        assert store.revoke_token("tok_1", "later") is False
        again = store.token_by_hash(b"h" * 32)
        assert again is not None and again.revoked == "later"


    def test_tokens_export_with_their_hashes(self, store: Backend) -> None:
        a = TokenRecord("tok_a", "acme", ("read", "write"), "a", "2026-01-01T00:00:00Z")
        b = TokenRecord("tok_b", None, ("admin",), "b", "2026-01-02T00:00:00Z", "later")
        store.put_token(b"b" * 32, b)
        store.put_token(b"a" * 32, a)
        assert sorted(store.export_tokens(), key=lambda ht: ht[0]) == [
            (b"a" * 32, a), (b"b" * 32, b)]  # the order is not part of the contract


def alert(id: str, created: str, *, tenant: str = "acme", rule: str = "r1", level: str = "high",
          status: str = "open", dedup_key: str = "k", body: str = "{}") -> AlertRecord:
    return AlertRecord(id, tenant, rule, level, status, dedup_key, created, created, body)


def delivery(id: str, alert_id: str, *, tenant: str = "acme", status: str = "pending",
             next_attempt: str = "2026-01-01T00:00:00Z",
             updated: str = "2026-01-01T00:00:00Z") -> DeliveryRecord:
    return DeliveryRecord(id, alert_id, tenant, "webhook", status, 0, next_attempt,
                          "2026-01-01T00:00:00Z", updated)


def t(minute: int) -> str:
    return f"2026-01-01T00:{minute:02d}:00Z"


class TestDetectCommit:
    def test_nothing_is_stored_before_the_first_pass(self, store: Backend) -> None:
        assert store.detect_cursors() == {}
        assert store.detect_state() == {}
        assert store.alerts("acme") == [] and store.unlogged_alerts() == []
        assert store.due_deliveries(t(59)) == [] and store.deliveries("acme") == []

    def test_a_commit_reads_back_whole(self, store: Backend) -> None:
        a = alert("al_1", t(1), body='{"x":1}')
        d = delivery("dl_1", "al_1")
        store.detect_commit(DetectCommit({1: 10, 2: 5}, {("r1", "u1"): b"\x00\x01"}, [a], [d]))
        assert store.detect_cursors() == {1: 10, 2: 5}
        assert store.detect_state() == {("r1", "u1"): b"\x00\x01"}
        assert store.get_alert("acme", "al_1") == a
        assert store.get_delivery("acme", "dl_1") == d
        assert store.deliveries("acme") == [d]

    def test_cursors_and_state_are_upserted_and_none_deletes(self, store: Backend) -> None:
        store.detect_commit(DetectCommit({1: 10, 2: 5}, {("r1", "a"): b"1", ("r1", "b"): b"2",
                                                         ("r2", "a"): b"3"}))
        store.detect_commit(DetectCommit({1: 20}, {("r1", "a"): None, ("r1", "b"): b"22",
                                                   ("r9", "never"): None}))
        assert store.detect_cursors() == {1: 20, 2: 5}
        assert store.detect_state() == {("r1", "b"): b"22", ("r2", "a"): b"3"}

    def test_the_same_commit_twice_stores_everything_once(self, store: Backend) -> None:
        c = DetectCommit({1: 10}, {("r1", "a"): b"s"}, [alert("al_1", t(1))],
                         [delivery("dl_1", "al_1")])
        store.detect_commit(c)
        store.detect_commit(c)
        assert store.detect_cursors() == {1: 10}
        assert [a.id for a in store.alerts("acme")] == ["al_1"]
        assert [d.id for d in store.deliveries("acme")] == ["dl_1"]

    def test_a_repeated_delivery_keeps_its_progress(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(deliveries=[delivery("dl_1", "al_1")]))
        sent = delivery("dl_1", "al_1", status="delivered", updated=t(5))
        sent.attempts = 1
        store.update_delivery(sent)
        store.detect_commit(DetectCommit(deliveries=[delivery("dl_1", "al_1")]))
        assert store.get_delivery("acme", "dl_1") == sent

    def test_an_alert_upsert_replaces_its_fields_but_keeps_logged_seq(
            self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[alert("al_1", t(1))]))
        store.set_alert_logged("al_1", 7)
        again = alert("al_1", t(1), level="critical", status="acked", body='{"n":2}')
        again.updated = t(9)
        store.detect_commit(DetectCommit(alerts=[again]))
        got = store.get_alert("acme", "al_1")
        assert got is not None
        assert (got.level, got.status, got.body, got.updated, got.logged_seq) == (
            "critical", "acked", '{"n":2}', t(9), 7)
        assert got.created == t(1)

    def test_returned_records_are_copies(self, store: Backend) -> None:
        a = alert("al_1", t(1))
        store.detect_commit(DetectCommit(alerts=[a], deliveries=[delivery("dl_1", "al_1")]))
        a.status = "mutated"
        got = store.get_alert("acme", "al_1")
        assert got is not None and got.status == "open"
        got.status = "mutated"
        listed = store.alerts("acme")
        assert listed[0].status == "open"
        d = store.due_deliveries(t(59))[0]
        d.status = "mutated"
        assert store.deliveries("acme")[0].status == "pending"


class TestAlerts:
    def test_paging_with_before_crosses_equal_created_values(self, store: Backend) -> None:
        # five alerts at the same instant and two around it: pages of two must see each once
        alerts = [alert(f"al_{c}", t(2)) for c in "abcde"]
        alerts += [alert("al_z", t(1)), alert("al_0", t(3))]
        store.detect_commit(DetectCommit(alerts=alerts))
        seen: list[str] = []
        before: tuple[str, str] | None = None
        while True:
            page = store.alerts("acme", before=before, limit=2)
            if not page:
                break
            assert len(page) <= 2
            seen += [a.id for a in page]
            before = (page[-1].created, page[-1].id)
        assert seen == ["al_0", "al_e", "al_d", "al_c", "al_b", "al_a", "al_z"]
        assert [a.id for a in store.alerts("acme", before=(t(2), "al_c"))] == [
            "al_b", "al_a", "al_z"]

    def test_every_filter_narrows_the_listing(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[
            alert("a1", t(1), rule="r1", level="high", status="open"),
            alert("a2", t(2), rule="r2", level="high", status="acked"),
            alert("a3", t(3), rule="r1", level="low", status="acked"),
            alert("a4", t(4), rule="r2", level="low", status="open"),
        ]))
        ids = lambda **kw: [a.id for a in store.alerts("acme", **kw)]  # noqa: E731
        assert ids() == ["a4", "a3", "a2", "a1"]
        assert ids(rule="r1") == ["a3", "a1"]
        assert ids(level="low") == ["a4", "a3"]
        assert ids(status="acked") == ["a3", "a2"]
        assert ids(since=t(2)) == ["a4", "a3", "a2"]  # since is inclusive
        assert ids(until=t(3)) == ["a2", "a1"]  # until is exclusive
        assert ids(since=t(2), until=t(4), rule="r2") == ["a2"]
        assert ids(rule="r1", level="high", status="open") == ["a1"]
        assert ids(rule="nope") == []
        assert ids(limit=1) == ["a4"]

    def test_open_alert_is_the_newest_open_one_with_the_key(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[
            alert("old", t(1), dedup_key="k"),
            alert("new", t(2), dedup_key="k"),
            alert("acked", t(3), dedup_key="k", status="acked"),
            alert("other", t(4), dedup_key="k2"),
        ]))
        found = store.open_alert("acme", "k")
        assert found is not None and found.id == "new"
        store.update_alert(alert("new", t(2), dedup_key="k", status="acked"))
        found = store.open_alert("acme", "k")
        assert found is not None and found.id == "old"
        assert store.open_alert("acme", "missing") is None

    def test_update_alert_replaces_fields_but_not_logged_seq(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[alert("al_1", t(1))]))
        store.set_alert_logged("al_1", 3)
        new = alert("al_1", t(1), level="low", status="acked", body='{"acked":true}')
        new.updated = t(8)
        store.update_alert(new)  # logged_seq None here must not clear the stored one
        got = store.get_alert("acme", "al_1")
        assert got is not None
        assert (got.level, got.status, got.body, got.updated, got.logged_seq) == (
            "low", "acked", '{"acked":true}', t(8), 3)

    def test_unlogged_alerts_are_oldest_first_until_logged(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[
            alert("b", t(2)), alert("a", t(2)), alert("c", t(1)),
            alert("x", t(5), tenant="other")]))
        assert [a.id for a in store.unlogged_alerts()] == ["c", "a", "b", "x"]
        assert [a.id for a in store.unlogged_alerts(limit=2)] == ["c", "a"]
        store.set_alert_logged("a", 12)
        assert [a.id for a in store.unlogged_alerts()] == ["c", "b", "x"]
        got = store.get_alert("acme", "a")
        assert got is not None and got.logged_seq == 12


class TestDeliveries:
    def test_due_deliveries_are_pending_and_due_in_next_attempt_order(
            self, store: Backend) -> None:
        store.detect_commit(DetectCommit(deliveries=[
            delivery("d3", "a", next_attempt=t(3)),
            delivery("d1b", "a", next_attempt=t(1)),
            delivery("d1a", "a", next_attempt=t(1)),
            delivery("d2", "a", next_attempt=t(2), tenant="other"),
            delivery("late", "a", next_attempt=t(9)),
            delivery("sent", "a", next_attempt=t(0), status="delivered"),
            delivery("dead", "a", next_attempt=t(0), status="dead"),
        ]))
        due = lambda now, limit=100: [  # noqa: E731
            d.id for d in store.due_deliveries(now, limit)]
        assert due(t(3)) == ["d1a", "d1b", "d2", "d3"]  # next_attempt <= now
        assert due(t(2), limit=2) == ["d1a", "d1b"]
        assert due(t(0)) == []
        assert due(t(9)) == ["d1a", "d1b", "d2", "d3", "late"]

    def test_update_delivery_moves_it_off_the_queue(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(deliveries=[delivery("d1", "a")]))
        retry = delivery("d1", "a", next_attempt=t(30), updated=t(1))
        retry.attempts, retry.last_error = 1, "HTTP 503"
        store.update_delivery(retry)
        assert store.due_deliveries(t(29)) == []
        assert store.due_deliveries(t(30)) == [retry]
        dead = delivery("d1", "a", status="dead", next_attempt=t(30), updated=t(31))
        dead.attempts, dead.last_error = 5, "HTTP 500"
        store.update_delivery(dead)
        assert store.due_deliveries(t(59)) == []
        assert store.get_delivery("acme", "d1") == dead

    def test_deliveries_are_newest_first_and_filtered(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(deliveries=[
            delivery("d1", "a1", updated=t(1)),
            delivery("d2", "a2", updated=t(2), status="dead"),
            delivery("d3b", "a1", updated=t(3), status="delivered"),
            delivery("d3a", "a1", updated=t(3)),
        ]))
        ids = lambda **kw: [d.id for d in store.deliveries("acme", **kw)]  # noqa: E731
        assert ids() == ["d3b", "d3a", "d2", "d1"]
        assert ids(status="pending") == ["d3a", "d1"]
        assert ids(alert_id="a1") == ["d3b", "d3a", "d1"]
        assert ids(alert_id="a1", status="delivered") == ["d3b"]
        assert ids(limit=2) == ["d3b", "d3a"]


class TestDetectionTenants:
    def test_another_tenants_records_are_never_returned(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(
            alerts=[alert("mine", t(1)), alert("theirs", t(2), tenant="other")],
            deliveries=[delivery("dm", "mine"), delivery("dt", "theirs", tenant="other")]))
        assert store.get_alert("acme", "theirs") is None
        assert store.get_delivery("acme", "dt") is None
        assert [a.id for a in store.alerts("acme")] == ["mine"]
        assert [d.id for d in store.deliveries("acme")] == ["dm"]
        assert [d.id for d in store.deliveries("acme", alert_id="theirs")] == []
        assert store.open_alert("acme", "k") is not None
        assert store.open_alert("nobody", "k") is None
        theirs = store.get_alert("other", "theirs")
        assert theirs is not None and theirs.tenant == "other"

    def test_an_update_under_another_tenant_changes_nothing(self, store: Backend) -> None:
        store.detect_commit(DetectCommit(alerts=[alert("al_1", t(1), tenant="other")],
                                         deliveries=[delivery("d1", "al_1", tenant="other")]))
        store.update_alert(alert("al_1", t(1), tenant="acme", status="acked"))
        store.detect_commit(DetectCommit(alerts=[alert("al_1", t(1), tenant="acme",
                                                       body='{"stolen":1}')]))
        store.update_delivery(delivery("d1", "al_1", tenant="acme", status="dead"))
        got = store.get_alert("other", "al_1")
        assert got is not None and (got.status, got.body) == ("open", "{}")
        assert store.get_alert("acme", "al_1") is None
        d = store.get_delivery("other", "d1")
        assert d is not None and d.status == "pending"


class TestSQLiteDetection:
    def test_detection_records_survive_close_and_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "d.db"
        a = alert("al_1", t(1), body='{"x":1}')
        d = delivery("dl_1", "al_1", next_attempt=t(2))
        s = SQLiteBackend(path)
        s.detect_commit(DetectCommit({3: 42}, {("r1", "u"): b"\xff"}, [a], [d]))
        s.set_alert_logged("al_1", 9)
        s.close()
        s = SQLiteBackend(path)
        try:
            assert s.detect_cursors() == {3: 42}
            assert s.detect_state() == {("r1", "u"): b"\xff"}
            a.logged_seq = 9
            assert s.get_alert("acme", "al_1") == a
            assert s.due_deliveries(t(2)) == [d]
            assert s.unlogged_alerts() == []
        finally:
            s.close()

    def test_a_failing_pass_leaves_nothing_behind(self, tmp_path: Path) -> None:
        s = SQLiteBackend(tmp_path / "d.db")
        try:
            s.detect_commit(DetectCommit({1: 5}, {("r1", "a"): b"old"}))
            bad = alert("al_2", t(2))
            bad.rule = None  # type: ignore[assignment]  # violates NOT NULL after the cursors
            with pytest.raises(StorageError):
                s.detect_commit(DetectCommit({1: 9}, {("r1", "a"): None}, [bad],
                                             [delivery("dl_2", "al_2")]))
            assert s.detect_cursors() == {1: 5}
            assert s.detect_state() == {("r1", "a"): b"old"}
            assert s.alerts("acme") == [] and s.deliveries("acme") == []
        finally:
            s.close()



class TestPrivacy:
    def _log(self, store: Backend) -> tuple[int, merkle.CompactTree]:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        first = tree.size
        entries = [f'{{"seq":{i}}}'.encode() for i in range(300)]  # two personal bundles
        nodes: list[tuple[int, int, bytes]] = []
        for e in entries:
            nodes.extend(tree.append(merkle.leaf_hash(e)))
        personal = {s: {"actor.email": ["aa", f"u{s % 3}@x.io"], "actor.ip": ["bb", "10.0.0.1"]}
                    for s in range(0, 300, 10)}
        store.append(Commit(
            log.id, first, entries, [hashlib.sha256(e).digest() for e in entries],
            list(range(300)), personal, nodes, tree.size, tree.root(), None,
            {5: ("k8s.audit", b'{"user":"u1"}'), 7: ("k8s.audit", b'{"user":"u2"}')},
            {s: (100 + s % 3, 7) for s in range(0, 300, 10)} | {5: (101,), 7: (102,)}))
        return log.id, tree

    def test_the_secret_is_made_once(self, store: Backend) -> None:
        a = store.secret("pseudonym")
        assert len(a) == 32
        assert store.secret("pseudonym") == a
        assert store.secret("other") != a

    def test_secrets_export_and_an_import_keeps_an_existing_one(self, store: Backend) -> None:
        made = store.secret("pseudonym")
        store.import_secret("pseudonym", b"x" * 32)
        store.import_secret("other", b"y" * 32)
        assert store.export_secrets() == {"other": b"y" * 32, "pseudonym": made}
        assert store.secret("other") == b"y" * 32

    def test_subject_keys_find_their_seqs(self, store: Backend) -> None:
        log_id, _ = self._log(store)
        assert store.subject_seqs(log_id, [101]) == [5, *range(10, 300, 30)]
        assert store.subject_seqs(log_id, [101, 101]) == store.subject_seqs(log_id, [101])
        assert len(store.subject_seqs(log_id, [7])) == 30
        assert store.subject_seqs(log_id, [999]) == []
        assert store.subject_seqs(log_id + 50, [101]) == []

    def test_erase_deletes_values_raws_and_index_rows_and_marks_seqs(
            self, store: Backend) -> None:
        log_id, tree = self._log(store)
        seqs = store.subject_seqs(log_id, [101])
        keep_ip = {s: {"actor.ip": ["bb", "10.0.0.1"]} for s in seqs if s % 10 == 0}
        left: dict[int, dict[str, list[object]] | None] = {**keep_ip, 250: None}
        store.erase(Erasure(log_id, left, [5], [101], seqs, record_seq=299))
        held = store.read_personal(log_id, list(range(300)))
        for s in seqs:
            if s % 10 == 0 and s != 250:
                assert held[s] == {"actor.ip": ["bb", "10.0.0.1"]}
        assert 250 not in held
        assert held[20]["actor.email"] == ["aa", "u2@x.io"]  # other subjects untouched
        assert store.read_raw(log_id, 5) is None
        assert store.read_raw(log_id, 7) == ("k8s.audit", b'{"user":"u2"}')
        assert store.subject_seqs(log_id, [101]) == []
        assert 10 in store.subject_seqs(log_id, [7])  # the event's other keys stay
        assert store.erased_seqs(log_id) == dict.fromkeys(seqs, 299)
        assert store.erased_seqs(log_id, 0, 11) == {5: 299, 10: 299}
        # the log itself is untouched: entries, nodes, size and root
        assert store.get_log("acme").size == 300  # type: ignore[union-attr]
        assert store.get_log("acme").root == tree.root()  # type: ignore[union-attr]
        assert [len(b.entries) for b in store.read_bundles(log_id, 0, 300)] == [256, 44]

    def test_erase_is_idempotent(self, store: Backend) -> None:
        log_id, _ = self._log(store)
        seqs = store.subject_seqs(log_id, [102])
        e = Erasure(log_id, dict.fromkeys(seqs), [7], [102], seqs, record_seq=299)
        store.erase(e)
        store.erase(e)
        assert store.erased_seqs(log_id) == dict.fromkeys(seqs, 299)
        assert all(s not in store.read_personal(log_id, seqs) for s in seqs)


def fenced_commit(store: Backend, log_id: int, tree: merkle.CompactTree, n: int, *,
                  fence: Lease | None, bus_seq: int | None = None) -> list[bytes]:
    """A commit of n entries with everything a commit can carry, fenced by `fence`."""
    first = tree.size
    entries = [f'{{"seq":{first + i}}}'.encode() for i in range(n)]
    nodes = tree.extend_runs([merkle.leaf_hash(e) for e in entries])
    store.append(Commit(
        log_id, first, entries, [hashlib.sha256(e).digest() for e in entries],
        [1000 + first + i for i in range(n)], {first: {"actor.email": ["00", "a@b.c"]}},
        nodes, tree.size, tree.root(), StoredCheckpoint(tree.size, tree.root(), "n", "t"),
        {first: ("k8s.audit", b"{}")}, {first: (77,)}, fence=fence, bus_seq=bus_seq))
    return entries


def assert_nothing_stored(store: Backend, log_id: int, size: int) -> None:
    """The log is as it was at `size` (commits by `fenced_commit` only)."""
    info = next(log for log in store.list_logs() if log.id == log_id)
    assert info.size == size
    assert sum(len(b.entries) for b in store.read_bundles(log_id, 0, 10_000)) == size
    assert store.find_dedup(log_id, [1000 + size]) == {}
    assert store.read_personal(log_id, [size]) == {}
    assert store.read_raw(log_id, size) is None
    assert size not in store.subject_seqs(log_id, [77])
    latest = store.latest_checkpoint(log_id)
    assert (latest.size if latest else 0) == size
    assert sum(len(t) for t in store.read_tile_range(log_id, 0, 0, 100)) == 32 * size


class TestLeases:
    def test_the_first_holder_gets_epoch_one_until_the_store_clock_says_expired(
            self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        before = time.time()
        lease = store.acquire_lease(log.id, "seq-a", 30.0)
        assert lease is not None
        assert (lease.log_id, lease.holder, lease.epoch) == (log.id, "seq-a", 1)
        # the store's clock, but on one machine it is ours to within a few seconds
        assert before + 25 < lease.expires < time.time() + 35
        assert store.acquire_lease(log.id, "seq-b", 30.0) is None

    def test_the_holder_reacquiring_its_live_lease_renews_it_with_the_same_epoch(
            self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        first = store.acquire_lease(log.id, "seq-a", 10.0)
        again = store.acquire_lease(log.id, "seq-a", 60.0)
        assert first is not None and again is not None
        assert again.epoch == first.epoch == 1
        assert again.expires > first.expires + 40

    def test_an_expired_lease_passes_to_a_new_holder_with_the_next_epoch(
            self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        old = store.acquire_lease(log.id, "seq-a", 0.05)
        assert old is not None
        time.sleep(0.15)
        new = store.acquire_lease(log.id, "seq-b", 30.0)
        assert new is not None and (new.holder, new.epoch) == ("seq-b", 2)
        assert store.renew_lease(old, 30.0) is None
        assert store.acquire_lease(log.id, "seq-a", 30.0) is None

    def test_the_same_holder_after_its_lease_expired_gets_the_next_epoch(
            self, store: Backend) -> None:
        # a commit it began under the old epoch must not land under the new one
        log = store.open_log("acme", "o/acme")
        old = store.acquire_lease(log.id, "seq-a", 0.05)
        time.sleep(0.15)
        new = store.acquire_lease(log.id, "seq-a", 30.0)
        assert old is not None and new is not None
        assert (new.holder, new.epoch) == ("seq-a", 2)
        with pytest.raises(FencedError):
            fenced_commit(store, log.id, merkle.CompactTree(), 1, fence=old)
        assert_nothing_stored(store, log.id, 0)

    def test_renew_extends_a_held_lease_and_refuses_a_lost_one(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        lease = store.acquire_lease(log.id, "seq-a", 5.0)
        assert lease is not None
        renewed = store.renew_lease(lease, 60.0)
        assert renewed is not None
        assert (renewed.holder, renewed.epoch) == ("seq-a", 1)
        assert renewed.expires > lease.expires + 40
        assert store.renew_lease(Lease(log.id, "seq-a", 2, renewed.expires), 60.0) is None
        assert store.renew_lease(Lease(log.id, "seq-x", 1, renewed.expires), 60.0) is None
        short = store.acquire_lease(store.open_log("b", "o/b").id, "seq-a", 0.05)
        assert short is not None
        time.sleep(0.15)
        assert store.renew_lease(short, 60.0) is None  # expired: lost, even if unclaimed

    def test_release_hands_over_at_once_and_a_stale_release_changes_nothing(
            self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        a = store.acquire_lease(log.id, "seq-a", 60.0)
        assert a is not None
        store.release_lease(a)
        b = store.acquire_lease(log.id, "seq-b", 60.0)
        assert b is not None and b.epoch == 2
        store.release_lease(a)  # a's lease is long gone: b keeps its own
        assert store.acquire_lease(log.id, "seq-c", 60.0) is None
        assert store.renew_lease(b, 60.0) is not None

    def test_leases_are_per_log(self, store: Backend) -> None:
        one = store.open_log("one", "o/one")
        two = store.open_log("two", "o/two")
        a = store.acquire_lease(one.id, "seq-a", 60.0)
        b = store.acquire_lease(two.id, "seq-b", 60.0)
        assert a is not None and b is not None
        assert (a.epoch, b.epoch) == (1, 1)
        assert store.acquire_lease(one.id, "seq-b", 60.0) is None


class TestFencedAppend:
    def test_a_commit_under_a_held_lease_lands_and_moves_bus_seq(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        assert log.bus_seq == 0
        lease = store.acquire_lease(log.id, "seq-a", 60.0)
        tree = merkle.CompactTree()
        written = fenced_commit(store, log.id, tree, 3, fence=lease, bus_seq=41)
        info = store.get_log("acme")
        assert info is not None and (info.size, info.bus_seq) == (3, 41)
        assert [e for b in store.read_bundles(log.id, 0, 3) for e in b.entries] == written
        fenced_commit(store, log.id, tree, 2, fence=lease)  # bus_seq None: unchanged
        info = store.get_log("acme")
        assert info is not None and (info.size, info.bus_seq) == (5, 41)
        fenced_commit(store, log.id, tree, 1, fence=None, bus_seq=50)
        assert [(x.name, x.size, x.bus_seq) for x in store.list_logs()] == [("acme", 6, 50)]

    def test_a_commit_under_an_expired_lease_stores_nothing(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        lease = store.acquire_lease(log.id, "seq-a", 60.0)
        fenced_commit(store, log.id, tree, 2, fence=lease, bus_seq=7)
        short = store.acquire_lease(log.id, "seq-a", 0.05)  # renewed, same epoch, short
        assert short is not None and short.epoch == 1
        time.sleep(0.15)
        with pytest.raises(FencedError):
            fenced_commit(store, log.id, tree, 3, fence=short, bus_seq=9)
        assert_nothing_stored(store, log.id, 2)
        info = store.get_log("acme")
        assert info is not None and info.bus_seq == 7

    def test_a_commit_under_a_superseded_epoch_stores_nothing(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        old = store.acquire_lease(log.id, "seq-a", 60.0)
        assert old is not None
        store.release_lease(old)
        new = store.acquire_lease(log.id, "seq-b", 60.0)
        assert new is not None and new.epoch == 2
        with pytest.raises(FencedError):
            fenced_commit(store, log.id, merkle.CompactTree(), 3, fence=old)
        assert_nothing_stored(store, log.id, 0)
        # a forged fence with the live epoch but another holder is refused too
        with pytest.raises(FencedError):
            fenced_commit(store, log.id, merkle.CompactTree(), 3,
                          fence=Lease(log.id, "seq-a", 2, new.expires))
        assert_nothing_stored(store, log.id, 0)
        fenced_commit(store, log.id, merkle.CompactTree(), 3, fence=new)
        assert_nothing_stored(store, log.id, 3)  # i.e. exactly the new holder's commit

    def test_a_commit_at_the_wrong_size_is_fenced_and_stores_nothing(
            self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        lease = store.acquire_lease(log.id, "seq-a", 60.0)
        tree = merkle.CompactTree()
        fenced_commit(store, log.id, tree, 4, fence=lease, bus_seq=3)
        for fence in (lease, None):
            stale = merkle.CompactTree()
            stale.extend_runs([merkle.leaf_hash(b"x")])
            with pytest.raises(FencedError):  # first_seq 1, but the log is at 4
                fenced_commit(store, log.id, stale, 2, fence=fence, bus_seq=99)
            assert_nothing_stored(store, log.id, 4)
        info = store.get_log("acme")
        assert info is not None and info.bus_seq == 3


class TestStoredBytes:
    def test_bytes_per_log_grow_with_entries_and_raws(self, store: Backend) -> None:
        a = store.open_log("acme", "o/acme")
        store.open_log("beta", "o/beta")
        assert store.stored_bytes() == {"acme": 0, "beta": 0}
        tree = merkle.CompactTree()
        commit(store, a.id, tree, 300)
        first = store.stored_bytes()
        assert first["acme"] > 32 * 300 and first["beta"] == 0  # digests alone are 32 B
        # incompressible, so even a backend that compresses raws stores ~5,000 bytes
        raw = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(157))[:5000]
        commit(store, a.id, tree, 1, raws={300: ("k8s.audit", raw)})
        after = store.stored_bytes()
        assert after["acme"] >= first["acme"] + 5000
        assert after["beta"] == 0


class TestPurge:
    """Retention purge: entry bytes go, leaves, tiles and checkpoints stay."""

    def _log(self, store: Backend) -> tuple[int, list[bytes], merkle.CompactTree]:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        entries = [f'{{"seq":{i},"pad":"{"x" * (i % 7)}"}}'.encode() for i in range(600)]
        nodes: list[tuple[int, int, bytes]] = []
        for e in entries:
            nodes.extend(tree.append(merkle.leaf_hash(e)))
        personal = {s: {"actor.email": ["aa", f"u{s}@x.io"]} for s in range(0, 600, 5)}
        store.append(Commit(
            log.id, 0, entries, [hashlib.sha256(e).digest() for e in entries],
            list(range(600)), personal, nodes, tree.size, tree.root(),
            StoredCheckpoint(tree.size, tree.root(), "note", "t"),
            {s: ("k8s.audit", f"raw{s}".encode()) for s in range(0, 600, 5)},
            {s: (100 + s % 3,) for s in range(0, 600, 5)}))
        return log.id, entries, tree

    @staticmethod
    def _entries(store: Backend, log_id: int) -> list[bytes]:
        return [e for b in store.read_bundles(log_id, 0, 600) for e in b.entries]

    def test_purged_seqs_read_as_empty_and_the_rest_is_unchanged(self, store: Backend) -> None:
        log_id, entries, tree = self._log(store)
        digests = [d for b in store.read_bundles(log_id, 0, 600) for d in b.digests]
        tiles = store.read_tile_range(log_id, 0, 0, 10)
        gone = [*range(250, 262), 400, 599]  # across a bundle boundary and the last seq
        assert store.purge(Purge(log_id, gone, record_seq=599)) == len(gone)
        got = self._entries(store, log_id)
        assert [s for s, e in enumerate(got) if e == b""] == gone
        assert [e for s, e in enumerate(got) if s not in gone] == \
            [e for s, e in enumerate(entries) if s not in gone]
        assert [d for b in store.read_bundles(log_id, 0, 600) for d in b.digests] == digests
        assert [len(b.entries) for b in store.read_bundles(log_id, 0, 600)] == [256, 256, 88]
        assert store.read_bundles(log_id, 255, 256)[0].entries[250 - 0] == b""
        # leaves, every level of tiles, checkpoints, size, root and dedup keys stay
        assert store.read_tile_range(log_id, 0, 0, 10) == tiles
        read = lambda coords: store.read_nodes(log_id, coords)  # noqa: E731
        assert merkle.root_from_reader(600, read) == tree.root()
        assert store.read_nodes(log_id, [(0, 400)]) == [merkle.leaf_hash(entries[400])]
        assert [c.size for c in store.checkpoints(log_id)] == [600]
        assert store.get_log("acme").root == tree.root()  # type: ignore[union-attr]
        assert store.find_dedup(log_id, [400]) == {400: [400]}

    def test_personal_values_raws_and_subject_rows_of_purged_seqs_go(
            self, store: Backend) -> None:
        log_id, _, _ = self._log(store)
        store.purge(Purge(log_id, [250, 255, 260, 261], record_seq=599))
        held = store.read_personal(log_id, list(range(600)))
        assert 250 not in held and 255 not in held and 260 not in held
        assert held[245] == {"actor.email": ["aa", "u245@x.io"]}  # neighbours stay
        assert held[265] == {"actor.email": ["aa", "u265@x.io"]}
        assert store.read_raw(log_id, 255) is None
        assert store.read_raw(log_id, 265) == ("k8s.audit", b"raw265")
        assert set(store.read_raws(log_id, 245, 270)) == {245, 265}
        for key in (100, 101, 102):
            found = store.subject_seqs(log_id, [key])
            assert not {250, 255, 260} & set(found)
        assert 265 in store.subject_seqs(log_id, [101])

    def test_purging_twice_counts_once_and_keeps_the_first_record(self, store: Backend) -> None:
        log_id, _, _ = self._log(store)
        assert store.purge(Purge(log_id, [10, 11, 12], record_seq=500)) == 3
        assert store.purge(Purge(log_id, [11, 12, 13], record_seq=501)) == 1
        assert store.purge(Purge(log_id, [10, 11, 12, 13], record_seq=502)) == 0
        assert store.purge(Purge(log_id, [], record_seq=503)) == 0
        assert store.purged_ranges(log_id) == [PurgedRange(10, 13, 500),
                                               PurgedRange(13, 14, 501)]

    def test_a_seq_past_the_end_of_the_log_is_refused(self, store: Backend) -> None:
        log_id, entries, _ = self._log(store)
        with pytest.raises(StorageError, match="outside"):
            store.purge(Purge(log_id, [5, 600], record_seq=599))
        assert self._entries(store, log_id) == entries
        assert store.purged_ranges(log_id) == []

    def test_ranges_merge_clip_and_keep_their_record_seq(self, store: Backend) -> None:
        log_id, _, _ = self._log(store)
        store.purge(Purge(log_id, [*range(10), *range(20, 30)], record_seq=590))
        store.purge(Purge(log_id, list(range(10, 20)), record_seq=590))  # joins both
        store.purge(Purge(log_id, list(range(30, 40)), record_seq=591))  # touches, other record
        store.purge(Purge(log_id, [100, 102], record_seq=591))
        assert store.purged_ranges(log_id) == [
            PurgedRange(0, 30, 590), PurgedRange(30, 40, 591), PurgedRange(100, 101, 591),
            PurgedRange(102, 103, 591)]
        assert store.purged_ranges(log_id, 5, 35) == [PurgedRange(5, 30, 590),
                                                      PurgedRange(30, 35, 591)]
        assert store.purged_ranges(log_id, 101, 102) == []
        assert store.purged_ranges(log_id, 102) == [PurgedRange(102, 103, 591)]
        assert store.purged_ranges(log_id, 40, 100) == []
        assert store.purged_ranges(log_id + 7) == []

    def test_restore_splits_a_run_and_gives_the_bytes_back(self, store: Backend) -> None:
        log_id, entries, _ = self._log(store)
        store.purge(Purge(log_id, list(range(250, 270)), record_seq=599))
        back = {255: entries[255], 256: entries[256], 269: entries[269], 300: b"not purged"}
        assert store.restore(log_id, back) == 3
        assert store.purged_ranges(log_id) == [PurgedRange(250, 255, 599),
                                               PurgedRange(257, 269, 599)]
        got = self._entries(store, log_id)
        assert got[255] == entries[255] and got[256] == entries[256]
        assert got[269] == entries[269] and got[300] == entries[300]
        assert got[254] == b"" and got[257] == b""
        assert store.restore(log_id, {255: b"again"}) == 0
        assert self._entries(store, log_id)[255] == entries[255]
        # a restored seq can be purged again
        assert store.purge(Purge(log_id, [255], record_seq=598)) == 1

    def test_a_large_purge_is_one_call(self, store: Backend) -> None:
        log_id, _, _ = self._log(store)
        assert store.purge(Purge(log_id, list(range(0, 600, 2)), record_seq=599)) == 300
        assert len(store.purged_ranges(log_id)) == 300
        got = self._entries(store, log_id)
        assert all((e == b"") == (s % 2 == 0) for s, e in enumerate(got))


class TestRetentionAndHolds:
    def test_retention_records_are_upserted_per_tenant(self, store: Backend) -> None:
        assert store.get_retention("acme") is None and store.list_retention() == []
        store.put_retention(RetentionRecord("acme", '{"auth":"400d"}', "2026-01-01T00:00:00Z",
                                            "alice"))
        store.put_retention(RetentionRecord("beta", "{}", "2026-01-02T00:00:00Z", "bob"))
        new = RetentionRecord("acme", '{"auth":"90d"}', "2026-01-03T00:00:00Z", "carol")
        store.put_retention(new)
        assert store.get_retention("acme") == new
        assert [r.tenant for r in store.list_retention()] == ["acme", "beta"]

    def _hold(self, hold_id: str, tenant: str = "acme", created: str = "2026-01-01T00:00:00Z",
              **kw: object) -> HoldRecord:
        return HoldRecord(hold_id, tenant, 'actor.id = "u1"', "case 42", "alice", created,
                          **kw)  # type: ignore[arg-type]

    def test_holds_read_back_whole_and_are_replaced_by_tenant_and_id(
            self, store: Backend) -> None:
        h = self._hold("h1", since="2025-01-01T00:00:00Z", until="2026-01-01T00:00:00Z",
                       record_seq=12)
        store.put_hold(h)
        assert store.get_hold("acme", "h1") == h
        assert store.get_hold("beta", "h1") is None
        released = dataclasses.replace(h, released="2026-02-01T00:00:00Z", released_by="bob",
                                       release_seq=40)
        store.put_hold(released)
        assert store.get_hold("acme", "h1") == released
        assert store.holds() == [released]

    def test_holds_list_oldest_first_per_tenant_and_filter_active(
            self, store: Backend) -> None:
        store.put_hold(self._hold("h2", created="2026-01-02T00:00:00Z"))
        store.put_hold(self._hold("h1", created="2026-01-01T00:00:00Z",
                                  released="2026-01-05T00:00:00Z", released_by="bob"))
        store.put_hold(self._hold("h3", tenant="beta", created="2026-01-03T00:00:00Z"))
        assert [h.id for h in store.holds()] == ["h1", "h2", "h3"]
        assert [h.id for h in store.holds("acme")] == ["h1", "h2"]
        assert [h.id for h in store.holds("acme", active=True)] == ["h2"]
        assert [h.id for h in store.holds("acme", active=False)] == ["h1"]
        assert [h.id for h in store.holds(active=True)] == ["h2", "h3"]
        assert store.holds("gamma") == []


class TestWitnessRows:
    def test_cosignatures_are_upserted_and_listed_by_size_then_witness(
            self, store: Backend) -> None:
        a = Cosignature(1, 10, b"r" * 32, "w2", "— w2 AAAA\n", "t1")
        b = Cosignature(1, 10, b"r" * 32, "w1", "— w1 BBBB\n", "t1")
        c = Cosignature(1, 5, b"q" * 32, "w2", "— w2 CCCC\n", "t0")
        for x in (a, b, c, Cosignature(2, 10, b"s" * 32, "w1", "— w1 DDDD\n", "t1")):
            store.put_cosignature(x)
        assert store.cosignatures(1) == [c, b, a]
        assert store.cosignatures(1, 10) == [b, a]
        assert store.cosignatures(1, 7) == []
        newer = Cosignature(1, 10, b"r" * 32, "w1", "— w1 EEEE\n", "t2")
        store.put_cosignature(newer)
        assert store.cosignatures(1, 10) == [newer, a]

    def test_witness_head_is_compare_and_set(self, store: Backend) -> None:
        assert store.witness_head("o/acme") is None
        assert not store.set_witness_head("o/acme", 5, 10, b"a" * 32)  # there is none
        assert store.set_witness_head("o/acme", 0, 10, b"a" * 32)
        assert not store.set_witness_head("o/acme", 0, 11, b"b" * 32)  # stale old size
        assert store.witness_head("o/acme") == (10, b"a" * 32)
        assert store.set_witness_head("o/acme", 10, 12, b"c" * 32)
        assert store.witness_head("o/acme") == (12, b"c" * 32)
        assert store.witness_head("o/beta") is None

    def test_of_two_racing_updates_exactly_one_wins(self, store: Backend) -> None:
        store.set_witness_head("o/acme", 0, 10, b"a" * 32)
        for round_ in range(5):
            size = store.witness_head("o/acme")[0]  # type: ignore[index]
            barrier = threading.Barrier(2)

            def race(i: int, size: int = size, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return store.set_witness_head("o/acme", size, size + 1 + i,
                                              bytes([i]) * 32)

            with ThreadPoolExecutor(2) as pool:
                won = list(pool.map(race, (0, 1)))
            assert won.count(True) == 1, round_
            head = store.witness_head("o/acme")
            assert head == (size + 1 + won.index(True), bytes([won.index(True)]) * 32)


class TestArchiveRows:
    def test_archive_rows_are_upserted_by_first_seq_and_listed_in_order(
            self, store: Backend) -> None:
        a = ArchiveRecord(1, 256, 512, "s3://b/a2.parquet", "s3://b/a2.json", "ab" * 32,
                          600, "t1")
        b = ArchiveRecord(1, 0, 256, "file:///x/a1.parquet", "file:///x/a1.json", "cd" * 32,
                          600, "t0")
        store.put_archive(a)
        store.put_archive(b)
        store.put_archive(ArchiveRecord(2, 0, 10, "u", "m", "ef" * 32, 10, "t0"))
        assert store.archives(1) == [b, a]
        moved = dataclasses.replace(a, url="s3://c/a2.parquet", sha256="01" * 32)
        store.put_archive(moved)
        assert store.archives(1) == [b, moved]
        assert store.archives(3) == []


class TestSQLitePurge:
    def test_purged_bytes_do_not_stay_in_the_file_or_its_wal(self, tmp_path: Path) -> None:
        store = SQLiteBackend(tmp_path / "t.db")
        try:
            log_id, _, _ = TestPurge()._log(store)
            conn = sqlite3.connect(tmp_path / "t.db")
            (old,) = conn.execute("SELECT entries FROM bundles WHERE first_seq = 256").fetchone()
            conn.close()
            probe = bytes(old)[len(old) // 2 : len(old) // 2 + 48]
            files = lambda: b"".join(p.read_bytes() for p in tmp_path.iterdir())  # noqa: E731
            assert probe in files()
            store.purge(Purge(log_id, list(range(256, 512)), record_seq=599))
            assert probe not in files()
        finally:
            store.close()
