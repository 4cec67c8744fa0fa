"""Per-action schemas: versioned registration, reject or flag by tenant configuration,
on `/v1/events` and on sources alike; `auditkeep schemas put|get`."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, start_server
from tests.server.helpers import event, size_of

REFUND = {"type": "object", "required": ["metadata"], "properties": {
    "metadata": {"type": "object", "required": ["amount"], "properties": {
        "amount": {"type": "integer", "minimum": 0}}}}}


def refund(i: int, **meta: object) -> dict[str, object]:
    return event(i, id=f"r-{i}", action="orders.refund", metadata=meta)


def test_reject_is_the_default_and_names_version_and_pointer(server: ServerProcess) -> None:
    with server.client() as c:
        assert c.get("/v1/schemas/orders.refund").status_code == 404
        r = c.put("/v1/schemas/orders.refund", content=orjson.dumps(REFUND))
        assert r.status_code == 201 and r.json()["version"] == 1
        r = c.put("/v1/schemas/orders.refund", content=orjson.dumps(
            {**REFUND, "description": "v2"}))
        assert r.json()["version"] == 2
        assert c.get("/v1/schemas/orders.refund", params={"version": 1}).json()["schema"] == REFUND
        assert c.put("/v1/schemas/orders.refund",
                     content=b'{"type": "no-such-type"}').status_code == 400
        assert c.put("/v1/schemas/not an action", content=b"{}").status_code == 400
        ok = c.post("/v1/events", json=[refund(1, amount=5), event(2)])
        assert ok.status_code == 201
        bad = c.post("/v1/events", json=[refund(3, amount=5), refund(4, amount=-1)])
        assert bad.status_code == 400
        (problem,) = bad.json()["errors"]
        assert problem["pointer"] == "/1/metadata/amount" and problem["index"] == 1
        assert "schema v2 of orders.refund" in problem["detail"]
        assert size_of(c) == 2  # the whole bad request was refused


def test_flag_mode_stores_and_marks(data_dir: DataDir, tmp_path: Path) -> None:
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text("schema_violations: flag\n")
    srv = start_server(data_dir, "--config", str(cfg))
    try:
        with srv.client() as c:
            c.put("/v1/schemas/orders.refund", content=orjson.dumps(REFUND))
            r = c.post("/v1/events", json=[refund(1, amount="lots")])
            assert r.status_code == 201
            meta = c.get("/v1/events/r-1").json()["record"]["metadata"]
            assert meta["schema_violation"]["version"] == 1
            assert meta["schema_violation"]["pointer"] == "/metadata/amount"
            assert meta["amount"] == "lots"
            status = c.get("/v1/status").json()["pipeline"]
            assert status["schema_violations"] == {"default": 1}
            metrics = c.get("/metrics").text
            assert 'auditkeep_schema_violation_events_total{tenant="default"} 1.0' in metrics
    finally:
        srv.stop()


def test_sources_are_checked_too(server: ServerProcess) -> None:
    items = orjson.loads((Path(__file__).parent.parent / "data" / "k8s"
                          / "eventlist_v1_from_falco.json").read_bytes())["items"]
    with server.client() as c:
        action = c.post("/v1/sources/k8s", content=orjson.dumps(
            {"kind": "EventList", "items": items[:1]})).json()["receipts"][0]["id"]
        rec = c.get(f"/v1/events/{action}").json()["record"]
        never = {"type": "object", "properties": {"metadata": {"not": {}}}}
        c.put(f"/v1/schemas/{rec['action']}", content=orjson.dumps(never))
        r = c.post("/v1/sources/k8s", content=orjson.dumps(
            {"kind": "EventList", "items": [dict(items[0], auditID="other-id")]}))
        assert r.status_code == 400 and "schema v1 of" in r.json()["errors"][0]["detail"]


def test_cli_put_and_get(server: ServerProcess, tmp_path: Path) -> None:
    f = tmp_path / "refund.json"
    f.write_bytes(orjson.dumps(REFUND))
    base = ["--url", server.url, "--token", server.admin_token]
    res = CliRunner().invoke(cli, ["schemas", "put", *base, "orders.refund", str(f)])
    assert res.exit_code == 0 and "schema version 1" in res.output
    res = CliRunner().invoke(cli, ["schemas", "get", *base, "orders.refund"])
    assert res.exit_code == 0 and orjson.loads(res.stdout) == REFUND
    f.write_text("{nope")
    res = CliRunner().invoke(cli, ["schemas", "put", *base, "orders.refund", str(f)])
    assert res.exit_code == 2 and "not JSON" in res.output
