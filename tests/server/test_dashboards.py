"""`GET /v1/dashboards/{name}` computes its panels from live data on a real server."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, start_server
from tests.server.helpers import wait_indexed
from tests.server.test_reads import token
from tests.server.test_sources_k8s import item_list, panther_items


def _now(minutes_ago: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace(
        "+00:00", "Z")


def _events() -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = []
    for i, actor in enumerate(["alice", "alice", "alice", "bob"]):
        evs.append({"action": "iam.role.grant", "actor": {"id": actor, "type": "user"},
                    "outcome": "success", "category": "admin", "severity": "critical",
                    "time": _now(i)})
    evs.append({"action": "orders.read", "actor": {"id": "anon", "type": "anonymous"},
                "outcome": "denied", "category": "data_access", "time": _now(5)})
    evs.append({"action": "orders.read", "actor": {"id": "carol", "type": "user"},
                "outcome": "failure", "time": _now(6),
                "source": {"service": "shop"}})
    return evs


def _fresh_k8s(n: int) -> list[dict[str, Any]]:
    items = []
    for item in panther_items()[:n]:
        item = copy.deepcopy(item)
        item["requestReceivedTimestamp"] = item["stageTimestamp"] = _now(1)
        items.append(item)
    return items


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(DataDir(tmp_path_factory.mktemp("dash") / "data"))
    try:
        with s.client() as c:
            assert c.post("/v1/events", json=_events()).status_code == 201
            r = c.post("/v1/sources/k8s", content=item_list(_fresh_k8s(2)))
            assert r.status_code in (200, 201), r.text
            assert c.post("/v1/events", content=b"{bad").status_code == 400  # one refusal
            wait_indexed(c)
        yield s
    finally:
        s.stop()


def panels(srv: ServerProcess, name: str, tok: str | None = None) -> dict[str, Any]:
    with srv.client(tok) as c:
        r = c.get(f"/v1/dashboards/{name}")
    assert r.status_code == 200, r.text
    return {p["id"]: p for p in r.json()["panels"]}


def test_executive_counts_critical_admin_events_by_actor(srv: ServerProcess) -> None:
    p = panels(srv, "executive")
    assert p["critical-admin"]["rows"] == [["alice", 3], ["bob", 1]]
    assert p["events-24h"]["value"] == 8
    assert p["failed-24h"]["value"] == 2
    assert p["storage"]["value"] > 100_000
    assert p["retention"]["value"] == "keep everything"
    assert 0 < p["ingest-success"]["value"] < 100  # the refused request counts for admins


def test_oncall_shows_unknown_actors_latency_and_refusals(srv: ServerProcess) -> None:
    p = panels(srv, "oncall")
    # the anonymous shop reader and both Kubernetes requests (system:anonymous)
    assert p["unknown-actor"]["value"] == pytest.approx(100 * 3 / 8)
    assert p["queue"]["value"] == 0
    assert p["rejects"]["rows"] == [["400", 1]]
    assert [row[0] for row in p["latency"]["rows"]] == ["p50", "p95", "max"]
    assert sum(c for _, c in p["ingest-rate"]["points"]) == 8


def test_debug_splits_by_source_and_lists_recent_raw_events(srv: ServerProcess) -> None:
    p = panels(srv, "debug")
    rows = dict(p["by-source"]["rows"])
    assert rows == {"k8s.audit": 2, "schema v1 (API, SDK)": 6}
    assert [r[1] for r in p["recent-raw"]["rows"]] == ["k8s.audit", "k8s.audit"]
    assert ["shop", 1] in p["by-service"]["rows"]


def test_a_bound_token_sees_its_tenant_only_and_no_node_wide_counters(
        srv: ServerProcess) -> None:
    p = panels(srv, "oncall", token(srv, "read", tenant="other"))
    assert "rejects" not in p
    assert p["unknown-actor"]["value"] is None
    assert sum(c for _, c in p["ingest-rate"]["points"]) == 0


def test_unknown_dashboard_is_a_404_problem(srv: ServerProcess) -> None:
    with srv.client() as c:
        r = c.get("/v1/dashboards/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def _ahead(hours: float) -> str:
    """An event time from a producer whose clock is `hours` ahead of the server's."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose only API producer runs 2 h ahead: three requests of two events."""
    s = start_server(DataDir(tmp_path_factory.mktemp("ops") / "data"))
    try:
        with s.client() as c:
            for i in range(3):
                evs = [{"action": "orders.read", "actor": {"id": "alice", "type": "user"},
                        "outcome": "success", "time": _ahead(2)} for _ in range(2)]
                assert c.post("/v1/events", json=evs).status_code == 201, i
            wait_indexed(c)
            assert c.get("/v1/search", params={"query": "alice"}).status_code == 200
        yield s
    finally:
        s.stop()


