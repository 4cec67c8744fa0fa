"""Alerts and their deliveries: list, show, acknowledge; the dead-letter list and retry.

Reads need the read or audit scope and are per tenant; ack and retry need audit (an
acknowledgement is a decision someone answers for). Each ack is also recorded in the
tenant's `_access` log by who made it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.detect.alerts import Alert, alert_summary
from auditkeep.detect.rules import LEVELS
from auditkeep.errors import FieldProblem, NotFoundError, ValidationError
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access
from auditkeep.storage.base import DeliveryRecord

_STATUSES = ("open", "acked")


def _tenant(request: Request, *scopes: str) -> tuple[Principal, str]:
    who = caller(request)
    who.require(*scopes)
    return who, who.tenant_for(request.query_params.get("tenant"))


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    v = request.query_params.get(name)
    if v is not None and v not in allowed:
        raise params.bad(name, "not one of the allowed values", " | ".join(allowed), v)
    return v


def _time(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    us = params.parse_time_us(raw, name)
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _cursor(request: Request) -> tuple[str, str] | None:
    raw = request.query_params.get("cursor")
    if raw is None:
        return None
    try:
        created, aid = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
        return str(created), str(aid)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise params.bad("cursor", "not a cursor this API returned", "next_cursor of a "
                         "previous page", raw) from None


async def list_alerts(request: Request) -> Response:
    _, tenant = _tenant(request, "read", "audit")
    params.only(request, {"tenant", "rule", "level", "status", "since", "until", "cursor",
                          "limit"})
    limit = params.integer_or(request, "limit", 50, lo=1, hi=500)
    rows = node(request).store.alerts(
        tenant, rule=request.query_params.get("rule"), level=_choice(request, "level", LEVELS),
        status=_choice(request, "status", _STATUSES), since=_time(request, "since"),
        until=_time(request, "until"), before=_cursor(request), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        nxt = base64.urlsafe_b64encode(orjson.dumps([rows[-1].created, rows[-1].id])).decode()
    return json_response({"alerts": [alert_summary(Alert.of(r)) for r in rows],
                          "next_cursor": nxt})


def _delivery(d: DeliveryRecord) -> dict[str, Any]:
    return {"id": d.id, "alert_id": d.alert_id, "sink": d.sink, "status": d.status,
            "attempts": d.attempts, "next_attempt": d.next_attempt,
            "last_error": d.last_error, "created": d.created, "updated": d.updated}


def _alert(request: Request, tenant: str) -> Alert:
    aid = request.path_params["id"]
    rec = node(request).store.get_alert(tenant, aid)
    if rec is None:
        raise NotFoundError(f"no alert {aid!r} in tenant {tenant!r}")
    return Alert.of(rec)


def _full(request: Request, alert: Alert) -> dict[str, Any]:
    found = node(request).store.deliveries(alert.tenant, alert_id=alert.id, limit=100)
    return {**alert.to_json(), "deliveries": [_delivery(d) for d in found]}


async def get_alert(request: Request) -> Response:
    _, tenant = _tenant(request, "read", "audit")
    params.only(request, {"tenant"})
    return json_response(_full(request, _alert(request, tenant)))


async def ack_alert(request: Request) -> Response:
    who, tenant = _tenant(request, "audit")
    params.only(request, {"tenant"})
    raw = await request.body()
    note = None
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"ack: not JSON: {exc}", problems=[
                FieldProblem("", "not JSON", "a JSON object", str(exc))]) from None
        if not isinstance(body, dict) or set(body) - {"note"} or \
                not isinstance(body.get("note", ""), str):
            raise ValidationError("ack: the body is {\"note\": \"...\"}", problems=[
                FieldProblem("/note", "expected a note", "a string", str(body)[:80])])
        note = body.get("note")
    alert = _alert(request, tenant)
    when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if alert.status != "acked":
        alert.status, alert.acked_by, alert.acked_at, alert.updated = "acked", who.id, when, when
        if note:
            alert.details["ack_note"] = note[:2000]
        node(request).store.update_alert(alert.record())
    await record_access(request, who, tenant, "alert.ack", {"id": alert.id, "note": note}, 1)
    return json_response(_full(request, alert))


async def list_deliveries(request: Request) -> Response:
    _, tenant = _tenant(request, "read", "audit")
    params.only(request, {"tenant", "status", "alert", "limit"})
    status = _choice(request, "status", ("pending", "delivered", "dead"))
    limit = params.integer_or(request, "limit", 100, lo=1, hi=1000)
    found = node(request).store.deliveries(tenant, status=status,
                                           alert_id=request.query_params.get("alert"),
                                           limit=limit)
    return json_response({"deliveries": [_delivery(d) for d in found]})


async def retry_delivery(request: Request) -> Response:
    who, tenant = _tenant(request, "audit")
    params.only(request, {"tenant"})
    did = request.path_params["id"]
    detection = node(request).options.get("detection")
    if detection is None:
        raise NotFoundError("detection is not running on this server")
    found = detection.dispatcher.retry(tenant, did)
    if found is None:
        raise NotFoundError(f"no dead delivery {did!r} in tenant {tenant!r}")
    await record_access(request, who, tenant, "delivery.retry", {"id": did}, 1)
    return json_response(_delivery(found))
