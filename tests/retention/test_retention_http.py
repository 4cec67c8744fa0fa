"""Retention through a real server and the CLI: the policy and where its parts come
from, bad bodies named field by field, the plan as a table and as JSON, a run that
purges what the plan said, search after it, and `verify` over the data directory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest

from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline import prepare as prepare_module
from auditkeep.pipeline.prepare import format_time, prepare
from auditkeep.pipeline.schema import Event
from auditkeep.retention.purge import PURGE_ACTION
from auditkeep.storage.sqlite import SQLiteBackend
from tests.conftest import ServerProcess, start_server
from tests.server.test_reads import token

TENANT = "acme"
CONFIG = """
retention:
  schedule: off
  categories: {data_access: 90d}
  tenants:
    acme: {categories: {admin: 3y}}
"""


def old_events(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten events received 200 days ago (the server's clock is the test's to set here:
    `received` comes from prepare's clock), five auth and five data_access."""
    long_ago = format_time(datetime.now(UTC) - timedelta(days=200))
    monkeypatch.setattr(prepare_module, "now_utc", lambda: long_ago)
    n = open_node(data)
    try:
        events = [{"action": f"users.{c}", "outcome": "success", "category": c,
                   "actor": {"id": f"u-{i}", "type": "user"},
                   "resource": {"type": "user", "id": str(i)}}
                  for i in range(5) for c in ("auth", "data_access")]
        pendings = prepare(msgspec.convert(events, list[Event]), tenant=TENANT,
                           submitter="test", may_set_tenant=True)
        n.logs.append(TENANT, pendings).result()
    finally:
        n.close()
    monkeypatch.undo()


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    data = DataDir(tmp_path / "data")
    old_events(data, monkeypatch)
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(CONFIG)
    s = start_server(data, "--config", str(cfg), "--pii-scan-interval", "0")
    yield s
    s.stop()


def cli(s: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditkeep", "retention", *args, "--url",
                           s.url, "--token", s.admin_token], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def problem(c: httpx.Client, body: Any, raw: bytes | None = None) -> list[str]:
    resp = c.put("/v1/retention", params={"tenant": TENANT},
                  content=raw if raw is not None else None,
                  json=None if raw is not None else body)
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    return [e["pointer"] for e in resp.json()["errors"]]


def test_retention_over_http_and_the_cli(kept: ServerProcess, tmp_path: Path) -> None:
    s = kept
    with s.client() as c:
        policy = c.get("/v1/retention", params={"tenant": TENANT}).json()
        assert policy["categories"]["data_access"] == {"days": 90, "source": "config"}
        assert policy["categories"]["admin"] == {"days": 1095, "source": "config.tenant"}
        assert policy["categories"]["auth"] == {"days": None, "source": "builtin"}

        assert problem(c, {"categories": {"auth": "400x", "bogus": 3}, "default": -1,
                           "require_archive": "yes", "extra": 1}) == [
            "/body/extra", "/body/default", "/body/categories/auth",
            "/body/categories/bogus", "/body/require_archive"]
        assert problem(c, None, b"[1]") == ["/body"]
        assert problem(c, None, b"{nope") == ["/body"]
        bad = c.get("/v1/retention/plan", params={"tenant": "NO"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/query/tenant"
        reader = token(s, "read", tenant=TENANT)
        with s.client(reader) as r:
            assert r.get("/v1/retention").status_code == 403
            assert r.post("/v1/retention/run").status_code == 403

        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while c.get("/v1/retention/plan", params={"tenant": TENANT}).json()["events"] < 5:
            assert datetime.now(UTC) < deadline, "the index never caught up"

    table = cli(s, "plan", "--tenant", TENANT)
    assert table.returncode == 0, table.stderr
    assert "data_access" in table.stdout and "5 events would be purged" in table.stdout
    assert "auth" not in table.stdout.split("\n", 1)[1]  # kept forever: not in the plan

    done = cli(s, "set", "--tenant", TENANT, "--category", "auth=100d", "--default",
               "forever")
    assert done.returncode == 0, done.stderr
    assert "auth" in done.stdout and "100d" in done.stdout and "api" in done.stdout

    plan = msgspec.json.decode(cli(s, "plan", "--tenant", TENANT, "--json").stdout)
    (log,) = [x for x in plan["logs"] if x["log"] == TENANT]
    assert {k: v["events"] for k, v in log["categories"].items()} == {
        "auth": 5, "data_access": 5}
    assert log["entry_bytes"] > 0 and plan["events"] == 10

    refused = cli(s, "run")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--yes" in refused.stderr
    ran = msgspec.json.decode(cli(s, "run", "--yes", "--json").stdout)
    assert ran["events"] == 10
    (purge,) = [p for p in ran["purges"] if p["log"] == TENANT]
    assert purge["categories"] == {"auth": 5, "data_access": 5}
    assert purge["entry_bytes"] == log["entry_bytes"]

    with s.client() as c:
        entry = c.get(f"/v1/logs/{TENANT}/entries/{purge['record_seq']}")
        assert entry.status_code == 200 and PURGE_ACTION.encode() in entry.content
        gone = c.get(f"/v1/logs/{TENANT}/entries/0")
        assert gone.status_code == 410
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while True:
            hits = c.get("/v1/events", params={"tenant": TENANT, "limit": 100}).json()["events"]
            if any(h["action"] == PURGE_ACTION for h in hits):
                break
            assert datetime.now(UTC) < deadline, "the purge record never became searchable"
        assert [h["action"] for h in hits] == [PURGE_ACTION]
        assert c.get("/v1/retention/plan").json()["events"] == 0
        status = c.get("/v1/status").json()["retention"]
        assert status["purged"] == 10 and status["schedule"] is None  # `schedule: off`
        assert "auditkeep_retention_purged_events_total 10.0" in c.get("/metrics").text

    for args, code, text in (
            (("set", "--category", "auth"), 2, "expected NAME=DAYS"),
            (("set", "--category", "auth=4x"), 1, "/body/categories/auth"),
            (("set", "--category", "nope=4d"), 1, "/body/categories/nope")):
        wrong = cli(s, *args)
        assert wrong.returncode == code, wrong.stderr
        assert wrong.stderr.count("\n") == 1 and text in wrong.stderr

    s.stop()
    store = SQLiteBackend(s.data.db)
    try:
        access = store.get_log(f"{TENANT}._access")
        assert access is not None
        reads = [orjson.loads(e) for b in store.read_bundles(access.id, 0, access.size)
                 for e in b.entries if e]
    finally:
        store.close()
    plans = [r for r in reads if r["action"] == "auditkeep.read.retention_plan"]
    assert plans and plans[0]["metadata"]["params"] == {"tenant": TENANT}
    verify = subprocess.run([sys.executable, "-m", "auditkeep", "verify", "--data",
                             str(s.data.root)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    lines = [x for x in verify.stdout.splitlines() if x.startswith(f"{TENANT}:")]
    assert lines[0].endswith(": ok"), verify.stdout
    assert (f"{TENANT}: 10 entries purged by retention in 1 range: 0..9 (record seq "
            f"{purge['record_seq']})") in lines, verify.stdout
