"""Retention on a real SQLite data directory: the plan says what a run purges, the run
purges exactly that behind its own record, every proof and `verify` still pass, search
and aggregates forget the purged events, and holds, the archive and the records of the
record keep what they must."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest

from auditkeep.datadir import Node
from auditkeep.errors import PurgedError
from auditkeep.log import merkle
from auditkeep.log.service import access_log_name
from auditkeep.log.verify import verify_log
from auditkeep.pipeline import prepare as prepare_module
from auditkeep.pipeline.config_keeping import RetentionConfig
from auditkeep.pipeline.prepare import format_time, prepare
from auditkeep.pipeline.schema import Event
from auditkeep.privacy.erasure import ERASURE_ACTION, ERASURE_SUBMITTER
from auditkeep.query.aggregate import aggregator
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.indexer import Indexer
from auditkeep.query.lang import parse
from auditkeep.retention.holds import (
    HOLD_CREATE_ACTION,
    HOLD_RELEASE_ACTION,
    HOLD_SUBMITTER,
    create_hold,
    release_hold,
)
from auditkeep.retention.job import RetentionJob
from auditkeep.retention.plan import KEPT_RECORDS, LogPlan
from auditkeep.retention.policy import Keep, Layer
from auditkeep.retention.purge import PURGE_ACTION, PURGE_SUBMITTER, Retention
from auditkeep.storage.base import ArchiveRecord

TENANT = "acme"
LATER = datetime.now(UTC) + timedelta(days=100)  # data_access (90d) is due, auth (400d) not
CONFIG = RetentionConfig(defaults=Layer(categories={"auth": Keep(400),
                                                    "data_access": Keep(90)}))


def ingest(n: Node, events: list[dict[str, Any]], log: str = TENANT,
           raws: list[Any] | None = None) -> list[int]:
    pendings = prepare(msgspec.convert(events, list[Event]), tenant=TENANT, submitter="test",
                       may_set_tenant=True, raws=raws)
    return [r.seq for r in n.logs.append(log, pendings).result().receipts]


def ev(i: int, category: str, actor: str = "alice", **more: Any) -> dict[str, Any]:
    return {"action": f"orders.{category}", "outcome": "success", "category": category,
            "actor": {"id": actor, "type": "user", "email": f"{actor}@example.org"},
            "resource": {"type": "order", "id": str(i)}, "metadata": {"region": "eu"},
            **more}


def fill(n: Node) -> None:
    """30 events, the three categories interleaved; the data_access ones with raws."""
    for i in range(10):
        ingest(n, [ev(i, "auth")])
        ingest(n, [ev(i, "data_access", actor="bob" if i % 2 else "alice")],
               raws=[("json", orjson.dumps({"n": i, "who": "bob"}))])
        ingest(n, [ev(i, "data_change")])
    caught_up(n)


def caught_up(n: Node) -> None:
    assert n.indexer is not None and n.indexer.wait_caught_up(15)


def of(plans: list[LogPlan], log: str = TENANT) -> LogPlan:
    return next(p for p in plans if p.log == log)


def count(n: Node, query: str = "") -> int:
    assert isinstance(n.index, SearchIndex)
    info = n.logs.info(TENANT)
    return aggregator(n.index, info.id, parse(query), Window()).total()


def found(n: Node, query: str) -> list[int]:
    assert n.index is not None
    info = n.logs.info(TENANT)
    return [s for _, s in n.index.search(info.id, parse(query), Window(), limit=1000)]


def proofs_hold(n: Node, log: str) -> None:
    size = n.logs.size(log)
    root = n.logs.root(log, size)
    for seq in range(size):
        s, leaf, proof = n.logs.inclusion_proof(log, seq, size)
        merkle.verify_inclusion(leaf, seq, s, proof, root)
        with contextlib.suppress(PurgedError):
            assert leaf == merkle.leaf_hash(n.logs.entry(log, seq))
    for first in range(1, size):
        merkle.verify_consistency(first, size, n.logs.consistency_proof(log, first, size),
                                  n.logs.root(log, first), root)


def verified(n: Node, log: str) -> Any:
    info = n.store.get_log(log)
    assert info is not None
    verifiers = [k.verifier(info.origin) for k in n.keys.published()]
    journal = n.logs.journal_path(log)
    notes = ([x.decode() for x in journal.read_bytes().split(b"\x00\n") if x.strip()]
             if journal is not None and journal.exists() else [])
    report = verify_log(n.store, info, verifiers, notes)
    assert report.ok, report.findings
    return report


class TestPlanAndRun:
    def test_the_run_purges_what_the_plan_said_behind_its_record(self, node: Node) -> None:
        fill(node)
        r = Retention(node.logs, node.index, CONFIG)
        plan = of(r.plan([TENANT], now=LATER))
        due = plan.categories["data_access"]
        assert plan.events == due.events == 10
        assert due.raw_bytes > 0 and due.personal_values == 10  # one email each
        assert due.entry_bytes > 0
        assert due.ranges == [(s, s + 1) for s in range(1, 30, 3)] and due.range_count == 10
        assert set(plan.categories) == {"data_access"}  # auth is not due, data_change never

        report = r.run([TENANT], actor="tok_admin", now=LATER)
        (purge,) = report.purges
        assert purge.events == 10 and purge.categories == {"data_access": 10}
        assert (purge.entry_bytes, purge.raw_bytes, purge.personal_values) == (
            due.entry_bytes, due.raw_bytes, due.personal_values)
        assert (purge.first_seq, purge.last_seq) == (1, 28)

        (record,) = node.logs.records(TENANT, [purge.record_seq], personal=False)
        assert record["action"] == PURGE_ACTION and record["category"] == "admin"
        assert record["id"] == purge.record_id and record["actor"]["id"] == "tok_admin"
        meta = record["metadata"]
        assert meta["events"] == 10 and meta["categories"] == {"data_access": 10}
        assert (meta["first_seq"], meta["last_seq"]) == (1, 28)
        assert meta["policy"]["categories"]["data_access"] == 90

        info = node.logs.info(TENANT)
        for seq in range(1, 30, 3):
            with pytest.raises(PurgedError):
                node.logs.entry(TENANT, seq)
            assert node.store.read_raw(info.id, seq) is None
        assert node.store.read_personal(info.id, list(range(1, 30, 3))) == {}
        assert of(r.plan([TENANT], now=LATER)).events == 0
        assert r.run([TENANT], now=LATER).purges == []  # nothing left: no second record

    def test_every_proof_and_verify_still_pass_and_report_the_purged_ranges(
            self, node: Node) -> None:
        fill(node)
        r = Retention(node.logs, node.index, CONFIG)
        (purge,) = r.run(now=LATER).purges
        caught_up(node)
        proofs_hold(node, TENANT)
        report = verified(node, TENANT)
        assert report.purged == 10
        assert {x.record_seq for x in report.purged_ranges} == {purge.record_seq}
        assert sum(x.end - x.first for x in report.purged_ranges) == 10

    def test_search_and_aggregates_no_longer_see_purged_events(self, node: Node) -> None:
        fill(node)
        assert count(node, "category:data_access") == 10
        assert len(found(node, "bob")) == 5  # free text
        assert len(found(node, "metadata.region:eu")) == 30  # an attrs field
        assert len(found(node, "raw.who:bob")) == 10
        Retention(node.logs, node.index, CONFIG).run(now=LATER)
        caught_up(node)
        assert found(node, "category:data_access") == []
        assert found(node, "bob") == [] and found(node, "raw.who:bob") == []
        assert len(found(node, "metadata.region:eu")) == 20
        assert count(node, "category:data_access") == 0  # the rollups, not a scan
        assert count(node) == 21  # 20 kept and the purge record
        assert isinstance(node.index, SearchIndex)
        info = node.logs.info(TENANT)
        groups = {tuple(k): v for k, v in aggregator(
            node.index, info.id, parse(""), Window()).groups(["category"], 10)}
        assert groups == {("auth",): 10, ("data_change",): 10, ("admin",): 1}
        by_value = aggregator(node.index, info.id, parse(""), Window()).groups(
            ["metadata.region"], 10)
        assert by_value == [(["eu"], 20)]

    def test_a_rebuilt_index_skips_purged_entries(self, node: Node, tmp_path: Any) -> None:
        fill(node)
        Retention(node.logs, node.index, CONFIG).run(now=LATER)
        fresh = SearchIndex(tmp_path / "again.db")
        try:
            indexer = Indexer(node.store, fresh)
            while indexer.run_once():
                pass
            info = node.logs.info(TENANT)
            assert fresh.cursor(info.id) == node.logs.size(TENANT)
            assert fresh.search(info.id, parse("category:data_access"), Window(),
                                limit=100) == []
            assert aggregator(fresh, info.id, parse(""), Window()).total() == 21
        finally:
            fresh.close()

    def test_the_access_log_follows_the_tenants_data_access_period(self, node: Node) -> None:
        access = access_log_name(TENANT)
        ingest(node, [ev(i, "data_access") for i in range(4)], log=access)
        caught_up(node)
        r = Retention(node.logs, node.index, CONFIG)
        assert of(r.plan([TENANT], now=LATER), access).events == 4
        (purge,) = r.run([TENANT], now=LATER).purges
        assert purge.log == access and purge.tenant == TENANT
        (record,) = node.logs.records(access, [purge.record_seq], personal=False)
        assert record["action"] == PURGE_ACTION
        proofs_hold(node, access)
        verified(node, access)


class TestWhatStays:
    def test_a_hold_blocks_the_purge_until_released(self, node: Node) -> None:
        fill(node)
        hold = create_hold(node.logs, TENANT, "actor.id:bob", "case 42", created_by="legal")
        caught_up(node)
        r = Retention(node.logs, node.index, CONFIG)
        plan = of(r.plan([TENANT], now=LATER))
        assert plan.categories["data_access"].held == 5
        assert plan.events == 5
        (purge,) = r.run([TENANT], now=LATER).purges
        assert purge.events == 5
        bobs = [s for s in range(1, 30, 3) if (s // 3) % 2]
        assert all(orjson.loads(node.logs.entry(TENANT, s))["actor"]["id"] == "bob"
                   for s in bobs)
        release_hold(node.logs, TENANT, hold.id, released_by="legal", reason="closed")
        caught_up(node)
        assert of(r.plan([TENANT], now=LATER)).events == 5
        (second,) = r.run([TENANT], now=LATER).purges
        assert second.events == 5 and second.record_id != purge.record_id
        verified(node, TENANT)

    def test_the_records_of_the_record_are_kept_forever(self, node: Node) -> None:
        fill(node)
        hold = create_hold(node.logs, TENANT, "actor.id:nobody", "x", created_by="legal")
        release_hold(node.logs, TENANT, hold.id, released_by="legal", reason="done")
        caught_up(node)
        everything = RetentionConfig(defaults=Layer(default=Keep(1)))
        r = Retention(node.logs, node.index, everything)
        (purge,) = r.run([TENANT], now=LATER).purges
        assert purge.events == 30
        caught_up(node)
        much_later = LATER + timedelta(days=400)
        assert r.run([TENANT], now=much_later).purges == []
        kept = [orjson.loads(node.logs.entry(TENANT, s))["action"]
                for s in range(30, node.logs.size(TENANT))]
        assert kept == ["auditkeep.hold.create", "auditkeep.hold.release", PURGE_ACTION]

    def test_a_producer_cannot_make_its_events_immortal(self, node: Node) -> None:
        fake = {"action": PURGE_ACTION, "outcome": "success", "category": "admin",
                "actor": {"id": "mallory", "type": "user"}}
        (seq,) = ingest(node, [fake])
        caught_up(node)
        r = Retention(node.logs, node.index, RetentionConfig(defaults=Layer(default=Keep(1))))
        (purge,) = r.run([TENANT], now=LATER).purges
        assert (purge.first_seq, purge.events) == (seq, 1)

    def test_the_kept_records_are_named_as_their_writers_append_them(self) -> None:
        assert KEPT_RECORDS == {PURGE_ACTION: PURGE_SUBMITTER,
                                HOLD_CREATE_ACTION: HOLD_SUBMITTER,
                                HOLD_RELEASE_ACTION: HOLD_SUBMITTER,
                                ERASURE_ACTION: ERASURE_SUBMITTER}

    def test_with_an_archive_only_archived_ranges_go(self, node: Node) -> None:
        fill(node)
        info = node.logs.info(TENANT)
        r = Retention(node.logs, node.index, CONFIG, archive=True)
        plan = of(r.plan([TENANT], now=LATER))
        assert plan.events == 0 and plan.categories["data_access"].waiting_archive == 10
        node.store.put_archive(ArchiveRecord(info.id, 0, 16, "file:///a", "file:///a.json",
                                             "0" * 64, 30, "2026-01-01T00:00:00Z"))
        plan = of(r.plan([TENANT], now=LATER))
        assert plan.events == 5 and plan.categories["data_access"].waiting_archive == 5
        assert plan.categories["data_access"].ranges[-1] == (13, 14)  # 16 is not archived
        assert r.run([TENANT], now=LATER).events == 5
        r.set_policy(TENANT, Layer(require_archive=False), by="admin")
        assert r.run([TENANT], now=LATER).events == 5

    def test_nothing_is_purged_before_its_day(self, node: Node) -> None:
        fill(node)
        r = Retention(node.logs, node.index, CONFIG)
        assert r.run(now=datetime.now(UTC) + timedelta(days=89)).purges == []
        assert r.run(now=datetime.now(UTC) + timedelta(days=380)).events == 10  # auth kept


class TestPolicies:
    def test_the_stored_policy_overrides_the_file_part_by_part(self, node: Node) -> None:
        config = RetentionConfig(
            defaults=Layer(default=Keep(3650), categories={"auth": Keep(400)}),
            tenants={TENANT: Layer(categories={"data_access": Keep(90)})})
        r = Retention(node.logs, node.index, config)
        p = r.policy(TENANT).to_json()
        assert p["default"] == {"days": 3650, "source": "config"}
        assert p["categories"]["auth"] == {"days": 400, "source": "config"}
        assert p["categories"]["data_access"] == {"days": 90, "source": "config.tenant"}
        assert p["categories"]["system"] == {"days": 3650, "source": "config"}
        r.set_policy(TENANT, Layer(categories={"auth": Keep(None)}, default=Keep(30)),
                     by="admin")
        p = r.policy(TENANT).to_json()
        assert p["categories"]["auth"] == {"days": None, "source": "api"}
        assert p["categories"]["data_access"] == {"days": 90, "source": "config.tenant"}
        assert p["default"] == {"days": 30, "source": "api"}
        assert r.policy("other").to_json()["categories"]["data_access"]["days"] == 3650
        assert p["require_archive"] == {"value": False, "source": "builtin"}


class TestJob:
    def test_the_node_runs_the_job_on_its_schedule(self, node: Node,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        long_ago = format_time(datetime.now(UTC) - timedelta(days=120))
        monkeypatch.setattr(prepare_module, "now_utc", lambda: long_ago)
        fill(node)
        monkeypatch.undo()
        job = RetentionJob(Retention(node.logs, node.index, CONFIG), 3600.0)
        node.options["retention"] = job
        node.start_background()  # the first pass runs at once, the next in an hour
        try:
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            while job.purged < 10:
                assert datetime.now(UTC) < deadline, job.last_error
                time.sleep(0.02)
        finally:
            node.stop_background()
        assert job.last is not None and job.last.purges[0].categories == {"data_access": 10}
        (record,) = node.logs.records(TENANT, [job.last.purges[0].record_seq], personal=False)
        assert record["actor"] == {"id": "auditkeep-retention", "type": "system"}
        assert RetentionJob(job.retention, None).interval is None  # off: start() runs nothing


class TestPostgres:
    def test_plan_run_proofs_search_and_verify_on_postgresql(
            self, tmp_path: Any, pg_url: str) -> None:
        from auditkeep.datadir import DataDir, open_node

        n = open_node(DataDir(tmp_path / "data", pg_url))
        n.start()
        try:
            fill(n)
            r = Retention(n.logs, n.index, CONFIG)
            assert of(r.plan([TENANT], now=LATER)).events == 10
            (purge,) = r.run([TENANT], now=LATER).purges
            assert purge.events == 10
            caught_up(n)
            assert n.index is not None
            info = n.logs.info(TENANT)
            assert n.index.search(info.id, parse("category:data_access"), Window(),
                                  limit=100) == []
            assert aggregator(n.index, info.id, parse(""), Window()).total() == 21
            proofs_hold(n, TENANT)
            assert verified(n, TENANT).purged == 10
        finally:
            n.close()
