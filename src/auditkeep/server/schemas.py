"""`GET/PUT /v1/schemas/{action}`: per-action JSON Schemas, versioned, per tenant."""

from __future__ import annotations

import re

import orjson
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import FieldProblem, NotFoundError, ValidationError
from auditkeep.pipeline.prepare import now_utc
from auditkeep.pipeline.schema import ACTION_PATTERN
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, pipelines
from auditkeep.server.ingest import read_body

_ACTION = re.compile(ACTION_PATTERN)
MAX_SCHEMA_BYTES = 256 * 1024


def _action(request: Request) -> str:
    action: str = request.path_params["action"]
    if not _ACTION.fullmatch(action) or len(action) > 256:
        raise ValidationError(f"{action!r} is not an action name", problems=[FieldProblem(
            "/path/action", "not an action name", "a dotted verb such as orders.refund",
            action)])
    return action


async def put_schema(request: Request) -> Response:
    """Register a new version of the action's schema (scope `admin`)."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    action = _action(request)
    body = await read_body(request, MAX_SCHEMA_BYTES)
    try:
        schema = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc}", problems=[
            FieldProblem("/", "malformed JSON", "a JSON Schema", str(exc))]) from None
    version = pipelines(request).schemas.put(tenant, action, schema, now_utc())
    return json_response({"tenant": tenant, "action": action, "version": version}, status=201)


async def get_schema(request: Request) -> Response:
    """The latest (or `?version=`) schema of an action."""
    who = caller(request)
    who.require("read", "audit", "ingest")
    params.only(request, {"tenant", "version"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    action = _action(request)
    version = params.integer(request, "version", lo=1)
    found = pipelines(request).schemas.stored(tenant, action, version)
    if found is None:
        raise NotFoundError(f"no schema{f' version {version}' if version else ''} for "
                            f"{action!r} in tenant {tenant!r}")
    v, text = found
    return json_response({"tenant": tenant, "action": action, "version": v,
                          "schema": orjson.loads(text)})
