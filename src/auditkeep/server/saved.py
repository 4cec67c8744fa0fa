"""Saved searches: a named query with its window and columns, per tenant, shared by name
(`/v1/search?saved=NAME`, the UI's `#/search?saved=NAME`, `auditkeep search --saved`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.errors import FieldProblem, NotFoundError, ValidationError
from auditkeep.pipeline.validate import problem_from_msgspec
from auditkeep.query.lang import parse
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node
from auditkeep.server.reads import log_for

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_BODY = 16 * 1024


class SavedBody(msgspec.Struct, forbid_unknown_fields=True):
    query: str
    since: str | None = None
    until: str | None = None
    columns: list[str] | None = None
    description: str | None = None


def _reader(request: Request) -> tuple[Principal, str]:
    """Saved searches are per tenant and need the read or audit scope."""
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"tenant"})
    return who, log_for(who, request.query_params.get("tenant"))


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    if not NAME.fullmatch(name):
        raise ValidationError(f"saved search name {name!r} is not allowed", problems=[
            FieldProblem("/path/name", "not a saved search name",
                         "1-100 of A-Z a-z 0-9 . _ - starting with a letter or digit", name)])
    return name


def _entry(s: Any) -> dict[str, Any]:
    return {"name": s.name, **orjson.loads(s.body), "created_by": s.created_by,
            "updated": s.updated}


async def list_saved(request: Request) -> Response:
    _, tenant = _reader(request)
    return json_response({"saved": [_entry(s) for s in node(request).store.saved_searches(tenant)]})


async def get_saved(request: Request) -> Response:
    _, tenant = _reader(request)
    name = _name(request)
    for s in node(request).store.saved_searches(tenant):
        if s.name == name:
            return json_response(_entry(s))
    raise NotFoundError(f"no saved search {name!r} in tenant {tenant!r}")


async def put_saved(request: Request) -> Response:
    who, tenant = _reader(request)
    name = _name(request)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ValidationError(f"a saved search is at most {MAX_BODY} bytes")
    try:
        body = msgspec.json.decode(raw, type=SavedBody)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"saved search: {exc}",
                              problems=[problem_from_msgspec(exc, None)]) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"saved search: not JSON: {exc}", problems=[
            FieldProblem("", "not JSON", "a JSON object", str(exc))]) from None
    parse(body.query)  # a saved search must run: reject what would not parse
    for key in ("since", "until"):
        value = getattr(body, key)
        if value:
            params.parse_time_us(value, key)
    text = msgspec.json.encode(body).decode()
    when = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    node(request).store.put_saved_search(tenant, name, text, who.id, when)
    return json_response({"name": name, **orjson.loads(text), "created_by": who.id,
                          "updated": when})


async def delete_saved(request: Request) -> Response:
    _, tenant = _reader(request)
    name = _name(request)
    if not node(request).store.delete_saved_search(tenant, name):
        raise NotFoundError(f"no saved search {name!r} in tenant {tenant!r}")
    return Response(status_code=204)
