"""Legal holds through a real server: `/v1/holds` and `auditkeep holds`, scopes,
problem+json naming the field, and a hold keeping events from `auditkeep retention run`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from auditkeep.auth import create_token
from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline import prepare as prepare_module
from auditkeep.pipeline.prepare import format_time, prepare
from auditkeep.pipeline.schema import Event
from auditkeep.storage.sqlite import SQLiteBackend
from tests.conftest import ServerProcess, start_server
from tests.server.test_reads import wait_searchable

EVENTS = [{"action": "iam.user.create", "outcome": "success",
           "time": "2026-03-10T12:00:00Z", "actor": {"id": actor, "type": "user"}}
          for actor in ("alice", "alice", "bob")]


#: Retention purges data_change events 90 days after they were received; tenant
#: `globex` has the same three events received 200 days ago (acme's are new).
CONFIG = """
retention:
  schedule: off
  categories: {data_change: 90d}
"""


def old_events(data: DataDir) -> None:
    long_ago = format_time(datetime.now(UTC) - timedelta(days=200))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prepare_module, "now_utc", lambda: long_ago)
        n = open_node(data)
        try:
            pendings = prepare(msgspec.convert(EVENTS, list[Event]), tenant="globex",
                               submitter="test", may_set_tenant=True)
            n.logs.append("globex", pendings).result()
        finally:
            n.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("holds")
    data = DataDir(root / "data")
    old_events(data)
    (root / "auditkeep.yaml").write_text(CONFIG)
    s = start_server(data, "--config", str(root / "auditkeep.yaml"))
    with s.client() as c:
        assert c.post("/v1/events", params={"tenant": "acme"}, json=EVENTS).status_code < 300
        wait_searchable(c, 3, tenant="acme")
        wait_searchable(c, 3, tenant="globex")
    yield s
    s.stop()


def token(server: ServerProcess, *scopes: str, tenant: str = "acme") -> str:
    store = SQLiteBackend(server.data.db)
    try:
        return create_token(store, tenant=tenant, scopes=list(scopes))[0]
    finally:
        store.close()


def access_size(server: ServerProcess) -> int:
    store = SQLiteBackend(server.data.db)
    try:
        info = store.get_log("acme._access")
        return info.size if info is not None else 0
    finally:
        store.close()


def cli(server: ServerProcess, *args: str, token: str | None = None, command: str = "holds"
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUDITKEEP_URL": server.url,
           "AUDITKEEP_TOKEN": token or server.admin_token}
    return subprocess.run([sys.executable, "-m", "auditkeep", command, *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent)


def test_create_show_list_release_over_http(srv: ServerProcess) -> None:
    with srv.client() as c:
        r = c.post("/v1/holds", params={"tenant": "acme"},
                   json={"query": "actor:alice", "reason": "matter 17",
                         "since": "2026-03-01", "until": "2026-04-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        h = r.json()
        assert h["active"] and h["record_seq"] == 3 and r.headers["location"].startswith(
            f"/v1/holds/{h['id']}")
        entry = c.get(f"/v1/logs/acme/entries/{h['record_seq']}").json()
        assert entry["action"] == "auditkeep.hold.create"
        reads = access_size(srv)
        listed = c.get("/v1/holds").json()["holds"]
        assert [x["id"] for x in listed] == [h["id"]]
        assert c.get("/v1/holds", params={"active": "false"}).json()["holds"] == []
        assert access_size(srv) == reads  # a hold list is configuration, not audit data
        shown = c.get(f"/v1/holds/{h['id']}").json()
        assert shown["matching"] == 2 and not shown["matching_capped"]
        assert access_size(srv) == reads + 1  # the count is a read of the tenant's events
        released = c.post(f"/v1/holds/{h['id']}/release", json={"reason": "closed"})
        assert released.status_code == 200 and not released.json()["active"]
        again = c.post(f"/v1/holds/{h['id']}/release", json={"reason": "closed"})
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        assert c.get("/v1/holds/hold_aaaaaaaaaaaa").status_code == 404


def test_bad_input_is_problem_json_naming_the_field(srv: ServerProcess) -> None:
    with srv.client() as c:
        r = c.post("/v1/holds", params={"tenant": "acme"},
                   json={"query": "actor:(", "reason": "", "since": "soon", "colour": 1})
        assert r.status_code == 400
        assert [e["pointer"] for e in r.json()["errors"]] == ["/body/colour"]
        r = c.post("/v1/holds", params={"tenant": "acme"},
                   json={"query": "actor:(", "reason": "", "since": "soon"})
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["pointer"] for e in r.json()["errors"]] == [
            "/body/query", "/body/reason", "/body/since"]
        assert c.get("/v1/holds", params={"active": "maybe"}).json()["errors"][0][
            "pointer"] == "/query/active"
        assert c.post("/v1/holds", content=b"[1]").json()["errors"][0]["pointer"] == "/body"


def test_scopes_audit_reads_admin_changes(srv: ServerProcess) -> None:
    auditor = token(srv, "audit")
    with srv.client(auditor) as c:
        assert c.get("/v1/holds").status_code == 200
        assert c.get("/v1/holds", params={"tenant": "globex"}).status_code == 403
        assert c.post("/v1/holds", json={"query": "a", "reason": "r"}).status_code == 403
    with srv.client(token(srv, "read")) as c:
        assert c.get("/v1/holds").status_code == 403


def test_the_cli_creates_lists_and_releases(srv: ServerProcess) -> None:
    made = cli(srv, "create", "--tenant", "acme", "--query", "actor:bob", "--reason", "m-9")
    assert made.returncode == 0, made.stderr
    hold_id = made.stdout.split()[2]
    assert hold_id.startswith("hold_") and "recorded at seq" in made.stdout
    listed = cli(srv, "list")
    assert listed.returncode == 0 and hold_id in listed.stdout and "actor:bob" in listed.stdout
    shown = cli(srv, "show", hold_id)
    assert shown.returncode == 0 and "matching: 1" in shown.stdout
    done = cli(srv, "release", hold_id, "--reason", "over")
    assert done.returncode == 0 and "released hold" in done.stdout
    assert hold_id not in cli(srv, "list").stdout
    assert hold_id in cli(srv, "list", "--all", "--json").stdout


def test_cli_mistakes_are_one_line(srv: ServerProcess) -> None:
    bad = cli(srv, "create", "--query", "actor:(", "--reason", "x")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "/body/query" in bad.stderr
    gone = cli(srv, "release", "hold_aaaaaaaaaaaa", "--reason", "x")
    assert gone.returncode != 0 and len(gone.stderr.strip().splitlines()) == 1
    assert "404" in gone.stderr
    missing = cli(srv, "create", "--query", "a")
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_a_hold_keeps_its_events_from_a_retention_run(srv: ServerProcess) -> None:
    made = cli(srv, "create", "--tenant", "globex", "--query", "actor:bob", "--reason", "m-3")
    assert made.returncode == 0, made.stderr
    hold_id = made.stdout.split()[2]
    ran = cli(srv, "run", "--tenant", "globex", "--yes", "--json", command="retention")
    assert ran.returncode == 0, ran.stderr
    assert msgspec.json.decode(ran.stdout)["events"] == 2  # alice's two; bob's is held
    with srv.client() as c:
        assert [c.get(f"/v1/logs/globex/entries/{s}").status_code for s in (0, 1, 2)] == [
            410, 410, 200]
    assert "matching: 1" in cli(srv, "show", hold_id).stdout
    assert cli(srv, "release", hold_id, "--reason", "m-3 closed").returncode == 0
    again = cli(srv, "run", "--tenant", "globex", "--yes", "--json", command="retention")
    assert msgspec.json.decode(again.stdout)["events"] == 1
    with srv.client() as c:
        assert c.get("/v1/logs/globex/entries/2").status_code == 410
        kept = [c.get(f"/v1/logs/globex/entries/{seq}").json()["action"] for seq in (3, 5)]
        assert kept == ["auditkeep.hold.create", "auditkeep.hold.release"]
