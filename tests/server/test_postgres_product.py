"""The whole product on `serve --storage postgresql://…` (one process, no bus): ingest,
proofs, a source, export, the UI, detection and alerts, the access log and erasure,
against a real PostgreSQL server. (Search and aggregate answers are held equal to the
embedded server's in tests/query/test_pg_server.py.)"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from auditkeep.datadir import DataDir
from auditkeep.log import merkle
from tests.cli.test_cli import ak
from tests.conftest import ServerProcess, start_server

RULES = """
rules:
  - id: deletes
    title: Order deleted
    level: high
    query: 'action:orders.delete'
    group_by: [actor.id]
"""


@pytest.fixture
def pg_server(tmp_path: Path, pg_url: str) -> Iterator[ServerProcess]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.yml").write_text(RULES)
    s = start_server(DataDir(tmp_path / "data"), "--storage", pg_url, "--rules", str(rules),
                     "--ingest-workers", "1")
    yield s
    s.stop()


def _eventually(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_product_runs_on_postgresql(pg_server: ServerProcess, pg_url: str) -> None:
    with pg_server.client() as c:
        events = [{"action": "orders.delete", "outcome": "success", "id": f"o-{i}",
                   "actor": {"id": "alice", "type": "user", "email": "alice@example.org"},
                   "resource": {"type": "order", "id": str(i)}} for i in range(5)]
        r = c.post("/v1/events", json=events)
        assert r.status_code == 201, r.text
        receipts = r.json()["receipts"]
        assert [x["seq"] for x in receipts] == list(range(5))
        again = c.post("/v1/events", json=events[:1])
        assert again.status_code == 200 and again.json()["receipts"][0]["duplicate"]

        # proofs: the receipt's leaf is in the signed tree
        lines = c.get("/v1/logs/default/checkpoint").text.splitlines()
        size, root = int(lines[1]), base64.b64decode(lines[2])
        r = c.get("/v1/logs/default/proof/inclusion", params={"seq": 3, "size": size})
        assert r.status_code == 200, r.text
        merkle.verify_inclusion(base64.b64decode(receipts[3]["leaf_hash"]), 3, size,
                                [base64.b64decode(h) for h in r.json()["hashes"]], root)

        # a source: a CloudTrail record through its own endpoint
        trail = {"Records": [{"eventVersion": "1.08", "eventTime": "2026-12-07T10:00:00Z",
                              "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket",
                              "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.9",
                              "eventID": "7f1b2c3d-0000-4000-8000-000000000001",
                              "userIdentity": {"type": "IAMUser", "userName": "bob",
                                               "arn": "arn:aws:iam::1:user/bob"}}]}
        r = c.post("/v1/sources/cloudtrail", content=orjson.dumps(trail),
                   headers={"Content-Type": "application/json"})
        assert r.status_code in (200, 201), r.text

        # search (after indexing), export, the UI
        def indexed() -> bool:
            r = c.get("/v1/search", params={"query": "action:orders.delete", "limit": 50})
            return r.status_code == 200 and len(r.json()["events"]) == 5
        _eventually(indexed)
        r = c.get("/v1/export", params={"query": "actor.id:alice", "format": "ndjson"})
        assert r.status_code == 200, r.text
        assert len([x for x in r.text.splitlines() if x.strip()]) == 5
        assert c.get("/").status_code == 200

        # detection on PostgreSQL: the rule fires, the alert is stored and logged
        def alerted() -> bool:
            r = c.get("/v1/alerts")
            return r.status_code == 200 and len(r.json()["alerts"]) >= 1
        _eventually(alerted)

        # erasure keeps every proof
        r = c.post("/v1/erasure", json={"subject": "alice@example.org",
                                         "legal_basis": "GDPR Art. 17"})
        assert r.status_code == 200, r.text
    pg_server.stop()
    r = ak("verify", "--data", str(pg_server.data.root), "--storage", pg_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "erased" in r.stdout
