"""Polling sessions: a live tail or dashboard refresh leaves one `_access` record per
session and minute, with counts; other reads are recorded one by one as before."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request

from auditkeep.auth import Principal
from auditkeep.datadir import DataDir, Node
from auditkeep.server.polls import GRACE, PollSessions
from auditkeep.storage.base import TokenRecord
from auditkeep.storage.sqlite import SQLiteBackend
from tests.conftest import ServerProcess
from tests.server.helpers import event, wait_indexed


def access_records(data: DataDir, tenant: str = "default") -> list[dict[str, Any]]:
    """Every record of the tenant's access log, read straight from the database."""
    store = SQLiteBackend(data.db)
    try:
        info = store.get_log(f"{tenant}._access")
        if info is None:
            return []
        return [orjson.loads(e) for b in store.read_bundles(info.id, 0, info.size)
                for e in b.entries]
    finally:
        store.close()


def of_session(records: list[dict[str, Any]], session: str) -> list[dict[str, Any]]:
    return [r for r in records if r["metadata"].get("poll", {}).get("session") == session]


def new_session() -> str:
    return uuid.uuid4().hex


def polls_in_one_minute(c: httpx.Client, path: str, n: int, **params: str) -> str:
    """`n` polls of one new session that all fall in one clock minute; its id."""
    for _ in range(3):  # a minute boundary can fall in the middle once, not three times
        session = new_session()
        start = time.time() // 60
        for _ in range(n):
            r = c.get(path, params={**params, "poll": session})
            assert r.status_code == 200, r.text
        if time.time() // 60 == start:
            return session
    raise AssertionError("three minute boundaries in three short loops")


@pytest.fixture
def srv(server: ServerProcess) -> ServerProcess:
    with server.client() as c:
        assert c.post("/v1/events", json=[event(i) for i in range(3)]).status_code == 201
        wait_indexed(c)
    return server


