"""The seed's SLIs on /metrics (health/slis.py): ingest outcomes, delivery latency
(committed, searchable), clock skew, query latency; good_total for the SLOs; bounded
tenant labels."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auditkeep.datadir import DataDir, Node
from auditkeep.health.slis import OTHER, Slis
from auditkeep.pipeline.prepare import format_time
from auditkeep.server.app import create_app
from auditkeep.server.batches import BatchFacts
from tests.conftest import start_server
from tests.server.test_sources_k8s import EVENT_LIST

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

EVENT = {"action": "orders.delete", "actor": {"id": "alice", "type": "user"},
         "outcome": "success", "resource": {"type": "order", "id": "42"}}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def named(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples(text).items() if n == name}


def client(node: Node) -> TestClient:
    assert node.data is not None
    token = node.data.admin_token.read_text().strip()
    return TestClient(create_app(node), headers={"Authorization": f"Bearer {token}"})


def wait_searchable(slis: Slis, events: int, within: float = 60.0) -> tuple[int, int]:
    deadline = time.monotonic() + 10
    while True:
        good, total = slis.good_total("searchable", within)
        if total >= events or time.monotonic() > deadline:
            return good, total
        time.sleep(0.05)


class TestMetrics:
    def test_traffic_shows_on_metrics_and_moves_good_total(self, node: Node) -> None:
        slis: Slis = node.options["slis"]
        assert slis.good_total("ingest_success") == (0, 0)
        with client(node) as c:
            for i in range(3):
                r = c.post("/v1/events", json={**EVENT, "id": f"e{i}"})
                assert r.status_code == 201, r.text
            assert c.post("/v1/events", json={"action": 5}).status_code == 400
            assert c.get("/v1/events", params={"action": "orders.delete"}).status_code == 200
            assert c.get("/v1/search", params={"query": "action:orders.delete"}).status_code == 200
            assert c.get("/v1/aggregate", params={"group_by": "action"}).status_code == 200
            good, total = slis.good_total("ingest_success")
            assert (good, total) == (4, 4)  # a 400 is the client's, not a failure
            assert wait_searchable(slis, 3) == (3, 3)
            text = c.get("/metrics").text
        requests = named(text, "auditkeep_ingest_requests_total")
        assert requests[(("code", "2xx"), ("source", "api"))] == 3
        assert requests[(("code", "4xx"), ("source", "api"))] == 1
        lat = named(text, "auditkeep_delivery_latency_seconds_count")
        assert lat[(("source", "api"), ("stage", "committed"), ("tenant", "default"))] == 3
        assert lat[(("source", "api"), ("stage", "searchable"), ("tenant", "default"))] == 3
        queries = named(text, "auditkeep_query_latency_seconds_count")
        assert queries[(("kind", "search"),)] == 2
        assert queries[(("kind", "aggregate"),)] == 1
        assert named(text, "auditkeep_ingested_events_total")[(("tenant", "default"),)] == 3
        assert "auditkeep_clock_skew_seconds_bucket" in text
        good, total = slis.good_total("query", 10.0)
        assert total == 3 and good <= total

    def test_a_producer_two_hours_ahead_is_accepted_and_shown_in_the_skew(
            self, node: Node) -> None:
        ahead = format_time(datetime.now(UTC) + timedelta(hours=2))
        with client(node) as c:
            r = c.post("/v1/events", json={**EVENT, "id": "future", "time": ahead})
            assert r.status_code == 201, r.text
            assert c.get("/v1/events/future").json()["record"]["time"] == ahead  # kept
            skew = named(c.get("/metrics").text, "auditkeep_clock_skew_seconds_bucket")
        # received - time is about -7200 s: above the -3600 s bound's bucket? no: below it
        assert skew[(("le", "-3600.0"), ("source", "api"))] == 1
        assert skew[(("le", "-600.0"), ("source", "api"))] == 1
        # the committed latency is measured from `received`, so it stays small
        slis: Slis = node.options["slis"]
        good, total = slis.good_total("committed", 60.0)
        assert (good, total) == (1, 1)
        summary = slis.skew_summary()["api"]
        assert summary["samples"] == 1 and summary["max"] < -7000


def facts(received: float) -> BatchFacts:
    return BatchFacts(received=received, skew=0.0, unknown=0)


class TestBoundedLabels:
    def test_fifty_tenants_fold_to_the_top_twenty_and_other(self) -> None:
        slis = Slis()
        now = time.time()
        for i in range(50):
            slis.committed(f"tenant-{i:02d}", "api", 100 - i, 100 - i, 100 - i, facts(now))
        reg = CollectorRegistry()
        reg.register(slis)
        text = generate_latest(reg).decode()
        events = named(text, "auditkeep_ingested_events_total")
        tenants = {dict(labels)["tenant"] for labels in events}
        assert tenants == {f"tenant-{i:02d}" for i in range(20)} | {OTHER}
        assert events[(("tenant", OTHER),)] == sum(100 - i for i in range(20, 50))
        lat = named(text, "auditkeep_delivery_latency_seconds_count")
        assert len(lat) == 21
        assert sum(lat.values()) == sum(100 - i for i in range(50))
        # good_total counts every tenant, folded or not
        assert slis.good_total("committed", 60.0)[1] == sum(100 - i for i in range(50))


class TestRealServer:
    def test_events_prepared_by_ingest_workers_are_counted(self, data_dir: DataDir) -> None:
        """An ingest worker sends pendings back without their fields: the SLIs come from
        the batch's facts, read in the worker (a KeyError here once answered 500)."""
        s = start_server(data_dir, "--ingest-workers", "1")
        try:
            ahead = format_time(datetime.now(UTC) + timedelta(hours=2))
            with s.client() as c:
                batch = [{**EVENT, "id": f"w{i}"} for i in range(4)]
                batch[0]["time"] = ahead
                batch[1]["actor"] = {"id": "anonymous", "type": "anonymous"}
                r = c.post("/v1/events", json=batch)
                assert r.status_code == 201, r.text
                r = c.post("/v1/sources/k8s", content=EVENT_LIST,
                           headers={"Content-Type": "application/json"})
                assert r.status_code == 201, r.text
                assert c.post("/v1/sources/k8s", content=b"{").status_code == 400
                assert c.get("/v1/events/w1").status_code == 200  # an _access record
                text = c.get("/metrics").text
        finally:
            s.stop()
        assert named(text, "auditkeep_ingested_events_total")[(("tenant", "default"),)] == 8
        assert named(text, "auditkeep_unknown_actor_events_total")[
            (("tenant", "default"),)] == 1
        lat = named(text, "auditkeep_delivery_latency_seconds_count")
        assert lat[(("source", "api"), ("stage", "committed"), ("tenant", "default"))] == 4
        skew = named(text, "auditkeep_clock_skew_seconds_bucket")
        assert skew[(("le", "-3600.0"), ("source", "api"))] == 1  # the first event's
        requests = named(text, "auditkeep_ingest_requests_total")
        assert requests[(("code", "2xx"), ("source", "api"))] == 1
        # the sources' routes count under their own name, refusals included
        assert requests[(("code", "2xx"), ("source", "k8s"))] == 1
        assert requests[(("code", "4xx"), ("source", "k8s"))] == 1
        assert lat[(("source", "k8s"), ("stage", "committed"), ("tenant", "default"))] == 4
        assert named(text, "auditkeep_access_records_total")[(("action", "event"),)] == 1
        stored = named(text, "auditkeep_storage_bytes")[(("tenant", "default"),)]
        assert stored > len(EVENT_LIST)  # the raw originals are stored too
