"""`GET /v1/dashboards/{name}` computes its panels from live data on a real server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
