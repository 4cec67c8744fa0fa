"""The AuditKeep Flask extension, through Flask's own test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from auditkeep import context
from auditkeep.client import set_default_client
from auditkeep.errors import ConfigError
from auditkeep.integrations.flask import AuditKeep
from tests.integrations.conftest import RecordingClient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def user_of(request: flask.Request) -> str | None:
    return request.headers.get("X-User")


def make_app(*, propagate: bool = True) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["PROPAGATE_EXCEPTIONS"] = propagate

    @app.route("/ctx", methods=["GET", "POST"])
    def ctx() -> Any:
        return context.current()

    @app.route("/orders", methods=["POST", "PUT", "PATCH", "DELETE"])
    def orders() -> Any:
        return "made", 201

    @app.post("/denied/<int:status>")
    def denied(status: int) -> Any:
        flask.abort(status)

    @app.post("/boom")
    def boom() -> Any:
        raise RuntimeError("the view failed")

    return app


@pytest.fixture
def no_default_client() -> Iterator[None]:
    set_default_client(None)
    yield
    set_default_client(None)


class TestContextBinding:
    def test_request_fields_are_bound_in_the_view(self) -> None:
        app = make_app()
        AuditKeep(app, actor_resolver=user_of)
        got = app.test_client().get("/ctx", headers={
            "X-User": "alice", "X-Request-Id": "req-7", "traceparent": TRACEPARENT}).json
        assert got == {"actor": {"id": "alice", "type": "user"}, "request_id": "req-7",
                       "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                       "span_id": "00f067aa0ba902b7"}

    def test_fresh_request_id_and_no_actor_by_default(self) -> None:
        app = make_app()
        AuditKeep(app)
        c = app.test_client()
        first, second = c.get("/ctx").json, c.get("/ctx").json
        assert first is not None and second is not None
        assert re.fullmatch(r"[0-9a-f]{32}", first["request_id"])
        assert first["request_id"] != second["request_id"]
        assert "actor" not in first

    def test_binding_is_reset_after_the_request(self) -> None:
        # Flask's test client serves the request in this very context, so a leak shows here.
        app = make_app()
        AuditKeep(app, actor_resolver=user_of)
        app.test_client().get("/ctx", headers={"X-User": "alice"})
        assert context.current() == {}

    def test_reset_also_after_a_propagated_exception(self, recorder: RecordingClient) -> None:
        app = make_app()
        AuditKeep(app, actor_resolver=user_of, client=recorder, record_mutations=True)
        with pytest.raises(RuntimeError):
            app.test_client().post("/boom", headers={"X-User": "alice"})
        assert context.current() == {}

    def test_app_before_request_hooks_see_the_context(self) -> None:
        app = make_app()
        seen: list[dict[str, Any]] = []
        app.before_request(lambda: seen.append(context.current()))  # registered first
        AuditKeep(app, actor_resolver=user_of)
        app.test_client().get("/ctx", headers={"X-User": "bob"})
        assert seen[0]["actor"] == {"id": "bob", "type": "user"}

    def test_requests_inside_a_shared_app_context_each_reset(self) -> None:
        # An app context pushed by the caller is shared by the requests made inside it, and
        # so is flask.g: each request must still undo only its own binding.
        app = make_app()
        AuditKeep(app, actor_resolver=user_of)
        inner: list[Any] = []

        @app.get("/outer")
        def outer() -> Any:
            inner.append(app.test_client().get("/ctx", headers={"X-User": "inner"}).json)
            return context.current()

        with app.app_context():
            got = app.test_client().get("/outer", headers={"X-User": "outer"}).json
            assert context.current() == {}
        assert inner[0]["actor"]["id"] == "inner"
        assert got is not None and got["actor"]["id"] == "outer"

    def test_request_that_never_bound_leaves_the_outer_binding(self) -> None:
        # A url_value_preprocessor runs before every before_request hook; when it fails, the
        # inner request's teardown must not undo the outer request's binding.
        app = make_app(propagate=False)
        AuditKeep(app, actor_resolver=user_of)

        @app.url_value_preprocessor
        def refuse(endpoint: str | None, values: dict[str, Any] | None) -> None:
            if endpoint == "ctx" and flask.request.headers.get("X-Break"):
                raise RuntimeError("preprocessor failed")

        @app.get("/outer")
        def outer() -> Any:
            status = app.test_client().get("/ctx", headers={"X-Break": "1"}).status_code
            return {"inner": status, **context.current()}

        with app.app_context():
            got = app.test_client().get("/outer", headers={"X-User": "outer"}).json
            assert context.current() == {}
        assert got is not None
        assert got["inner"] == 500
        assert got["actor"]["id"] == "outer"

    def test_init_app_factory_pattern(self, recorder: RecordingClient) -> None:
        audit = AuditKeep(client=recorder, record_mutations=True)
        app = make_app()
        audit.init_app(app)
        app.test_client().post("/orders")
        assert app.extensions["auditkeep"] is audit
        assert recorder.actions() == ["http.post"]


class TestRecordingMutations:
    def test_post_is_recorded(self, recorder: RecordingClient) -> None:
        app = make_app()
        AuditKeep(app, actor_resolver=user_of, client=recorder, record_mutations=True)
        app.test_client().post("/orders", headers={"X-User": "alice", "X-Request-Id": "r-9"})
        [ev] = recorder.events
        assert ev["action"] == "http.post"
        assert ev["actor"] == {"id": "alice", "type": "user"}
        assert ev["outcome"] == "success"
        assert ev["category"] == "data_change"
        assert ev["resource"] == {"type": "http_route", "id": "/orders"}
        assert ev["metadata"] == {"method": "POST", "path": "/orders", "status": 201}
        assert ev["request_id"] == "r-9"

    def test_only_mutating_methods_are_recorded(self, recorder: RecordingClient) -> None:
        app = make_app()
        AuditKeep(app, client=recorder, record_mutations=True)
        c = app.test_client()
        c.get("/ctx")
        c.head("/ctx")
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            c.open("/orders", method=method)
        assert recorder.actions() == ["http.post", "http.put", "http.patch", "http.delete"]
        assert all(e["actor"] == {"id": "anonymous", "type": "anonymous"}
                   for e in recorder.events)

    @pytest.mark.parametrize(("status", "outcome"), [
        (401, "denied"), (403, "denied"), (404, "failure"), (400, "failure")])
    def test_aborts_map_to_outcomes(self, recorder: RecordingClient, status: int,
                                    outcome: str) -> None:
        app = make_app()
        AuditKeep(app, client=recorder, record_mutations=True)
        assert app.test_client().post(f"/denied/{status}").status_code == status
        [ev] = recorder.events
        assert (ev["outcome"], ev["metadata"]["status"]) == (outcome, status)

    def test_propagated_exception_is_unknown(self, recorder: RecordingClient) -> None:
        app = make_app(propagate=True)
        AuditKeep(app, client=recorder, record_mutations=True)
        with pytest.raises(RuntimeError, match="the view failed"):
            app.test_client().post("/boom")
        [ev] = recorder.events
        assert ev["outcome"] == "unknown"
        assert ev["metadata"]["status"] is None

    def test_exception_turned_into_500_is_still_unknown(self, recorder: RecordingClient
                                                        ) -> None:
        app = make_app(propagate=False)
        AuditKeep(app, client=recorder, record_mutations=True)
        assert app.test_client().post("/boom").status_code == 500
        [ev] = recorder.events
        assert (ev["outcome"], ev["metadata"]["status"]) == ("unknown", 500)

    def test_action_resolver(self, recorder: RecordingClient) -> None:
        app = make_app()
        AuditKeep(app, client=recorder, record_mutations=True,
                  action_resolver=lambda request: f"orders.{request.method.lower()}")
        app.test_client().delete("/orders")
        assert recorder.actions() == ["orders.delete"]

    def test_nothing_recorded_unless_asked(self, recorder: RecordingClient) -> None:
        app = make_app()
        AuditKeep(app, client=recorder)
        app.test_client().post("/orders")
        assert recorder.events == []

    def test_recording_without_any_client_fails_at_init_app(self, no_default_client: None
                                                            ) -> None:
        audit = AuditKeep(record_mutations=True)
        with pytest.raises(ConfigError, match="no client"):
            audit.init_app(make_app())

    def test_default_client_is_found_at_init_app(self, recorder: RecordingClient,
                                                 no_default_client: None) -> None:
        audit = AuditKeep(record_mutations=True)
        set_default_client(recorder)  # type: ignore[arg-type]  # a stand-in for AuditClient
        app = make_app()
        audit.init_app(app)
        app.test_client().put("/orders")
        assert recorder.actions() == ["http.put"]