class TestLiveTail:
    def test_polls_of_one_minute_are_one_record_with_their_counts(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            session = polls_in_one_minute(c, "/v1/search", 7, query="action:orders.delete")
        srv.stop()  # shutdown flushes the counts of the open minute
        first, totals = of_session(access_records(srv.data), session)
        assert first["action"] == "auditkeep.read.search"
        assert first["metadata"]["results"] == 3
        assert first["metadata"]["params"]["query"] == "action:orders.delete"
        assert first["metadata"]["poll"]["minute"].endswith(":00Z")
        assert totals["action"] == "auditkeep.read.search.polls"
        assert totals["metadata"]["poll"] == {"session": session, "polls": 7, "results": 21,
                                              "minute": first["metadata"]["poll"]["minute"]}

    def test_the_first_poll_is_on_the_record_before_it_is_answered(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            session = new_session()
            assert c.get("/v1/search", params={"poll": session}).status_code == 200
            (first,) = of_session(access_records(srv.data), session)
            assert first["metadata"]["poll"]["session"] == session

    def test_another_query_in_the_same_session_is_recorded_again(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            for _ in range(3):  # until all three polls fall in one minute
                session, start = new_session(), time.time() // 60
                for q in ("action:orders.delete", "outcome:failure", "action:orders.delete"):
                    r = c.get("/v1/search", params={"query": q, "poll": session})
                    assert r.status_code == 200, r.text
                if time.time() // 60 == start:
                    break
            got = of_session(access_records(srv.data), session)
        assert [r["metadata"]["params"]["query"] for r in got] \
            == ["action:orders.delete", "outcome:failure"]

    def test_searches_without_a_session_are_recorded_one_by_one(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            before = len(access_records(srv.data))
            for _ in range(4):
                assert c.get("/v1/search", params={"query": ""}).status_code == 200
            new = access_records(srv.data)[before:]
        assert [r["action"] for r in new] == ["auditkeep.read.search"] * 4
        assert all("poll" not in r["metadata"] for r in new)


class TestDashboards:
    def test_refreshes_of_one_minute_are_one_record_with_their_counts(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            session = polls_in_one_minute(c, "/v1/dashboards/oncall", 4)
            assert c.get("/v1/dashboards/oncall").status_code == 200  # a plain load
        srv.stop()
        records = access_records(srv.data)
        first, totals = of_session(records, session)
        assert first["action"] == "auditkeep.read.dashboard"
        assert totals["action"] == "auditkeep.read.dashboard.polls"
        assert totals["metadata"]["poll"]["polls"] == 4
        plain = [r for r in records if "poll" not in r["metadata"]]
        assert [r["action"] for r in plain] == ["auditkeep.read.dashboard"]  # on its own


class TestBadSessions:
    def test_a_bad_session_id_is_a_problem_naming_the_parameter(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            for value, path in itertools.product(
                    ["", "short", "x" * 65, "has space in it 123", "../../etc/passwd/xxxx"],
                    ["/v1/search", "/v1/dashboards/oncall"]):
                r = c.get(path, params={"poll": value})
                assert r.status_code == 400, (value, path, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                (problem,) = r.json()["errors"]
                assert problem["pointer"] == "/query/poll"

    def test_the_filter_search_takes_no_session(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.get("/v1/events", params={"poll": new_session()})
        assert r.status_code == 400
        assert [p["pointer"] for p in r.json()["errors"]] == ["/query/poll"]


# the session table itself, with a clock the test moves ----------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # on a minute boundary

    def __call__(self) -> float:
        return self.now


def request(query: str = "") -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/search", "headers": [],
                    "query_string": query.encode(), "scheme": "http",
                    "server": ("127.0.0.1", 80), "root_path": ""})


WHO = Principal(TokenRecord("tok_poller", None, ("admin",), "poller", "t"))


async def poll(sessions: PollSessions, session: str, results: int = 2) -> None:
    await sessions.record(request(), WHO, "default", "search", "", {}, results, session)


def records(node: Node) -> list[dict[str, Any]]:
    name = "default._access"
    return [orjson.loads(node.logs.entry(name, s)) for s in range(node.logs.size(name))]


class TestSessionTable:
    def test_the_next_minute_carries_the_counts_of_the_last(self, node: Node) -> None:
        clock = Clock()
        sessions = PollSessions(node, clock=clock)

        async def tail() -> None:
            for _ in range(3):
                await poll(sessions, "s" * 16)
                clock.now += 10
            clock.now += 35  # into the next minute
            await poll(sessions, "s" * 16, results=5)
            assert sessions.sweep() == []  # the next minute is still open

        asyncio.run(tail())
        first, second = records(node)
        assert "previous" not in first["metadata"]["poll"]
        assert second["metadata"]["poll"]["previous"] == {
            "minute": first["metadata"]["poll"]["minute"], "polls": 3, "results": 6}
        assert second["metadata"]["results"] == 5

    def test_an_idle_session_is_flushed_after_its_minute_and_forgotten(
            self, node: Node) -> None:
        clock = Clock()
        sessions = PollSessions(node, clock=clock)

        async def tail() -> None:
            await poll(sessions, "a" * 16)
            await poll(sessions, "a" * 16)
            await poll(sessions, "b" * 16)  # one poll: its own record says it all
            clock.now = 1_800_000_000.0 + 60 + GRACE - 1
            assert sessions.sweep() == []
            assert len(sessions) == 2
            clock.now += 1
            for f in sessions.sweep():
                f.result(10)
            assert len(sessions) == 0

        asyncio.run(tail())
        assert [(r["action"], r["metadata"]["poll"].get("polls")) for r in records(node)] == [
            ("auditkeep.read.search", None), ("auditkeep.read.search", None),
            ("auditkeep.read.search.polls", 2)]

    def test_beyond_the_cap_polls_are_recorded_one_by_one(self, node: Node) -> None:
        sessions = PollSessions(node, clock=Clock(), max_sessions=1)

        async def tail() -> None:
            await poll(sessions, "a" * 16)
            await poll(sessions, "b" * 16)
            await poll(sessions, "b" * 16)

        asyncio.run(tail())
        assert len(sessions) == 1
        got = records(node)
        assert [r["metadata"]["poll"]["session"] for r in got] == ["a" * 16, "b" * 16, "b" * 16]
        assert ["minute" in r["metadata"]["poll"] for r in got] == [True, False, False]
