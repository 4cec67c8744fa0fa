"""The SDK against a real server process: emit, context, policies, refusals, async, fork."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditkeep import context
from auditkeep.client import (
    AsyncAuditClient,
    AuditClient,
    EventError,
    SpoolFull,
    audit_action,
    audited,
)
from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, free_port


def stored(server: ServerProcess, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    with server.client() as c:
        while True:
            q = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
            body = c.get("/v1/events", params=q).json()
            out += body["events"]
            cursor = body["next_cursor"]
            if not cursor:
                return out


def wait_for(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def searchable(server: ServerProcess, n: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        nonlocal found
        found = stored(server, **params)
        return len(found) >= n
    wait_for(enough)
    return found


class TestEmit:
    def test_emitted_events_arrive_with_context_and_receipts(
            self, server: ServerProcess, tmp_path: Path) -> None:
        with AuditClient(server.url, server.admin_token, tmp_path / "spool",
                         batch_size=50) as client:
            with context.scope(actor={"id": "alice", "type": "user", "email": "a@x.io"},
                               request_id="req-1"):
                ids = [client.emit("orders.delete", resource=("order", str(i)),
                                   metadata={"i": i}) for i in range(120)]
            explicit = client.emit("orders.create", actor="bob", outcome="failure",
                                   request_id="req-2", id="my-own-id-1")
            assert client.flush(20)
            stats = client.stats()
        assert explicit == "my-own-id-1"
        assert stats["sent"] == 121 and stats["pending"] == 0 and stats["emitted"] == 121
        got = searchable(server, 120, action="orders.delete")
        assert sorted(e["id"] for e in got) == sorted(ids)
        assert {e["request_id"] for e in got} == {"req-1"}
        assert {e["actor"]["id"] for e in got} == {"alice"}
        (bob,) = searchable(server, 1, action="orders.create")
        assert bob["id"] == "my-own-id-1" and bob["outcome"] == "failure"
        assert bob["request_id"] == "req-2" and bob["actor"] == {"id": "bob", "type": "user"}

    def test_invalid_events_are_refused_at_emit_naming_the_field(
            self, server: ServerProcess, tmp_path: Path) -> None:
        with AuditClient(server.url, server.admin_token, tmp_path / "spool") as client:
            with pytest.raises(EventError, match="/outcome"):
                client.emit("a.b", actor="x", outcome="maybe")
            with pytest.raises(EventError, match="actor"):
                client.emit("a.b")  # no actor given or bound
            with pytest.raises(EventError, match="/time"):
                client.emit("a.b", actor="x", time="2026-01-01T00:00:00")  # naive
            with pytest.raises(EventError, match="/colour"):
                client.emit("a.b", actor="x", colour="red")
            with pytest.raises(EventError, match="not JSON"):
                client.emit("a.b", actor="x", metadata={"when": object()})
            assert client.stats()["emitted"] == 0

    def test_server_refusal_of_one_event_keeps_it_and_sends_the_rest(
            self, server: ServerProcess, tmp_path: Path) -> None:
        from auditkeep.auth import create_token
        from auditkeep.storage.sqlite import SQLiteBackend
        store = SQLiteBackend(server.data.db)
        token, _ = create_token(store, tenant="acme", scopes=["ingest", "read"])
        store.close()
        spool = tmp_path / "spool"
        with AuditClient(server.url, token, spool, batch_size=100, batch_age=5) as client:
            good = [client.emit("x.ok", actor="a") for _ in range(5)]
            client.emit("x.bad", actor="a", tenant="other")  # only an admin may set a tenant
            good += [client.emit("x.ok", actor="a") for _ in range(5)]
            assert client.flush(20)
            assert client.stats()["rejected"] == 1
        (line,) = (spool / "rejected.ndjson").read_bytes().splitlines()
        kept = orjson.loads(line)
        assert kept["event"]["action"] == "x.bad" and "tenant" in str(kept["problems"])
        got = searchable(server, 10, action="x.ok", tenant="acme")
        assert sorted(e["id"] for e in got) == sorted(good)

    def test_a_conflicting_id_is_found_by_halving_and_set_aside(
            self, server: ServerProcess, tmp_path: Path) -> None:
        with server.client() as c:
            c.post("/v1/events", json={"id": "taken-1", "action": "x.y", "outcome": "success",
                                       "actor": {"id": "a", "type": "user"}})
        with AuditClient(server.url, server.admin_token, tmp_path / "spool", batch_age=5,
                         batch_size=100) as client:
            ids = [client.emit("x.z", actor="a") for _ in range(6)]
            client.emit("x.z", actor="a", id="taken-1")  # same id, other content: 409
            ids += [client.emit("x.z", actor="a") for _ in range(6)]
            assert client.flush(20)
            assert client.stats()["rejected"] == 1
        assert sorted(e["id"] for e in searchable(server, 12, action="x.z")) == sorted(ids)


class TestPolicies:
    def test_drop_policy_drops_only_below_critical(self, tmp_path: Path) -> None:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the spool only fills
        client = AuditClient(url, "ak_x", tmp_path / "spool", spool_limit=2000,
                             on_full="drop", batch_age=60)
        try:
            for _ in range(40):
                client.emit("a.b", actor="x")
            for _ in range(5):
                client.emit("a.crit", actor="x", severity="critical")
            s = client.stats()
            assert s["dropped"] > 0
            assert s["emitted"] == 45 - s["dropped"]
            assert s["spooled_bytes"] > 2000  # the critical ones went in regardless
        finally:
            client.close(0)

    def test_block_policy_waits_then_raises(self, tmp_path: Path) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        client = AuditClient(url, "ak_x", tmp_path / "spool", spool_limit=1000,
                             block_timeout=0.3, batch_age=60)
        try:
            for _ in range(5):
                client.emit("a.b", actor="x")  # ~600 bytes: room enough
            with pytest.raises(SpoolFull, match="stayed full"):
                client.emit("a.b", actor="x", metadata={"pad": "p" * 500})
        finally:
            client.close(0)

    def test_memory_mode_sends_without_a_spool_dir(
            self, server: ServerProcess, tmp_path: Path) -> None:
        spool = tmp_path / "never"
        with AuditClient(server.url, server.admin_token, spool, durability="memory") as c:
            ids = [c.emit("mem.x", actor="m") for _ in range(30)]
            assert c.flush(20)
        assert not spool.exists()
        assert sorted(e["id"] for e in searchable(server, 30, action="mem.x")) == sorted(ids)


class TestDecorators:
    def test_audited_records_success_failure_and_denied(
            self, server: ServerProcess, tmp_path: Path) -> None:
        client = AuditClient(server.url, server.admin_token, tmp_path / "spool")

        @audited("orders.delete", resource=lambda order_id, **_: ("order", order_id),
                 client=client)
        def delete(order_id: str, *, force: bool = False) -> str:
            if order_id == "bad":
                raise KeyError(order_id)
            if order_id == "locked":
                raise PermissionError(order_id)
            return "deleted"

        @audited("orders.read", resource=("order", "7"), client=client)
        async def read() -> int:
            return 7

        with context.scope(actor="carol"):
            assert delete("1") == "deleted"
            with pytest.raises(KeyError):
                delete("bad")
            with pytest.raises(PermissionError):
                delete(order_id="locked", force=True)
            assert asyncio.run(read()) == 7
            with audit_action("orders.refund", resource=("order", "9"), client=client) as a:
                a.set(metadata={"amount": 12})
        assert client.flush(20)
        client.close()
        got = {e["resource"]["id"]: e for e in searchable(server, 3, action="orders.delete")}
        assert got["1"]["outcome"] == "success"
        assert got["bad"]["outcome"] == "failure" and got["bad"]["reason"] == "KeyError"
        assert got["locked"]["outcome"] == "denied"
        assert {e["actor"]["id"] for e in got.values()} == {"carol"}
        (refund,) = searchable(server, 1, action="orders.refund")
        assert refund["metadata"] == {"amount": 12} and refund["outcome"] == "success"
        assert len(searchable(server, 1, action="orders.read")) == 1


class TestAsync:
    def test_async_client_emits_and_flushes(self, server: ServerProcess,
                                            tmp_path: Path) -> None:
        async def main() -> list[str]:
            async with AsyncAuditClient(server.url, server.admin_token,
                                        tmp_path / "spool") as c:
                ids = [await c.emit("async.x", actor="z") for _ in range(25)]
                assert await c.flush(20)
                report = await c.verify_receipts()
                assert report.ok and report.checked == 25
                return ids
        ids = asyncio.run(main())
        assert sorted(e["id"] for e in searchable(server, 25, action="async.x")) == sorted(ids)


class TestFork:
    def test_a_forked_child_gets_its_own_sender_and_spool(
            self, server: ServerProcess, tmp_path: Path) -> None:
        spool = tmp_path / "spool"
        client = AuditClient(server.url, server.admin_token, spool, batch_age=0.05)
        client.emit("fork.parent", actor="p", id="before-fork")
        pid = os.fork()
        if pid == 0:  # the child: emit, flush through its own sender, leave
            code = 1
            try:
                client.emit("fork.child", actor="c", id="from-child")
                code = 0 if client.flush(20) else 2
                client.close()
            finally:
                os._exit(code)
        client.emit("fork.parent", actor="p", id="after-fork")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert client.flush(20)
        client.close()
        assert {e["id"] for e in searchable(server, 2, action="fork.parent")} == {
            "before-fork", "after-fork"}
        assert [e["id"] for e in searchable(server, 1, action="fork.child")] == ["from-child"]
        assert len(list(spool.glob("w-*"))) == 2  # one spool each, none shared


def test_spool_dir_defaults_to_a_per_user_cache_keyed_by_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = AuditClient("http://127.0.0.1:1", "t", batch_age=60)
    b = AuditClient("http://127.0.0.1:2", "t", batch_age=60)
    try:
        roots = {p.parent for p in (tmp_path / "auditkeep" / "spool").glob("*/w-*")}
        assert len(roots) == 2
    finally:
        a.close(0)
        b.close(0)


def test_unreachable_server_never_loses_a_spooled_event(
        data_dir: DataDir, tmp_path: Path) -> None:
    """Emit while no server runs, close (events stay spooled), start the server, and a
    new client on the same spool sends them."""
    from tests.conftest import start_server
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = AuditClient(url, "ak_placeholder", tmp_path / "spool", batch_age=0.05)
    ids = [first.emit("later.x", actor="l") for _ in range(40)]
    time.sleep(0.3)  # a few failed attempts
    first.close(0.1)
    assert first.stats()["retried"] > 0
    server = start_server(data_dir, port=port)
    try:
        second = AuditClient(url, server.admin_token, tmp_path / "spool", batch_age=0.05)
        wait_for(lambda: second.stats()["sent"] >= 40)
        second.close()
        assert sorted(e["id"] for e in searchable(server, 40, action="later.x")) == sorted(ids)
    finally:
        server.stop()


def test_http_errors_are_not_raised_into_the_app(tmp_path: Path) -> None:
    client = AuditClient("http://127.0.0.1:9", "t", tmp_path / "s", batch_age=0.01)
    try:
        client.emit("a.b", actor="x")
        time.sleep(0.2)
        assert client.stats()["last_error"] is not None
        assert not client.flush(0.2)
    finally:
        client.close(0)
