"""POST /v1/events: validate everything, sequence atomically, answer with receipts."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.bus.appender import CommitPending
from auditkeep.errors import FieldProblem, PayloadTooLarge, ValidationError
from auditkeep.health.slis import Slis
from auditkeep.log.sequencer import AppendResult
from auditkeep.pipeline.config import API_SOURCE
from auditkeep.pipeline.validate import MAX_BODY_BYTES
from auditkeep.server.batches import IngestJob, prepare_batch
from auditkeep.server.context import caller, json_response, node, pipelines
from auditkeep.server.workers import IngestWorkers

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


WAIT_MODES = ("committed", "accepted")


def wait_mode(request: Request) -> str:
    """`?wait=committed` (default): answer after the commit, with receipts.
    `?wait=accepted`: answer 202 once the ingest bus holds the events durably (without
    a bus, the commit is that moment, so it answers as `committed` does)."""
    mode = request.query_params.get("wait", "committed")
    if mode not in WAIT_MODES:
        raise ValidationError(f"wait={mode!r} is not one of committed, accepted", problems=[
            FieldProblem("/query/wait", "unknown acknowledgement mode",
                         "committed | accepted", mode)])
    return mode


async def post_events(request: Request) -> Response:
    who = caller(request)
    who.require("ingest")
    mode = wait_mode(request)
    routed = request.query_params.get("tenant")
    tenant = who.tenant_for(routed)
    body = await read_body(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    job = IngestJob(body, ctype in NDJSON_TYPES, tenant, who.is_admin and routed is None,
                    who.id, who.is_admin)
    n = node(request)
    workers: IngestWorkers | None = n.options.get("ingest_workers")
    if workers is None:
        batch = prepare_batch(job, pipelines(request))
    else:  # the same function in a worker process, off this process's GIL
        batch = await asyncio.wrap_future(workers.submit(job))
    extra = {"dropped": batch.dropped} if batch.dropped else {}
    slis: Slis | None = n.options.get("slis")
    if not batch.pendings:  # every event was dropped by a configured stage (counted)
        if slis is not None:
            slis.ingest_request(API_SOURCE, 200)
        return json_response({"tenant": batch.tenant, "receipts": [], **extra,
                              "checkpoint": n.logs.checkpoint(batch.tenant).note})
    if mode == "accepted" and n.logs.appender is not None:
        ids = await asyncio.wrap_future(n.logs.accept(batch.tenant, batch.pendings))
        if slis is not None:
            slis.ingest_request(API_SOURCE, 202)
        return accepted_response(batch.tenant, ids, **extra)
    try:
        result = await asyncio.wrap_future(n.logs.append(batch.tenant, batch.pendings))
    except CommitPending as exc:  # durably on the bus, not committed in time
        if slis is not None:
            slis.ingest_request(API_SOURCE, 202)
        return accepted_response(batch.tenant, exc.ids, **extra)
    response = receipts_response(batch.tenant, result, **extra)
    if slis is not None:  # once per request: latency, skew, counts (health/slis.py)
        new = sum(1 for r in result.receipts if not r.duplicate)
        slis.committed(batch.tenant, API_SOURCE, len(batch.pendings), new, result.size,
                       batch.facts)
        slis.ingest_request(API_SOURCE, response.status_code)
    return response


def accepted_response(tenant: str, ids: list[str], **extra: Any) -> Response:
    """202: durably on the ingest bus, not yet sequenced; each receipt comes later from
    GET /v1/events/{id}."""
    return json_response({"tenant": tenant, "status": "accepted", "ids": ids, **extra},
                         status=202)


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
