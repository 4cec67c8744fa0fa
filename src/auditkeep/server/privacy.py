"""Erasure of a data subject and subject access (GDPR Art. 17 and 15).

Both need the `privacy` scope (or admin) and act on one tenant. An erasure is recorded
in the tenant's own log (privacy/erasure.py); a subject access export is recorded in
the tenant's `_access` log, like every read of personal data.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.privacy.erasure import (
    check_subject,
    erase_subject,
    subject_pseudonym,
    subject_seqs,
)
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access

MAX_PAGE = 1000
_ERASURE_KEYS = {"subject", "legal_basis"}


async def post_erasure(request: Request) -> Response:
    """`POST /v1/erasure` `{"subject": "...", "legal_basis": "..."}`."""
    who = caller(request)
    who.require("privacy")
    params.only(request, {"tenant"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    body = _object(await request.body())
    unknown = sorted(set(body) - _ERASURE_KEYS)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}", problems=[
            FieldProblem(f"/{unknown[0]}", "unknown field", "subject, legal_basis", unknown[0])])
    subject = check_subject(body.get("subject"))
    basis = body.get("legal_basis")
    if not isinstance(basis, str):
        raise ValidationError("legal_basis is required", problems=[FieldProblem(
            "/legal_basis", "the legal basis of the erasure is required, e.g. "
            "GDPR Art. 17(1)(a)", "a string", type(basis).__name__)])
    result = await run_in_threadpool(erase_subject, node(request).logs, tenant, subject,
                                     requested_by=who.id, legal_basis=basis)
    return json_response(result.to_json())


async def subject_events(request: Request) -> Response:
    """`GET /v1/subjects/{subject}/events`: every event that holds the subject's personal
    values or raw objects, with those values and raws, oldest first, in pages."""
    who = caller(request)
    who.require("privacy")
    params.only(request, {"tenant", "limit", "after"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    subject = check_subject(request.path_params["subject"], "/path/subject")
    limit = params.integer_or(request, "limit", 100, lo=1, hi=MAX_PAGE)
    after = params.integer(request, "after", lo=0)
    n = node(request)
    seqs = await run_in_threadpool(subject_seqs, n.logs, tenant, subject)
    if after is not None:
        seqs = [s for s in seqs if s > after]
    page = seqs[:limit]
    events: list[dict[str, Any]] = []
    if page:
        info = n.logs.info(tenant)
        records = n.logs.records(tenant, page, personal=True)
        for rec in records:
            item: dict[str, Any] = {"record": rec}
            if "raw" in rec:
                raw = n.store.read_raw(info.id, rec["seq"])
                if raw is not None:
                    item["raw"] = _raw_json(*raw)
            events.append(item)
    pn = subject_pseudonym(n.logs, tenant, subject)
    await record_access(request, who, tenant, "subject_access",
                        {"subject": pn, "after": after, "limit": limit}, len(events))
    body: dict[str, Any] = {"tenant": tenant, "subject": pn, "total": len(seqs),
                            "events": events}
    if len(seqs) > limit:
        body["next_after"] = page[-1]
    return json_response(body)


def _raw_json(fmt: str, data: bytes) -> dict[str, Any]:
    try:
        return {"format": fmt, "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"format": fmt, "base64": base64.b64encode(data).decode()}


def _object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc}", problems=[
            FieldProblem("", "not JSON", "a JSON object", str(exc))]) from None
    if not isinstance(body, dict):
        raise ValidationError("the body is a JSON object", problems=[
            FieldProblem("", "expected a JSON object", "an object", type(body).__name__)])
    return body
