"""Publish -> BusSequencers -> store -> reply, against a real JetStream server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from auditkeep.bus import BusAppender, BusSequencers, CommitPending
from auditkeep.bus.client import Bus
from auditkeep.errors import ConflictError
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.sequencer import AppendResult
from auditkeep.log.service import LogService
from auditkeep.storage.sqlite import SQLiteBackend
from tests.bus.conftest import eventually, log_service
from tests.log.test_sequencer import pendings


@pytest.fixture
def appender(bus: Bus, logs: LogService) -> Iterator[BusAppender]:
    a = BusAppender(bus, logs.store, origin=logs.origin, reply_wait=2.0, deadline=20.0)
    yield a
    a.close()


@pytest.fixture
def sequencers(bus: Bus, logs: LogService) -> Iterator[BusSequencers]:
    s = BusSequencers(bus, logs, "host:1", lease_ttl=2.0, scan_interval=0.1)
    s.start()
    yield s
    s.stop()


def stored_ids(store: SQLiteBackend, name: str) -> list[str]:
    info = store.get_log(name)
    assert info is not None
    return [orjson.loads(e)["id"] for b in store.read_bundles(info.id, 0, info.size)
            for e in b.entries]


def assert_matches_store(store: SQLiteBackend, logs: LogService, name: str,
                         result: AppendResult) -> None:
    info = store.get_log(name)
    assert info is not None
    leaves = store.read_nodes(info.id, [(0, r.seq) for r in result.receipts])
    assert [r.leaf_hash for r in result.receipts] == leaves
    ids = stored_ids(store, name)
    assert [ids[r.seq] for r in result.receipts] == [r.id for r in result.receipts]
    verifiers = [k.verifier(info.origin) for k in logs.keys.published()]
    cp, _ = open_checkpoint(result.checkpoint.encode(), verifiers, origin=info.origin)
    assert cp.size == result.size > max(r.seq for r in result.receipts)


class TestCommitted:
    def test_append_answers_with_the_receipts_the_store_holds(
            self, appender: BusAppender, sequencers: BusSequencers, store: SQLiteBackend,
            logs: LogService) -> None:
        sent = pendings(3)
        result = appender.append("acme", sent).result(30)
        assert [r.id for r in result.receipts] == [p.id for p in sent]
        assert [r.seq for r in result.receipts] == [0, 1, 2]
        assert not any(r.duplicate for r in result.receipts)
        assert_matches_store(store, logs, "acme", result)
        info = store.get_log("acme")
        assert info is not None and info.bus_seq == 1  # the stream's first message
        assert sequencers.leading() == ["acme"]

    def test_an_access_log_and_a_single_event(
            self, appender: BusAppender, sequencers: BusSequencers, store: SQLiteBackend,
            logs: LogService) -> None:
        result = appender.append("acme._access", pendings(1)).result(30)
        assert_matches_store(store, logs, "acme._access", result)

    def test_a_conflicting_id_is_refused_with_409(
            self, appender: BusAppender, sequencers: BusSequencers) -> None:
        appender.append("acme", pendings(1, ids=True)).result(30)
        with pytest.raises(ConflictError, match="different content"):
            appender.append("acme", pendings(1, ids=True, outcome="failure")).result(30)

    def test_a_request_over_the_max_payload_is_split_and_answered_whole(
            self, bus: Bus, appender: BusAppender, sequencers: BusSequencers,
            store: SQLiteBackend, logs: LogService) -> None:
        many = pendings(5000)
        assert len(b"".join(p.entry_head + p.entry_tail for p in many)) > bus.nc.max_payload
        result = appender.append("acme", many).result(60)
        assert [r.seq for r in result.receipts] == list(range(5000))
        assert_matches_store(store, logs, "acme", result)


class TestAccepted:
    def test_accept_answers_with_ids_once_on_the_bus_and_they_commit_later(
            self, bus: Bus, appender: BusAppender, logs: LogService,
            store: SQLiteBackend) -> None:
        sent = pendings(4)
        assert appender.accept("acme", sent).result(10) == [p.id for p in sent]
        info = store.get_log("acme")
        assert info is not None and info.size == 0  # no sequencer runs yet
        seqs = BusSequencers(bus, logs, "host:2", lease_ttl=2.0, scan_interval=0.1)
        seqs.start()
        try:
            eventually(lambda: stored_ids(store, "acme") == [p.id for p in sent])
        finally:
            seqs.stop()

    def test_a_republished_request_is_deduped_by_its_msg_id(
            self, bus: Bus, appender: BusAppender, logs: LogService,
            store: SQLiteBackend) -> None:
        sent = pendings(2)  # server-assigned ids: only Nats-Msg-Id catches the repeat
        appender.accept("acme", sent).result(10)
        appender.accept("acme", sent).result(10)
        state = bus.call(bus.js.stream_info(bus.settings.stream)).result(10).state
        assert state.messages == 1
        seqs = BusSequencers(bus, logs, "host:3", lease_ttl=2.0, scan_interval=0.1)
        seqs.start()
        try:
            # A committed-mode retry of the same request: its answer went to the first
            # publisher, so the receipts come from the store, marked duplicate.
            again = appender.append("acme", sent).result(30)
            assert [r.id for r in again.receipts] == [p.id for p in sent]
            assert all(r.duplicate for r in again.receipts)
            assert_matches_store(store, logs, "acme", again)
            assert stored_ids(store, "acme") == [p.id for p in sent]
        finally:
            seqs.stop()


def test_committed_messages_are_purged_from_the_stream(
        bus: Bus, appender: BusAppender, logs: LogService) -> None:
    seqs = BusSequencers(bus, logs, "host:6", lease_ttl=2.0, scan_interval=0.1,
                         purge_interval=0.2)
    seqs.start()
    try:
        for _ in range(3):
            appender.append("acme", pendings(2)).result(30)

        def messages() -> int:
            return int(bus.call(bus.js.stream_info(bus.settings.stream)).result(10)
                       .state.messages)
        eventually(lambda: messages() == 0, timeout=10)
    finally:
        seqs.stop()


def test_a_restart_resumes_at_bus_seq_plus_one(
        bus: Bus, appender: BusAppender, logs: LogService, store: SQLiteBackend,
        make_bus: Callable[[], Bus], keys: Path) -> None:
    first = BusSequencers(bus, logs, "host:4", lease_ttl=2.0, scan_interval=0.1,
                          purge_interval=3600)
    first.start()
    a, b = pendings(2), pendings(3)
    appender.append("acme", a).result(30)
    appender.append("acme", b).result(30)
    first.stop()
    info = store.get_log("acme")
    assert info is not None and (info.size, info.bus_seq) == (5, 2)
    c, d = pendings(1), pendings(2)
    appender.accept("acme", c).result(10)
    appender.accept("acme", d).result(10)
    # A fresh process: its own connection, store and services over the same database.
    logs2 = log_service(SQLiteBackend(store.path), keys)
    second = BusSequencers(make_bus(), logs2, "host:5", lease_ttl=2.0, scan_interval=0.1,
                           purge_interval=3600)
    second.start()
    try:
        want = [p.id for p in a + b + c + d]
        eventually(lambda: stored_ids(store, "acme") == want)
        info = store.get_log("acme")
        assert info is not None and (info.size, info.bus_seq) == (8, 4)
    finally:
        second.stop()
        logs2.close()
        logs2.store.close()


def test_accepting_an_id_again_with_other_content_is_a_conflict(
        appender: BusAppender) -> None:
    appender.accept("acme", pendings(1, ids=True)).result(10)
    assert appender.accept("acme", pendings(1, ids=True)).result(10) == ["e0"]
    with pytest.raises(ConflictError, match="already accepted"):
        appender.accept("acme", pendings(1, ids=True, outcome="failure")).result(10)


def test_no_leader_within_the_deadline_is_commit_pending_with_the_ids(
        bus: Bus, logs: LogService) -> None:
    appender = BusAppender(bus, logs.store, origin=logs.origin, reply_wait=0.3, deadline=1.0)
    sent = pendings(2)
    with pytest.raises(CommitPending, match="accepted on the ingest bus") as caught:
        appender.append("acme", sent).result(10)
    assert caught.value.ids == [p.id for p in sent] and caught.value.status == 202
    appender.close()
