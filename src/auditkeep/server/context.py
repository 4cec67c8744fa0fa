"""What every handler needs: the node, the caller, and the access log."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal, authenticate
from auditkeep.datadir import Node
from auditkeep.log.sequencer import AppendResult
from auditkeep.log.service import access_log_name, tenant_of
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.server.pipelines import Pipelines


def node(request: Request) -> Node:
    n: Node = request.app.state.node
    return n


def pipelines(request: Request) -> Pipelines:
    p: Pipelines = request.app.state.pipelines
    return p


def caller(request: Request) -> Principal:
    return authenticate(node(request).store, request.headers.get("authorization"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def append_access(n: Node, who: Principal, tenant: str, action: str,
                  metadata: dict[str, Any]) -> Future[AppendResult]:
    """Queue one `auditkeep.read.<action>` record for the tenant's `_access` log."""
    event = Event(
        action=f"auditkeep.read.{action}",
        actor=Actor(id=who.id, type="service"),
        outcome="success",
        category="data_access",
        resource=Resource(type="log", id=tenant),
        metadata=metadata,
    )
    owner = tenant_of(tenant)  # reads of T._access are recorded in T._access too
    pendings = prepare([event], tenant=owner, submitter=who.id, may_set_tenant=True)
    slis = n.options.get("slis")
    if slis is not None:  # the audit-access SLI (auditkeep_access_records)
        slis.access(action)
    return n.logs.append(access_log_name(owner), pendings)


async def record_access(request: Request, who: Principal, tenant: str, action: str,
                        details: dict[str, Any], results: int) -> None:
    """Append who-read-what to the tenant's `_access` log, and wait until it is durable:
    a read is answered only once it is on the record."""
    metadata = {"path": request.url.path, "params": details, "results": results}
    await asyncio.wrap_future(append_access(node(request), who, tenant, action, metadata))
