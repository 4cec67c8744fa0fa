"""Bad input: each is a 4xx problem+json naming the field, and the tree does not grow."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess
from tests.server.helpers import event, size_of

PROBLEM = "application/problem+json"


def deep(n: int) -> dict[str, Any]:
    d: dict[str, Any] = {"leaf": 1}
    for _ in range(n - 1):
        d = {"x": d}
    return d


CASES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("malformed JSON", b'{"action": "a.b", "actor": ', {}, 400, "/"),
    ("wrong type", orjson.dumps(event(1, actor={"id": 5, "type": "user"})), {}, 400,
     "/actor/id"),
    ("unknown field", orjson.dumps(event(1, colour="red")), {}, 400, "/colour"),
    ("naive timestamp", orjson.dumps(event(1, time="2026-01-01T00:00:00")), {}, 400, "/time"),
    ("invalid UTF-8", b'{"action":"a.b","actor":{"id":"\xff","type":"user"},"outcome":"success"}',
     {}, 400, "/"),
    ("bad enum", orjson.dumps(event(1, outcome="maybe")), {}, 400, "/outcome"),
    ("wrong type inside a list", orjson.dumps(event(1, changes=[{"field": 5}])), {}, 400,
     "/changes/0/field"),
    ("missing field", orjson.dumps({"action": "a.b", "outcome": "success"}), {}, 400, "/actor"),
    ("too deep metadata", orjson.dumps(event(1, metadata=deep(9))), {}, 400, "/metadata"),
    ("too many metadata keys", orjson.dumps(event(1, metadata={f"k{i}": i for i in range(101)})),
     {}, 400, "/metadata"),
    ("oversize event", orjson.dumps(event(1, metadata={"blob": "x" * 70_000})), {}, 413, "/"),
    ("unsafe integer", orjson.dumps(event(1, metadata={"n": 2**60})), {}, 400,
     "/metadata/n"),
    ("bad id", orjson.dumps(event(1, id="has space")), {}, 400, "/id"),
    ("bad trace id", orjson.dumps(event(1, trace_id="xyz")), {}, 400, "/trace_id"),
    ("second event bad in ndjson",
     orjson.dumps(event(1)) + b"\n" + orjson.dumps(event(2, outcome=3)) + b"\n",
     {"Content-Type": "application/x-ndjson"}, 400, "/1/outcome"),
    ("two events on one ndjson line",
     orjson.dumps(event(1)) + b"," + orjson.dumps(event(2)) + b"\n",
     {"Content-Type": "application/x-ndjson"}, 400, "/0"),
    ("empty array", b"[]", {}, 400, "/"),
]


class TestRejectedBodies:
    @pytest.mark.parametrize(("name", "body", "headers", "status", "pointer"), CASES,
                             ids=[c[0] for c in CASES])
    def test_rejected_with_problem_naming_the_field(
            self, server: ServerProcess, name: str, body: bytes, headers: dict[str, str],
            status: int, pointer: str) -> None:
        with server.client() as c:
            before = size_of(c)
            r = c.post("/v1/events", content=body,
                       headers={"Content-Type": "application/json", **headers})
            assert r.status_code == status, r.text
            assert r.headers["content-type"] == PROBLEM
            problem = r.json()
            assert problem["status"] == status
            assert problem["type"].startswith("urn:auditkeep:problem:")
            pointers = [e["pointer"] for e in problem.get("errors", [])]
            assert any(p == pointer or p.startswith(pointer.rstrip("/") + "/")
                       for p in pointers), pointers
            assert size_of(c) == before

    def test_every_invalid_event_of_a_batch_is_listed(self, server: ServerProcess) -> None:
        batch = [event(0), event(1, outcome="nope"), event(2), event(3, actor={"id": "x"})]
        with server.client() as c:
            r = c.post("/v1/events", json=batch)
            assert r.status_code == 400
            errors = r.json()["errors"]
            assert [e["index"] for e in errors] == [1, 3]
            assert errors[0]["pointer"] == "/1/outcome"
            assert size_of(c) == 0

    def test_type_errors_say_what_was_expected_and_what_arrived(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/events", json=event(1, actor={"id": 5, "type": "user"}))
            (err,) = r.json()["errors"]
            assert err["expected"] == "str"
            assert err["actual"] == "int"

    def test_oversize_body_is_413_without_reading_it_all(self, server: ServerProcess) -> None:
        big = b"[" + b",".join([orjson.dumps(event(1))] * 80_000) + b"]"
        assert len(big) > 10 * 1024 * 1024
        with server.client() as c:
            r = c.post("/v1/events", content=big, headers={"Content-Type": "application/json"})
            assert r.status_code == 413
            assert r.headers["content-type"] == PROBLEM
            assert size_of(c) == 0

    def test_too_many_events_is_413(self, server: ServerProcess) -> None:
        small = {"action": "a.b", "actor": {"id": "u", "type": "user"}, "outcome": "success"}
        with server.client() as c:
            r = c.post("/v1/events", json=[small] * 10_001)
            assert r.status_code == 413
            assert "10000" in r.json()["detail"]
            assert size_of(c) == 0


class TestAccess:
    def test_missing_token_is_401_problem(self, server: ServerProcess) -> None:
        r = httpx.post(server.url + "/v1/events", json=event(1))
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"].startswith("Bearer")

    def test_unknown_token_is_401(self, server: ServerProcess) -> None:
        with server.client("ak_not-a-real-token") as c:
            assert c.post("/v1/events", json=event(1)).status_code == 401

    def test_token_of_another_tenant_is_403_and_stores_nothing(
            self, server: ServerProcess) -> None:
        from auditkeep.auth import create_token
        from auditkeep.storage.sqlite import SQLiteBackend

        store = SQLiteBackend(server.data.db)
        acme, _ = create_token(store, tenant="acme", scopes=["ingest", "read"])
        store.close()
        with server.client(acme) as c:
            r = c.post("/v1/events", json=event(1, tenant="globex"))
            assert r.status_code == 403
            assert r.json()["errors"][0]["pointer"] == "/tenant"
            r = c.get("/v1/logs/globex/checkpoint")
            assert r.status_code == 403
            r = c.get("/v1/events", params={"tenant": "globex"})
            assert r.status_code == 403
        with server.client() as admin:
            assert size_of(admin, "globex") == 0

    def test_ingest_only_token_cannot_search(self, server: ServerProcess) -> None:
        from auditkeep.auth import create_token
        from auditkeep.storage.sqlite import SQLiteBackend

        store = SQLiteBackend(server.data.db)
        tok, _ = create_token(store, tenant="acme", scopes=["ingest"])
        store.close()
        with server.client(tok) as c:
            assert c.post("/v1/events", json=event(1)).status_code == 201
            r = c.get("/v1/events")
            assert r.status_code == 403
            assert "read" in r.json()["detail"]

    def test_unknown_route_is_a_problem(self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.get("/v1/nope")
            assert r.status_code == 404
            assert r.headers["content-type"] == PROBLEM
