"""AuditContextMiddleware under a real Starlette app and TestClient, and as raw ASGI."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from auditkeep import context
from auditkeep.client import set_default_client
from auditkeep.errors import ConfigError
from auditkeep.integrations.asgi import AuditContextMiddleware
from tests.integrations.conftest import RecordingClient, TestClient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def bound(request: Request) -> Response:
    return JSONResponse(context.current())


async def create(request: Request) -> Response:
    return PlainTextResponse("made", status_code=201)


async def forbidden(request: Request) -> Response:
    return PlainTextResponse("no", status_code=int(request.query_params["status"]))


async def boom(request: Request) -> Response:
    raise RuntimeError("the view failed")


def user_of(scope: dict[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-user":
            return str(value.decode())
    return None


def make_app(**options: Any) -> Starlette:
    routes = [Route("/ctx", bound, methods=["GET", "POST"]),
              Route("/orders", create, methods=["POST", "PUT", "PATCH", "DELETE"]),
              Route("/status", forbidden, methods=["POST"]),
              Route("/boom", boom, methods=["GET", "POST"])]
    return Starlette(routes=routes, middleware=[Middleware(AuditContextMiddleware, **options)])


@pytest.fixture
def no_default_client() -> Iterator[None]:
    set_default_client(None)
    yield
    set_default_client(None)


class TestContextBinding:
    def test_request_id_header_is_bound(self) -> None:
        with TestClient(make_app()) as c:
            got = c.get("/ctx", headers={"X-Request-Id": "req-42"}).json()
        assert got["request_id"] == "req-42"

    def test_fresh_request_id_per_request_without_header(self) -> None:
        with TestClient(make_app()) as c:
            first = c.get("/ctx").json()["request_id"]
            second = c.get("/ctx").json()["request_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", first)
        assert first != second

    @pytest.mark.parametrize("header", ["x" * 257, "bad\x01id", "   "])
    def test_unusable_request_id_is_replaced(self, header: str) -> None:
        with TestClient(make_app()) as c:
            got = c.get("/ctx", headers={"X-Request-Id": header}).json()
        assert re.fullmatch(r"[0-9a-f]{32}", got["request_id"])

    def test_traceparent_gives_trace_and_span_ids(self) -> None:
        with TestClient(make_app()) as c:
            got = c.get("/ctx", headers={"traceparent": TRACEPARENT}).json()
        assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert got["span_id"] == "00f067aa0ba902b7"

    @pytest.mark.parametrize("header", [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "garbage",
    ])
    def test_invalid_traceparent_is_ignored(self, header: str) -> None:
        with TestClient(make_app()) as c:
            got = c.get("/ctx", headers={"traceparent": header}).json()
        assert "trace_id" not in got and "span_id" not in got

    def test_later_traceparent_version_may_carry_more_fields(self) -> None:
        header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes"
        with TestClient(make_app()) as c:
            got = c.get("/ctx", headers={"traceparent": header}).json()
        assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"

    def test_actor_comes_from_the_resolver(self) -> None:
        with TestClient(make_app(actor_resolver=user_of)) as c:
            alice = c.get("/ctx", headers={"X-User": "alice"}).json()
            nobody = c.get("/ctx").json()
        assert alice["actor"] == {"id": "alice", "type": "user"}
        assert "actor" not in nobody

    def test_no_actor_bound_by_default(self) -> None:
        with TestClient(make_app()) as c:
            assert "actor" not in c.get("/ctx", headers={"X-User": "alice"}).json()

    def test_binding_ends_with_the_request(self) -> None:
        seen: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(context.current())

        async def run() -> dict[str, Any]:
            mw = AuditContextMiddleware(app, actor_resolver=lambda scope: "alice")
            await mw(_scope("GET"), _no_body, _discard)
            return context.current()

        after = asyncio.run(run())
        assert seen[0]["actor"] == {"id": "alice", "type": "user"}
        assert after == {}

    def test_lifespan_and_websocket_scopes_pass_through_unbound(self) -> None:
        seen: list[tuple[str, dict[str, Any]]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append((scope["type"], context.current()))

        mw = AuditContextMiddleware(app, actor_resolver=lambda scope: "alice")
        asyncio.run(mw({"type": "lifespan"}, _no_body, _discard))
        asyncio.run(mw({"type": "websocket", "path": "/ws", "headers": []}, _no_body, _discard))
        assert seen == [("lifespan", {}), ("websocket", {})]


class TestRecordingMutations:
    def test_post_is_recorded_with_context(self, recorder: RecordingClient) -> None:
        app = make_app(client=recorder, record_mutations=True, actor_resolver=user_of)
        with TestClient(app) as c:
            r = c.post("/orders", headers={"X-User": "alice", "X-Request-Id": "r-1",
                                           "traceparent": TRACEPARENT})
        assert r.status_code == 201
        [ev] = recorder.events
        assert ev["action"] == "http.post"
        assert ev["actor"] == {"id": "alice", "type": "user"}
        assert ev["outcome"] == "success"
        assert ev["category"] == "data_change"
        assert ev["resource"] == {"type": "http_route", "id": "/orders"}
        assert ev["metadata"] == {"method": "POST", "path": "/orders", "status": 201}
        assert ev["request_id"] == "r-1"
        assert ev["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert ev["span_id"] == "00f067aa0ba902b7"

    def test_each_mutating_method_is_recorded_and_reads_are_not(
            self, recorder: RecordingClient) -> None:
        with TestClient(make_app(client=recorder, record_mutations=True)) as c:
            c.get("/ctx")
            c.head("/ctx")
            c.options("/ctx")
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                c.request(method, "/orders")
        assert recorder.actions() == ["http.post", "http.put", "http.patch", "http.delete"]

    def test_without_actor_the_event_is_anonymous(self, recorder: RecordingClient) -> None:
        with TestClient(make_app(client=recorder, record_mutations=True)) as c:
            c.post("/orders")
        assert recorder.events[0]["actor"] == {"id": "anonymous", "type": "anonymous"}

    @pytest.mark.parametrize(("status", "outcome"), [
        (401, "denied"), (403, "denied"), (404, "failure"), (409, "failure"), (422, "failure"),
        (500, "failure"), (302, "success"), (204, "success"),
    ])
    def test_outcome_follows_the_status(self, recorder: RecordingClient, status: int,
                                        outcome: str) -> None:
        with TestClient(make_app(client=recorder, record_mutations=True)) as c:
            c.post(f"/status?status={status}", follow_redirects=False)
        [ev] = recorder.events
        assert (ev["outcome"], ev["metadata"]["status"]) == (outcome, status)

    def test_unrouted_path_is_a_failure(self, recorder: RecordingClient) -> None:
        with TestClient(make_app(client=recorder, record_mutations=True)) as c:
            assert c.post("/nowhere").status_code == 404
        assert recorder.events[0]["outcome"] == "failure"
        assert recorder.events[0]["resource"]["id"] == "/nowhere"

    def test_app_exception_is_recorded_as_unknown_and_re_raised(
            self, recorder: RecordingClient) -> None:
        with TestClient(make_app(client=recorder, record_mutations=True)) as c, \
                pytest.raises(RuntimeError, match="the view failed"):
            c.post("/boom")
        [ev] = recorder.events
        assert ev["outcome"] == "unknown"
        assert ev["metadata"] == {"method": "POST", "path": "/boom", "status": None}

    def test_action_resolver_names_the_action(self, recorder: RecordingClient) -> None:
        def action(scope: dict[str, Any]) -> str:
            return "orders." + {"POST": "create", "DELETE": "delete"}[scope["method"]]

        app = make_app(client=recorder, record_mutations=True, action_resolver=action)
        with TestClient(app) as c:
            c.post("/orders")
            c.delete("/orders")
        assert recorder.actions() == ["orders.create", "orders.delete"]

    def test_action_resolver_sees_the_route(self, recorder: RecordingClient) -> None:
        app = make_app(client=recorder, record_mutations=True,
                       action_resolver=lambda scope: f"api.{scope['endpoint'].__name__}")
        with TestClient(app) as c:
            c.patch("/orders")
        assert recorder.actions() == ["api.create"]

    def test_events_are_not_recorded_unless_asked(self, recorder: RecordingClient) -> None:
        with TestClient(make_app(client=recorder)) as c:
            c.post("/orders")
        assert recorder.events == []

    def test_recording_without_any_client_fails_at_set_up(self, no_default_client: None
                                                          ) -> None:
        with pytest.raises(ConfigError, match="no client"):
            AuditContextMiddleware(_discard_app, record_mutations=True)

    def test_default_client_is_used(self, recorder: RecordingClient,
                                    no_default_client: None) -> None:
        set_default_client(recorder)  # type: ignore[arg-type]  # a stand-in for AuditClient
        with TestClient(make_app(record_mutations=True)) as c:
            c.post("/orders")
        assert recorder.actions() == ["http.post"]


class TestStreaming:
    def test_response_body_is_forwarded_before_the_app_finishes(
            self, recorder: RecordingClient) -> None:
        sent: list[dict[str, Any]] = []
        progress: list[int] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"one", "more_body": True})
            progress.append(len(sent))  # what the server had got by then
            await send({"type": "http.response.body", "body": b"two", "more_body": False})

        async def server_send(message: dict[str, Any]) -> None:
            sent.append(message)

        mw = AuditContextMiddleware(app, client=recorder, record_mutations=True)
        asyncio.run(mw(_scope("POST"), _no_body, server_send))
        assert progress == [2]
        assert [m.get("body") for m in sent] == [None, b"one", b"two"]
        assert recorder.events[0]["metadata"]["status"] == 200

    def test_receive_is_handed_to_the_app_untouched(self, recorder: RecordingClient) -> None:
        got: list[Any] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            got.append(receive)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        mw = AuditContextMiddleware(app, client=recorder, record_mutations=True)
        asyncio.run(mw(_scope("PUT"), _no_body, _discard))
        assert got == [_no_body]

    def test_streamed_request_body_reaches_the_app(self, recorder: RecordingClient) -> None:
        async def echo(request: Request) -> Response:
            chunks = [chunk async for chunk in request.stream()]
            return PlainTextResponse(str(len(b"".join(chunks))))

        app = Starlette(routes=[Route("/up", echo, methods=["POST"])],
                        middleware=[Middleware(AuditContextMiddleware, client=recorder,
                                               record_mutations=True)])

        def body() -> Iterator[bytes]:
            yield b"a" * 1000
            yield b"b" * 1000

        with TestClient(app) as c:
            assert c.post("/up", content=body()).text == "2000"
        assert recorder.events[0]["outcome"] == "success"


def _scope(method: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/x", "headers": []}


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


async def _discard_app(scope: Any, receive: Any, send: Any) -> None:
    return None
