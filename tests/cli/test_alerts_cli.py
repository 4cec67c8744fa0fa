"""`alerts list|show|ack` against a real server whose rules directory raises alerts for
the events the tests send (the UI tests seed their server the same way).

Output is checked in-process with click's CliRunner; one-line errors and exit codes run
`python -m auditkeep` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

import auditkeep.cli.main as ak_main  # first: it loads (and registers) every CLI module
from auditkeep.datadir import DataDir
from tests.cli.test_cli import ak, env_for
from tests.conftest import ServerProcess, start_server

RULES = """\
rules:
  - id: deletes
    title: Order deleted
    level: high
    query: 'action:orders.delete'
    group_by: [resource.id]
  - id: failed-logins
    title: Failed login
    level: medium
    query: 'action:users.login outcome:failure'
"""


def start_alert_server(root: Path) -> ServerProcess:
    """A server with `RULES` as its rules directory (and so no shipped rules)."""
    rules = root / "rules"
    rules.mkdir(parents=True)
    (rules / "t.yml").write_text(RULES)
    return start_server(DataDir(root / "data"), "--rules", str(rules))


def delete(resource_id: str, event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"action": "orders.delete", "outcome": "success",
                             "actor": {"id": "alice", "type": "user"},
                             "resource": {"type": "order", "id": resource_id}}
    if event_id:
        event["id"] = event_id
    return event


FAILED_LOGIN = {"action": "users.login", "outcome": "failure",
                "actor": {"id": "mallory", "type": "user"}}


def post_events(server: ServerProcess, events: list[dict[str, Any]],
                tenant: str | None = None) -> list[dict[str, Any]]:
    with server.client() as c:
        r = c.post("/v1/events", json=events, params={"tenant": tenant} if tenant else None)
        r.raise_for_status()
        receipts: list[dict[str, Any]] = r.json()["receipts"]
        return receipts


def wait_alerts(server: ServerProcess, n: int, tenant: str | None = None,
                timeout: float = 30.0) -> list[dict[str, Any]]:
    """Poll `GET /v1/alerts` until it lists `n` alerts (the engine runs after commit),
    and until each has been recorded in the log (`logged_seq`)."""
    where = {"tenant": tenant} if tenant else {}
    deadline = time.monotonic() + timeout
    with server.client() as c:
        while True:
            r = c.get("/v1/alerts", params={"limit": 500, **where})
            r.raise_for_status()
            found: list[dict[str, Any]] = r.json()["alerts"]
            if len(found) >= n and all(
                    c.get(f"/v1/alerts/{a['id']}", params=where).json().get("logged_seq")
                    is not None for a in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {n} alerts after {timeout}s: {found}")
            time.sleep(0.1)


def read_token(server: ServerProcess, tenant: str = "default") -> str:
    return subprocess.run(
        [sys.executable, "-m", "auditkeep", "tokens", "create", "--data",
         str(server.data.root), "--tenant", tenant, "--scope", "read"],
        check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_alert_server(tmp_path_factory.mktemp("alerts-cli"))
    post_events(s, [delete(f"o{i}", f"evt-del-{i}") for i in range(5)] + [FAILED_LOGIN])
    post_events(s, [delete("acme-1", "evt-acme")], tenant="acme")
    wait_alerts(s, 6)
    wait_alerts(s, 1, tenant="acme")
    yield s
    s.stop()


def run(srv: ServerProcess, *args: str) -> Result:
    return CliRunner().invoke(ak_main.cli, ["alerts", *args], env=env_for(srv))


def ok(srv: ServerProcess, *args: str) -> Result:
    r = run(srv, *args)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r


def listed(srv: ServerProcess, *args: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = orjson.loads(ok(srv, "list", "--json", *args).output)["alerts"]
    return alerts


def alert_for(srv: ServerProcess, resource_id: str) -> dict[str, Any]:
    return next(a for a in listed(srv, "--rule", "deletes")
                if a["group"] == {"resource.id": resource_id})


class TestList:
    def test_the_table_shows_every_alert_newest_first(self, srv: ServerProcess) -> None:
        out = ok(srv, "list").output
        lines = out.splitlines()
        assert lines[0].split()[:5] == ["id", "created", "level", "status", "rule"]
        assert len(lines) == 1 + 6
        assert out.count("Order deleted") == 5 and out.count("Failed login") == 1
        assert '{"resource.id":"o3"}' in out
        created = [a["created"] for a in listed(srv)]
        assert created == sorted(created, reverse=True)

    def test_filters_by_level_rule_status_and_time(self, srv: ServerProcess) -> None:
        assert [a["rule"] for a in listed(srv, "--level", "medium")] == ["failed-logins"]
        assert {a["rule"] for a in listed(srv, "--rule", "deletes")} == {"deletes"}
        assert len(listed(srv, "--rule", "deletes", "--level", "high")) == 5
        assert listed(srv, "--level", "critical") == []
        assert len(listed(srv, "--since", "1h")) == 6
        assert listed(srv, "--until", "2000-01-01T00:00:00Z") == []
        assert ok(srv, "list", "--until", "2000-01-01T00:00:00Z").output == "no alerts\n"

    def test_pages_follow_the_cursor_it_prints(self, srv: ServerProcess) -> None:
        every = [a["id"] for a in listed(srv)]
        out = ok(srv, "list", "--limit", "4").output
        more = [line for line in out.splitlines() if line.startswith("more: --cursor ")]
        assert len(more) == 1 and len(out.splitlines()) == 1 + 4 + 1
        cursor = more[0].removeprefix("more: --cursor ")
        rest = listed(srv, "--limit", "4", "--cursor", cursor)
        assert [a["id"] for a in rest] == every[4:]

    def test_an_admin_reads_another_tenant(self, srv: ServerProcess) -> None:
        acme = listed(srv, "--tenant", "acme")
        assert [a["group"] for a in acme] == [{"resource.id": "acme-1"}]
        assert "acme-1" not in ok(srv, "list").output


class TestShow:
    def test_show_prints_fields_events_and_deliveries(self, srv: ServerProcess) -> None:
        a = alert_for(srv, "o2")
        out = ok(srv, "show", a["id"]).output
        assert a["id"] in out and "Order deleted" in out and "deletes" in out
        assert "logged_seq" in out
        assert "events (1 linked of 1 counted)" in out
        assert "evt-del-2" in out
        assert "deliveries (0)" in out

    def test_show_json_is_the_whole_alert(self, srv: ServerProcess) -> None:
        a = alert_for(srv, "o1")
        body = orjson.loads(ok(srv, "show", a["id"], "--json").output)
        assert body["id"] == a["id"] and body["tenant"] == "default"
        assert body["events"] == [{"log": "default", "seq": body["events"][0]["seq"],
                                   "id": "evt-del-1"}]
        assert isinstance(body["logged_seq"], int)
        assert body["deliveries"] == []


class TestAck:
    def test_ack_with_a_note_closes_the_alert(self, srv: ServerProcess) -> None:
        a = alert_for(srv, "o0")
        out = ok(srv, "ack", a["id"], "--note", "restored from backup").output
        assert out.startswith(f"acked {a['id']} (deletes) by ")
        body = orjson.loads(ok(srv, "show", a["id"], "--json").output)
        assert body["status"] == "acked" and body["acked_at"] and body["acked_by"]
        assert body["details"]["ack_note"] == "restored from backup"
        assert a["id"] in {x["id"] for x in listed(srv, "--status", "acked")}
        assert {x["status"] for x in listed(srv, "--status", "acked")} == {"acked"}
        assert a["id"] not in {x["id"] for x in listed(srv, "--status", "open")}

    def test_ack_json_answers_the_acked_alert(self, srv: ServerProcess) -> None:
        a = alert_for(srv, "o4")
        body = orjson.loads(ok(srv, "ack", a["id"], "--json").output)
        assert body["id"] == a["id"] and body["status"] == "acked"
        assert "deliveries" in body


class TestMistakes:
    def test_failures_are_one_line_and_nonzero(self, srv: ServerProcess) -> None:
        env = env_for(srv)
        reader = {**env, "AUDITKEEP_TOKEN": read_token(srv)}
        some = alert_for(srv, "o3")["id"]
        cases: list[tuple[list[str], dict[str, str], int, str]] = [
            (["show", "no-such-alert"], env, 1, "404"),
            (["ack", "no-such-alert"], env, 1, "404"),
            (["ack", some], reader, 1, "403"),
            (["list", "--since", "yesterday"], env, 1, "400"),
            (["list", "--level", "severe"], env, 2, "severe"),
            (["list"], {**env, "AUDITKEEP_TOKEN": "ak_wrong"}, 1, "401"),
            (["list"], {"AUDITKEEP_URL": "http://127.0.0.1:9", "AUDITKEEP_TOKEN": "x"}, 1,
             "cannot reach the server"),
        ]
        for args, e, code, says in cases:
            r = ak("alerts", *args, env=e)
            assert r.returncode == code, (args, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr, (args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
            assert says in r.stderr, (args, r.stderr)
        # a read token may list and show, just not acknowledge
        r = ak("alerts", "show", some, "--json", env=reader)
        assert r.returncode == 0 and orjson.loads(r.stdout)["status"] == "open"
