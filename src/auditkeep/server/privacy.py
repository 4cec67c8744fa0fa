"""Erasure of a data subject and subject access (GDPR Art. 17 and 15).

Both need the `privacy` scope (or admin) and act on one tenant. An erasure is recorded
in the tenant's own log (privacy/erasure.py); a subject access export is recorded in
the tenant's `_access` log, like every read of personal data.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.validate import problem_from_msgspec
from auditkeep.privacy.erasure import (
    check_subject,
    erase_subject,
    subject_pseudonym,
    subject_seqs,
)
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access

MAX_PAGE = 1000


async def post_erasure(request: Request) -> Response:
    """`POST /v1/erasure` `{"subject": "...", "legal_basis": "..."}`."""
    who = caller(request)
    who.require("privacy")
    params.only(request, {"tenant"})
    tenant = who.tenant_for(request.query_params.get("tenant"))
    body = _erasure_body(await request.body())
    subject = check_subject(body.subject)
    result = await run_in_threadpool(erase_subject, node(request).logs, tenant, subject,
                                     requested_by=who.id, legal_basis=body.legal_basis)
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


class ErasureBody(msgspec.Struct, forbid_unknown_fields=True):
    subject: str
    legal_basis: str


def _erasure_body(raw: bytes) -> ErasureBody:
    """The typed body, as saved searches decode theirs: msgspec names the bad field."""
    try:
        return msgspec.json.decode(raw, type=ErasureBody)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"erasure: {exc}",
                              problems=[problem_from_msgspec(exc, None)]) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"erasure: not JSON: {exc}", problems=[
            FieldProblem("", "not JSON", "a JSON object", str(exc))]) from None
