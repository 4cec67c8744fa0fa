"""Search, event lookup, entries, and the access log — against a real server process."""

from __future__ import annotations

import base64
import time

import httpx

from auditkeep.auth import create_token
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.storage.sqlite import SQLiteBackend
from tests.conftest import ServerProcess
from tests.server.helpers import checkpoint, event, verifiers


def wait_searchable(c: httpx.Client, n: int, timeout: float = 10.0, **params: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(c.get("/v1/events", params={"limit": 1000, **params}).json()["events"]) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} events not searchable within {timeout}s")


def token(server: ServerProcess, *scopes: str, tenant: str = "default") -> str:
    store = SQLiteBackend(server.data.db)
    try:
        return create_token(store, tenant=tenant, scopes=list(scopes))[0]
    finally:
        store.close()


class TestSearch:
    def test_filters_select_the_right_events(self, server: ServerProcess) -> None:
        with server.client() as c:
            evs = [
                event(0, action="orders.delete", outcome="failure"),
                event(1, action="orders.create"),
                event(2, action="users.login", category="auth",
                      source={"service": "gateway"}),
                event(3, action="orders.delete", resource={"type": "invoice", "id": "INV-9"}),
            ]
            assert c.post("/v1/events", json=evs).status_code == 201
            wait_searchable(c, 4)

            def seqs(**p: str) -> list[int]:
                r = c.get("/v1/events", params=p)
                assert r.status_code == 200, r.text
                return [e["seq"] for e in r.json()["events"]]

            assert seqs(action="orders.delete") == [3, 0]
            assert seqs(action="orders.*") == [3, 1, 0]
            assert seqs(outcome="failure") == [0]
            assert seqs(category="auth") == [2]
            assert seqs(source_service="gateway") == [2]
            assert seqs(resource_type="invoice", resource_id="INV-9") == [3]
            assert seqs(q="INV-9") == [3]  # a hyphenated term is a phrase of its tokens
            assert seqs(actor="user-1") == [1]
            assert seqs(q="number 2") == [2]
            assert seqs(since="1h") == [3, 2, 1, 0]
            assert seqs(until="2000-01-01T00:00:00Z") == []

    def test_newest_first_by_event_time(self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=[event(0, time="2026-01-02T00:00:00Z"),
                                       event(1, time="2026-01-03T00:00:00Z"),
                                       event(2, time="2026-01-01T00:00:00Z")])
            wait_searchable(c, 3)
            got = [e["seq"] for e in c.get("/v1/events").json()["events"]]
            assert got == [1, 0, 2]

    def test_cursor_pages_stay_correct_while_events_arrive(self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=[event(i) for i in range(25)])
            wait_searchable(c, 25)
            seen: list[int] = []
            cursor = None
            while True:
                r = c.get("/v1/events", params={"limit": 10, **({"cursor": cursor}
                                                                if cursor else {})}).json()
                seen += [e["seq"] for e in r["events"]]
                if len(seen) == 10:  # new events arrive between pages
                    c.post("/v1/events", json=[event(100 + i) for i in range(5)])
                cursor = r["next_cursor"]
                if cursor is None:
                    break
            assert sorted(seen[:25]) == list(range(25))
            assert len(seen) == len(set(seen))

    def test_bad_parameters_are_problems_naming_the_parameter(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            for params, name in (({"limit": "5000"}, "limit"), ({"since": "yesterday"}, "since"),
                                 ({"since": "2026-01-01T00:00:00"}, "since"),
                                 ({"colour": "red"}, "colour"), ({"limit": "x"}, "limit")):
                r = c.get("/v1/events", params=params)
                assert r.status_code == 400, params
                assert r.json()["errors"][0]["pointer"] == f"/query/{name}"
            r = c.get("/v1/events", params={"cursor": "garbage!"})
            assert r.status_code == 400


class TestPersonalFields:
    def test_entry_holds_commitments_and_only_personal_scope_sees_values(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=event(1, actor={"id": "alice", "type": "user",
                                                      "email": "alice@example.com",
                                                      "ip": "10.0.0.1"}))
            entry = c.get("/v1/logs/default/entries/0", params={"format": "canonical"}).content
            assert b"alice@example.com" not in entry
            assert b'"email":{"$c":"' in entry
            assert c.get("/v1/logs/default/entries/0").json()["actor"]["email"] == (
                "alice@example.com")
        with server.client(token(server, "read")) as reader:
            rec = reader.get("/v1/logs/default/entries/0").json()
            assert set(rec["actor"]["email"]) == {"$c"}
            assert rec["actor"]["id"] == "alice"


class TestEventLookup:
    def test_event_by_id_comes_with_a_verifiable_proof(self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=[event(i, id=f"e{i}") for i in range(10)])
            body = c.get("/v1/events/e7").json()
            assert body["record"]["id"] == "e7"
            cp, _ = open_checkpoint(body["checkpoint"], verifiers(c))
            proof = body["proof"]
            merkle.verify_inclusion(base64.b64decode(proof["leaf_hash"]), proof["seq"],
                                    proof["tree_size"],
                                    [base64.b64decode(h) for h in proof["hashes"]], cp.root)
            assert c.get("/v1/events/nope").status_code == 404

    def test_server_assigned_ids_can_be_looked_up(self, server: ServerProcess) -> None:
        with server.client() as c:
            rid = c.post("/v1/events", json=event(1)).json()["receipts"][0]["id"]
            assert c.get(f"/v1/events/{rid}").json()["record"]["id"] == rid


class TestAccessLog:
    def test_every_read_is_recorded_in_the_access_log(self, server: ServerProcess) -> None:
        reader_token = token(server, "read")
        with server.client() as c:
            c.post("/v1/events", json=[event(i) for i in range(3)])
            wait_searchable(c, 3)
        with server.client(reader_token) as r:
            assert r.get("/v1/events", params={"actor": "user-1"}).status_code == 200
            assert r.get("/v1/logs/default/entries/1").status_code == 200
        with server.client() as c:
            admin_id = c.get("/v1/logs/default/entries/0").json()["submitter"]
            wait_searchable(c, 2, tenant="default._access")
            cp = checkpoint(c, "default._access")
            assert cp.size >= 2
            recs = [c.get(f"/v1/logs/default._access/entries/{s}").json()
                    for s in range(cp.size)]
            reads = [r for r in recs if r["actor"]["id"] != admin_id]
            actions = {r["action"] for r in reads}
            assert {"auditkeep.read.search", "auditkeep.read.entry"} <= actions
            search = next(r for r in reads if r["action"] == "auditkeep.read.search"
                          and r["metadata"]["params"].get("actor") == "user-1")
            assert search["metadata"]["results"] == 1
            assert search["category"] == "data_access"


class TestKeys:
    def test_rotation_keeps_old_keys_published_and_old_checkpoints_verifiable(
            self, server: ServerProcess) -> None:
        from click.testing import CliRunner

        from auditkeep.cli.main import cli

        with server.client() as c:
            old_note = c.post("/v1/events", json=event(1)).json()["checkpoint"]
            res = CliRunner().invoke(cli, ["keys", "rotate", "--data", str(server.data.root)])
            assert res.exit_code == 0, res.output
            time.sleep(1.2)  # the server re-reads the active key at most once a second
            new_note = c.post("/v1/events", json=event(2)).json()["checkpoint"]
            keys = c.get("/v1/keys").json()["keys"]
            default_keys = [k for k in keys if k["name"] == "auditkeep.local/default"]
            assert [k["active"] for k in default_keys].count(True) == 1
            assert len(default_keys) == 2
            vs = verifiers(c)
            _, old = open_checkpoint(old_note, vs)
            _, new = open_checkpoint(new_note, vs)
            assert old.verified[0].key_id != new.verified[0].key_id


class TestProofParameters:
    def test_out_of_range_proof_parameters_name_the_parameter(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=[event(i) for i in range(3)])
            for path, params, name in (
                    ("inclusion", {"seq": 5}, "seq"), ("inclusion", {"seq": 0, "size": 9}, "size"),
                    ("inclusion", {}, "seq"), ("consistency", {"from": 0, "to": 2}, "from"),
                    ("consistency", {"from": 1, "to": 7}, "to"),
                    ("consistency", {"from": 3, "to": 2}, "from")):
                r = c.get(f"/v1/logs/default/proof/{path}", params=params)
                assert r.status_code == 400, (path, params, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["errors"][0]["pointer"] == f"/query/{name}", (path, params)
