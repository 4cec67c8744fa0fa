"""`POST /v1/sources/k8s`: the kube-apiserver audit webhook, on real captured events."""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from auditkeep.datadir import DataDir
from auditkeep.sources.k8s import map_event
from tests.conftest import ServerProcess, start_server
from tests.server.helpers import size_of

DATA = Path(__file__).parent.parent / "data" / "k8s"
EVENT_LIST = (DATA / "eventlist_v1_from_falco.json").read_bytes()


def item_list(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                         "metadata": {}, "items": items})


def panther_items() -> list[dict[str, Any]]:
    """The panther samples that the default stages keep, one per auditID (the rule tests
    reuse some auditIDs for different events, which a real API server never does)."""
    out: dict[str, dict[str, Any]] = {}
    for line in (DATA / "panther_k8s_audit_events_part.jsonl").read_bytes().splitlines():
        obj = orjson.loads(line)
        if obj.get("auditID") and map_event(obj) is not None:
            out.setdefault(obj["auditID"], obj)
    return list(out.values())


class TestWebhook:
    def test_an_event_list_is_mapped_stored_and_its_raw_kept_byte_exactly(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/sources/k8s", content=EVENT_LIST,
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 201, r.text
            receipts = r.json()["receipts"]
            assert len(receipts) == 4 and r.json()["filtered"] == 0
            items = orjson.loads(EVENT_LIST)["items"]
            for rec, item in zip(receipts, items, strict=True):
                assert rec["id"] == f"k8s:{item['auditID']}:{item['stage']}"
                got = c.get(f"/v1/events/{rec['id']}").json()["record"]
                assert got["action"].startswith("k8s.")
                assert got["source"]["service"] == "kube-apiserver"
                raw = c.get(f"/v1/events/{rec['id']}/raw")
                assert raw.status_code == 200
                assert raw.headers["x-auditkeep-raw-format"] == "k8s.audit"
                assert raw.content in EVENT_LIST  # the exact bytes the API server sent
                assert orjson.loads(raw.content) == item
                assert got["raw"] == {"format": "k8s.audit", "size": len(raw.content),
                                      "sha256": hashlib.sha256(raw.content).hexdigest()}

    def test_resending_is_idempotent_on_audit_id_and_stage(self, server: ServerProcess) -> None:
        with server.client() as c:
            first = c.post("/v1/sources/k8s", content=EVENT_LIST)
            again = c.post("/v1/sources/k8s", content=EVENT_LIST)
            assert first.status_code == 201 and again.status_code == 200
            assert [r["seq"] for r in again.json()["receipts"]] == [
                r["seq"] for r in first.json()["receipts"]]
            assert all(r["duplicate"] for r in again.json()["receipts"])
            assert size_of(c) == 4

    def test_stages_other_than_response_complete_are_filtered(
            self, server: ServerProcess) -> None:
        items = orjson.loads(EVENT_LIST)["items"]
        started = copy.deepcopy(items[0])
        started["stage"] = "ResponseStarted"
        with server.client() as c:
            r = c.post("/v1/sources/k8s", content=item_list([started, items[1]]))
            assert r.status_code == 201
            assert r.json()["filtered"] == 1 and len(r.json()["receipts"]) == 1
            only = c.post("/v1/sources/k8s", content=item_list([started]))
            assert only.status_code == 200 and only.json()["receipts"] == []

    def test_malformed_items_fail_the_request_naming_them(self, server: ServerProcess) -> None:
        items = orjson.loads(EVENT_LIST)["items"]
        bad = copy.deepcopy(items[2])
        bad["verb"] = 5
        with server.client() as c:
            r = c.post("/v1/sources/k8s", content=item_list([items[0], items[1], bad]))
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/problem+json"
            errors = r.json()["errors"]
            assert errors[0]["pointer"] == "/items/2/verb" and errors[0]["index"] == 2
            for body in (b"{not json", b'{"kind": "Pod", "items": []}', b'{"items": 3}',
                         b'{"items": [{"verb": "\xff"}]}'):
                assert c.post("/v1/sources/k8s", content=body).status_code == 400
            assert size_of(c) == 0  # atomic: nothing stored

    def test_events_sent_as_schema_v1_have_no_raw(self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json={"id": "plain-1", "action": "a.b", "outcome": "success",
                                       "actor": {"id": "x", "type": "user"}})
            r = c.get("/v1/events/plain-1/raw")
            assert r.status_code == 404 and "no raw object" in r.json()["detail"]
            assert "raw" not in c.get("/v1/events/plain-1").json()["record"]

    def test_the_webhook_needs_an_ingest_token(self, server: ServerProcess) -> None:
        r = httpx.post(server.url + "/v1/sources/k8s", content=EVENT_LIST)
        assert r.status_code == 401
        for path in ("/v1/sources/k8s", "/v1/sources/cloudtrail", "/v1/sources/gcp",
                     "/v1/otlp/v1/logs"):  # the token is checked before the body is read
            assert httpx.post(server.url + path, content=b"{junk").status_code == 401


def test_a_burst_larger_than_the_queue_gets_fast_503s_and_loses_nothing(
        data_dir: DataDir) -> None:
    """Many EventLists at once against a 100-event queue: each request is answered
    promptly (201 or 503 + Retry-After, never a hang); retrying the 503s as the API
    server would stores every event exactly once."""
    srv = start_server(data_dir, "--queue-limit", "100")
    samples = panther_items() * 10  # ~300 events a list, each auditID made unique below
    lists = [item_list([dict(s, auditID=f"{s['auditID']}-{k}-{j}")
                        for j, s in enumerate(samples)]) for k in range(24)]
    lock = threading.Lock()
    statuses: list[int] = []
    slowest = [0.0]

    def webhook(body: bytes) -> None:
        with srv.client() as c:
            while True:
                t = time.monotonic()
                r = c.post("/v1/sources/k8s", content=body)
                with lock:
                    statuses.append(r.status_code)
                    slowest[0] = max(slowest[0], time.monotonic() - t)
                if r.status_code != 503:
                    assert r.status_code == 201, r.text
                    return
                assert int(r.headers["retry-after"]) >= 1
                time.sleep(0.05)  # the API server backs off; the test need not wait 1 s

    try:
        threads = [threading.Thread(target=webhook, args=(b,)) for b in lists]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert 503 in statuses, "24 lists at once must overflow a 100-event queue"
        assert statuses.count(201) == len(lists)
        assert slowest[0] < 60  # answered, not hung (a hang detector, not a latency claim)
        with srv.client() as c:
            assert size_of(c) == len(lists) * len(samples)
    finally:
        srv.stop()


def test_verify_catches_an_edited_raw_object(data_dir: DataDir) -> None:
    import sqlite3

    from click.testing import CliRunner

    from auditkeep.cli.main import cli
    from auditkeep.storage.codec import pack_blob

    srv = start_server(data_dir)
    try:
        with srv.client() as c:
            seq = c.post("/v1/sources/k8s", content=EVENT_LIST).json()["receipts"][2]["seq"]
    finally:
        srv.stop()
    assert CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)]).exit_code == 0
    with sqlite3.connect(data_dir.db) as db:
        db.execute("UPDATE raws SET data = ? WHERE seq = ?", (pack_blob(b'{"forged":1}'), seq))
    res = CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)])
    assert res.exit_code == 1
    assert f"seq {seq} raw-modified" in res.output