def _rows(panel: dict[str, Any]) -> dict[str, list[Any]]:
    return {row[0]: row[1:] for row in panel["rows"]}


class TestOperations:
    def test_the_slos_show_their_objective_sli_budget_burn_and_alerting(
            self, skewed: ServerProcess) -> None:
        p = panels(skewed, "operations")
        ingest, searchable = _rows(p["slo-ingest"]), _rows(p["slo-searchable"])
        assert ingest["objective (%)"] == [99.95]
        assert ingest["SLI since start (%)"] == [100.0]
        assert ingest["good / all"] == ["3 / 3"]  # the three requests, none answered 5xx
        assert searchable["good / all"][0].endswith("/ 6")  # every event became searchable
        assert ingest["alerting"] == ["no"] and p["slo-ingest"]["state"] == "ok"
        for w in ("5m", "30m", "1h", "6h", "3d"):
            assert f"burn rate {w}" in ingest
        assert "error budget left (%)" in searchable

    def test_ingest_delivery_and_query_figures_come_from_the_slis(
            self, skewed: ServerProcess) -> None:
        p = panels(skewed, "operations")
        assert p["ingest-success"]["value"] == 100.0
        delivery = _rows(p["delivery-latency"])
        assert delivery["committed"][0] == 6 and delivery["searchable"][0] == 6
        for _, p50, p99 in delivery.values():
            assert 0 <= p50 <= p99  # estimated from the buckets, not the producer's clock
        assert _rows(p["query-latency"])["search"][0] >= 1
        assert _rows(p["index-lag"])["default"] == [0]
        assert _rows(p["readiness"])["storage"][0] == "ok"
        assert p["readiness"]["state"] == "ok"
        assert "canary" not in p  # no canary configured

    def test_a_producer_two_hours_ahead_is_flagged_on_the_board_and_in_status(
            self, skewed: ServerProcess) -> None:
        p = panels(skewed, "operations")
        (source, flag, p50, low, high, samples), = p["clock-skew"]["rows"]
        assert (source, samples) == ("api", 3)
        assert p50 == pytest.approx(-7200, abs=60) and low <= p50 <= high
        assert flag == "clock ahead 2.0 h"
        assert p["clock-skew"]["state"] == "warning"
        with skewed.client() as c:
            skew = c.get("/v1/status").json()["clock_skew"]
        assert skew["api"]["samples"] == 3
        assert skew["api"]["p50"] == pytest.approx(-7200, abs=60)

    def test_producers_on_time_are_not_flagged(self, srv: ServerProcess) -> None:
        p = panels(srv, "operations")  # the API and Kubernetes events were a minute old
        assert {row[0]: row[1] for row in p["clock-skew"]["rows"]} == {
            "api": "ok", "k8s": "ok"}
        assert p["clock-skew"]["state"] == "ok"

    def test_the_self_audit_shows_its_last_pass(self, skewed: ServerProcess) -> None:
        deadline = time.monotonic() + 20
        while (value := panels(skewed, "operations")["self-audit"]["value"]) == "not run yet":
            assert time.monotonic() < deadline, "no self-audit pass finished"
            time.sleep(0.2)
        assert value == "passed"

    def test_a_tenant_token_gets_403_since_every_figure_is_node_wide(
            self, skewed: ServerProcess) -> None:
        with skewed.client(token(skewed, "read", "audit")) as c:
            r = c.get("/v1/dashboards/operations")
            assert c.get("/v1/dashboards/oncall").status_code == 200
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "admin" in r.json()["detail"]

    def test_a_scheduled_canary_shows_its_last_run(self, tmp_path: Path) -> None:
        cfg = tmp_path / "auditkeep.yaml"
        cfg.write_text("canary: {every: 1s, timeout: 20s}\n")
        s = start_server(DataDir(tmp_path / "data"), "--config", str(cfg))
        try:
            deadline = time.monotonic() + 60
            while (canary := panels(s, "operations")["canary"])["value"] == "not run yet":
                assert time.monotonic() < deadline, "no canary run finished"
                time.sleep(0.2)
        finally:
            s.stop()
        assert canary["value"] == "passed" and canary["state"] == "ok"
        assert "searchable" in canary["note"] and "failed 0" in canary["note"]
