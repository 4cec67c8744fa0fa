"""An event recorded by the ASGI middleware travels through the real AuditClient to a real
server process and can be found there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auditkeep.client import AuditClient
from auditkeep.integrations.asgi import AuditContextMiddleware
from tests.conftest import ServerProcess
from tests.integrations.conftest import TestClient


async def delete_order(request: Request) -> Response:
    return Response(status_code=204)


def find(server: ServerProcess, action: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The events with `action`, once the server has indexed them."""
    deadline = time.monotonic() + timeout
    with server.client() as c:
        while time.monotonic() < deadline:
            r = c.get("/v1/events", params={"action": action})
            assert r.status_code == 200, r.text
            if events := r.json()["events"]:
                return list(events)
            time.sleep(0.05)
    raise AssertionError(f"no {action} event searchable within {timeout}s")


def test_asgi_mutation_reaches_the_server(server: ServerProcess, tmp_path: Path) -> None:
    client = AuditClient(server.url, server.admin_token, spool_dir=tmp_path / "spool",
                         durability="memory")
    try:
        app = Starlette(
            routes=[Route("/orders/{id}", delete_order, methods=["DELETE"])],
            middleware=[Middleware(AuditContextMiddleware, client=client, record_mutations=True,
                                   actor_resolver=lambda scope: {"id": "svc-e2e",
                                                                 "type": "service"})])
        with TestClient(app) as c:
            assert c.delete("/orders/42", headers={"X-Request-Id": "e2e-req-1"}).status_code \
                == 204
        assert client.flush(timeout=10.0)
    finally:
        client.close()
    [ev] = find(server, "http.delete")
    assert ev["actor"]["id"] == "svc-e2e"
    assert ev["actor"]["type"] == "service"
    assert ev["outcome"] == "success"
    assert ev["category"] == "data_change"
    assert ev["resource"] == {"type": "http_route", "id": "/orders/42"}
    assert ev["request_id"] == "e2e-req-1"
    assert ev["metadata"] == {"method": "DELETE", "path": "/orders/42", "status": 204}
