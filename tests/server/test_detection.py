"""Detection in a real server: rules from a directory, alerts through the API, the alert
record in the log, rules managed over HTTP, and signed webhook delivery to a real
receiver that fails its first attempts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from auditkeep.datadir import DataDir
from auditkeep.detect.sinks import verify_signature
from tests.conftest import ServerProcess, start_server
from tests.receivers import Receiver

SECRET = "hook-secret"
RULES = """
rules:
  - id: deletes
    title: Order deleted
    level: high
    tags: [destruction]
    query: 'action:orders.delete'
    group_by: [actor.id]
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([503, 503], retry_after="0")
    yield r
    r.close()


@pytest.fixture
def detecting(tmp_path: Path, receiver: Receiver) -> Iterator[ServerProcess]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.yml").write_text(RULES)
    (rules / "alerting.yaml").write_text(f"""
sinks:
  hook: {{type: webhook, url: "{receiver.url}", secret: {SECRET}}}
routes:
  - match: {{levels: [high, critical]}}
    sinks: [hook]
retry: {{attempts: 5, backoff: 0.2s, max_backoff: 1s}}
group_window: 10m
""")
    s = start_server(DataDir(tmp_path / "data"), "--rules", str(rules))
    yield s
    s.stop()


def emit(c: httpx.Client, *events: dict[str, Any]) -> None:
    r = c.post("/v1/events", json=list(events))
    assert r.status_code in (200, 201), r.text


def ev(action: str, actor: str = "alice") -> dict[str, Any]:
    return {"action": action, "actor": {"id": actor, "type": "user"}, "outcome": "success"}


def wait_for(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_an_alert_is_stored_recorded_and_delivered_signed(detecting: ServerProcess,
                                                         receiver: Receiver) -> None:
    with detecting.client() as c:
        emit(c, ev("orders.read"), ev("orders.delete"))
        alerts = wait_for(lambda: c.get("/v1/alerts").json()["alerts"])
        (a,) = alerts
        assert a["rule"] == "deletes" and a["level"] == "high" and a["status"] == "open"
        full = wait_for(lambda: (x := c.get(f"/v1/alerts/{a['id']}").json())["logged_seq"]
                        is not None and x)
        assert full["events"][0]["seq"] == 1 and full["group"] == {"actor.id": "alice"}
        record = c.get(f"/v1/logs/default/entries/{full['logged_seq']}").json()
        assert record["action"] == "auditkeep.alert.fired" and record["category"] == "policy"
        assert record["metadata"]["events"][0]["id"] == full["events"][0]["id"]
        # delivered on the third attempt, signed
        wait_for(lambda: len(receiver.posts) >= 3)
        deliveries = wait_for(lambda: list(c.get(
            "/v1/deliveries", params={"status": "delivered"}).json()["deliveries"]))
        assert deliveries[0]["attempts"] == 3 and deliveries[0]["sink"] == "hook"
        headers, body = receiver.posts[-1]
        assert verify_signature(SECRET, headers["x-auditkeep-timestamp"], body,
                                headers["x-auditkeep-signature"])
        assert not verify_signature(SECRET, headers["x-auditkeep-timestamp"], body + b" ",
                                    headers["x-auditkeep-signature"])
        assert orjson.loads(body)["alert"]["id"] == a["id"]
        # a second delete by alice groups into the open alert: no new alert, no new post
        emit(c, ev("orders.delete"))
        wait_for(lambda: c.get(f"/v1/alerts/{a['id']}").json()["count"] == 2)
        assert len(c.get("/v1/alerts").json()["alerts"]) == 1
        # ack, then a new firing is a new alert
        acked = c.post(f"/v1/alerts/{a['id']}/ack", json={"note": "known cleanup"}).json()
        assert acked["status"] == "acked" and acked["acked_by"]
        assert c.get("/v1/alerts", params={"status": "open"}).json()["alerts"] == []
        emit(c, ev("orders.delete"))
        wait_for(lambda: c.get("/v1/alerts", params={"status": "open"}).json()["alerts"])
        wait_for(lambda: len(receiver.posts) >= 4)  # the new alert is delivered too
        m = c.get("/metrics").text
        assert "auditkeep_alert_latency_seconds_count" in m


def test_rules_are_managed_over_http_and_refusals_name_the_problem(detecting: ServerProcess
                                                                   ) -> None:
    with detecting.client() as c:
        listed = c.get("/v1/rules").json()
        assert [r["id"] for r in listed["rules"]] == ["deletes"] and listed["error"] is None
        bad = c.put("/v1/rules/more.yml", content="rules:\n  - {id: x, query: 'action:('}\n")
        assert bad.status_code == 400
        problem = bad.json()
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "more.yml" in problem["detail"]
        dup = c.put("/v1/rules/more.yml", content="rules:\n  - {id: deletes}\n")
        assert dup.status_code == 400 and "already used" in dup.json()["detail"]
        assert c.get("/v1/rules/more.yml").status_code == 404  # nothing was written
        ok = c.put("/v1/rules/more.yml",
                   content="rules:\n  - {id: logins, query: 'action:users.login'}\n")
        assert ok.status_code == 200, ok.text
        assert {r["id"] for r in c.get("/v1/rules").json()["rules"]} == {"deletes", "logins"}
        emit(c, ev("users.login", "bob"))
        wait_for(lambda: c.get("/v1/alerts", params={"rule": "logins"}).json()["alerts"])
        assert c.delete("/v1/rules/more.yml").status_code == 204
        assert c.put("/v1/rules/../x.yml", content="").status_code in (400, 404)
        assert c.get("/v1/alerts", params={"level": "urgent"}).status_code == 400


def test_a_restarted_server_neither_misses_nor_repeats(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.yml").write_text(RULES + """
  - id: many-exports
    kind: threshold
    query: 'action:orders.export'
    group_by: [actor.id]
    window: 1h
    count: ">= 10"
""")
    data = DataDir(tmp_path / "data")
    s = start_server(data, "--rules", str(rules))
    with s.client() as c:
        emit(c, *[ev("orders.export")] * 6, ev("orders.delete"))
        wait_for(lambda: c.get("/v1/alerts").json()["alerts"])
    s.kill()  # SIGKILL: no clean shutdown
    s = start_server(data, "--rules", str(rules))
    try:
        with s.client() as c:
            emit(c, *[ev("orders.export")] * 4)
            got = wait_for(lambda: (a := c.get("/v1/alerts").json()["alerts"]) and
                           len(a) == 2 and a)
            assert sorted(a["rule"] for a in got) == ["deletes", "many-exports"]
            time.sleep(1.0)
            assert len(c.get("/v1/alerts").json()["alerts"]) == 2
    finally:
        s.stop()


def test_a_plain_start_installs_and_runs_the_shipped_rules(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    s = start_server(data, "--detection")
    try:
        with s.client() as c:
            ids = {r["id"] for r in c.get("/v1/rules").json()["rules"]}
            assert {"iam-policy-change", "audit-pipeline-quiet"} <= ids
            assert (data.rules / "iam.yml").is_file()
            emit(c, {"action": "orders.delete", "actor": {"id": "cleanup", "type": "service"},
                     "outcome": "success", "resource": {"type": "order", "id": "1"}})
            got = wait_for(lambda: c.get("/v1/alerts").json()["alerts"])
            assert got[0]["rule"] == "service-account-deletes"
            assert c.get("/v1/status").json()["detection"]["rules_error"] is None
    finally:
        s.stop()
