"""The published OpenAPI document describes every route the server has."""

from __future__ import annotations

import re

from auditkeep.server.app import create_app
from auditkeep.server.openapi import OPENAPI
from auditkeep.server.polls import SESSION_PATTERN
from tests.conftest import ServerProcess


def test_every_route_is_documented(node) -> None:  # type: ignore[no-untyped-def]
    app = create_app(node)
    documented = {(path, method) for path, ops in OPENAPI["paths"].items() for method in ops}
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # type: ignore[attr-defined]
        if path == "/openapi.json" or not getattr(route, "include_in_schema", True):
            continue  # the document itself, and the web UI's pages
        for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
            assert (path, method.lower()) in documented, (path, method)


def test_openapi_is_served(server: ServerProcess) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.1")
        assert "/v1/events" in doc["paths"]


def test_the_polling_session_parameter_is_documented_where_it_is_taken() -> None:
    for path in ("/v1/search", "/v1/dashboards/{name}"):
        (poll,) = [p for p in OPENAPI["paths"][path]["get"]["parameters"] if p["name"] == "poll"]
        assert poll["in"] == "query" and poll["schema"]["pattern"] == SESSION_PATTERN
    assert not [p for p in OPENAPI["paths"]["/v1/events"]["get"]["parameters"]
                if p["name"] == "poll"]
