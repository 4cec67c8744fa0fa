"""Legal holds over HTTP (retention/holds.py; docs/holds.md).

Creating and releasing a hold needs the `admin` scope: it decides what retention may
delete, for every reader of the tenant. Reading holds needs `audit` (or admin), bound
to the token's tenant. A hold list is audit configuration, not audit data, so reading
it is not access-logged; the count of matching events (`GET /v1/holds/{id}`) is a read
of the tenant's events and is.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.datadir import Node
from auditkeep.errors import FieldProblem, NotFoundError, ValidationError
from auditkeep.query.fields import time_us
from auditkeep.query.index import Window
from auditkeep.query.lang import parse
from auditkeep.retention.holds import create_hold, hold_json, release_hold
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access
from auditkeep.storage.base import HoldRecord

#: Matching events are counted up to this many (a count, not an export).
MAX_COUNT = 10_000
_CREATE_FIELDS = ("query", "reason", "since", "until")
_RELEASE_FIELDS = ("reason",)


async def list_holds(request: Request) -> Response:
    """`GET /v1/holds?tenant=&active=true|false`: oldest first. An admin naming no
    tenant sees every tenant's holds."""
    who = caller(request)
    who.require("audit")
    params.only(request, {"tenant", "active"})
    tenant = _reading_tenant(who, request)
    active = _active(request)
    holds = node(request).store.holds(tenant, active=active)
    return json_response({"holds": [hold_json(h) for h in holds]})


async def get_hold(request: Request) -> Response:
    """`GET /v1/holds/{id}`: one hold, and how many events of the tenant's log match it
    in hot storage now (up to MAX_COUNT; access-logged)."""
    who = caller(request)
    who.require("audit")
    params.only(request, {"tenant"})
    n = node(request)
    hold = _find(n, who, request, request.path_params["id"])
    count = await run_in_threadpool(_matching, n, hold)
    await record_access(request, who, hold.tenant, "hold", {"hold": hold.id},
                        count if count is not None else 0)
    body = hold_json(hold)
    body["matching"] = count
    body["matching_capped"] = count is not None and count >= MAX_COUNT
    return json_response(body)


async def post_hold(request: Request) -> Response:
    """`POST /v1/holds?tenant=` `{"query", "reason", "since"?, "until"?}`: 201 with the hold."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    body = _body(await request.body(), _CREATE_FIELDS)
    hold = await run_in_threadpool(
        create_hold, node(request).logs, tenant, body.get("query"), body.get("reason"),
        since=body.get("since"), until=body.get("until"), created_by=who.id)
    return json_response(hold_json(hold), status=201,
                         headers={"Location": f"/v1/holds/{hold.id}?tenant={tenant}"})


async def post_release(request: Request) -> Response:
    """`POST /v1/holds/{id}/release` `{"reason"}`: 404 unknown, 409 released already."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    n = node(request)
    body = _body(await request.body(), _RELEASE_FIELDS)
    hold = _find(n, who, request, request.path_params["id"])
    released = await run_in_threadpool(release_hold, n.logs, hold.tenant, hold.id,
                                       released_by=who.id, reason=body.get("reason"))
    return json_response(hold_json(released))


def _find(n: Node, who: Principal, request: Request, hold_id: str) -> HoldRecord:
    """The hold by id, in the named (or the token's) tenant; an admin naming no tenant
    finds it in any tenant, ids being random."""
    tenant = _reading_tenant(who, request)
    if tenant is not None:
        hold = n.store.get_hold(tenant, hold_id)
    else:
        hold = next((h for h in n.store.holds() if h.id == hold_id), None)
    if hold is None:
        where = f"tenant {tenant!r}" if tenant is not None else "any tenant"
        raise NotFoundError(f"no hold {hold_id!r} in {where}")
    return hold


def _reading_tenant(who: Principal, request: Request) -> str | None:
    requested = request.query_params.get("tenant")
    if who.is_admin and who.token.tenant is None and not requested:
        return None
    return who.tenant_for(requested)


def _active(request: Request) -> bool | None:
    raw = request.query_params.get("active")
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise params.bad("active", "expected true or false", "true|false", raw)
    return raw == "true"


def _matching(n: Node, hold: HoldRecord) -> int | None:
    """Events of the tenant's log matching the hold in hot storage, by the search index
    (None: the tenant has no log or the index cannot say)."""
    info = n.store.get_log(hold.tenant)
    if info is None:
        return 0
    if n.index is None:
        return None
    try:
        node_ = parse(hold.query)
    except ValidationError:
        return None
    window = Window(since_us=_us(hold.since), until_us=_us(hold.until))
    return len(n.index.search(info.id, node_, window, limit=MAX_COUNT))


def _us(stamp: str | None) -> int | None:
    return time_us(stamp) if stamp else None


def _body(raw: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc}", problems=[
            FieldProblem("/body", "not JSON", "a JSON object", str(exc)[:80])]) from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object", problems=[
            FieldProblem("/body", "the body must be a JSON object", "a JSON object",
                         type(body).__name__)])
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", problems=[
            FieldProblem(f"/body/{u}", "unknown field", ", ".join(allowed), u)
            for u in unknown])
    return body
