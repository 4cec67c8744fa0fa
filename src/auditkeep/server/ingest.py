"""POST /v1/events: validate everything, sequence atomically, answer with receipts."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import FieldProblem, PayloadTooLarge
from auditkeep.log.sequencer import AppendResult
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import MAX_BODY_BYTES, decode_events
from auditkeep.server.context import caller, json_response, node, pipelines

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing (without reading on) once it passes `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise _too_large(len(chunks), limit)
    return bytes(chunks)


def _too_large(n: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is over {limit} bytes",
                           problems=[FieldProblem("/", "body too large", f"<= {limit} bytes",
                                                  f">= {n} bytes")])


async def post_events(request: Request) -> Response:
    who = caller(request)
    who.require("ingest")
    tenant = who.tenant_for(request.query_params.get("tenant"))
    body = await read_body(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    events = decode_events(body, ndjson=ctype in NDJSON_TYPES)
    for ev in events:  # an admin may route a request with `tenant` in its events
        if ev.tenant is not None and who.is_admin and request.query_params.get("tenant") is None:
            tenant = ev.tenant
            break
    single = ctype not in NDJSON_TYPES and not body.lstrip().startswith(b"[")
    events, _, dropped = pipelines(request).run_events(tenant, "api", events, single=single)
    extra = {"dropped": dropped} if dropped else {}
    if not events:  # every event was dropped by a configured stage (counted)
        return json_response({"tenant": tenant, "receipts": [], **extra,
                              "checkpoint": node(request).logs.checkpoint(tenant).note})
    pipelines(request).apply_schemas(tenant, events, single=single)
    pendings = prepare(events, tenant=tenant, submitter=who.id, may_set_tenant=who.is_admin,
                       single=single)
    result = await asyncio.wrap_future(node(request).logs.append(tenant, pendings))
    return receipts_response(tenant, result, **extra)


def receipts_response(tenant: str, result: AppendResult, **extra: Any) -> Response:
    """201 with a receipt per event and the checkpoint covering them (200 when every
    event was already stored)."""
    receipts = [
        {"id": r.id, "seq": r.seq, "leaf_hash": base64.b64encode(r.leaf_hash).decode(),
         **({"duplicate": True} if r.duplicate else {})}
        for r in result.receipts
    ]
    status = 201 if any(not r.duplicate for r in result.receipts) else 200
    return json_response({"tenant": tenant, "receipts": receipts,
                          "checkpoint": result.checkpoint, **extra}, status=status)
