"""`GET /v1/evidence`: an evidence bundle (a zip) of the events a query selects, for an
auditor to verify offline with tools/verify_evidence.py (docs/evidence.md).

A bundle holds all of a selection or none: a query selecting more than `limit` events
is refused (400), never cut short. The export is recorded in `_access` before the
bundle leaves."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import NotFoundError, ValidationError
from auditkeep.evidence import MAX_EVENTS, Selection, build_bundle, select_seqs
from auditkeep.log.service import tenant_of
from auditkeep.pipeline.config import ServerConfig
from auditkeep.query.index import Window
from auditkeep.query.lang import parse
from auditkeep.server import params
from auditkeep.server.context import caller, node, record_access
from auditkeep.server.reads import log_for

EVIDENCE_PARAMS = {"query", "since", "until", "tenant", "limit"}


def witness_keys(config: ServerConfig | None) -> list[str]:
    """The configured witnesses' verifier keys (docs/witnesses.md)."""
    return [w.vkey for w in config.witnesses] if config is not None else []


async def get_evidence(request: Request) -> Response:
    who = caller(request)
    who.require("audit")
    params.only(request, EVIDENCE_PARAMS)
    qp = request.query_params
    name = log_for(who, qp.get("tenant"))
    text = qp.get("query", "")
    q = parse(text)
    since, until = params.timestamp_us(request, "since"), params.timestamp_us(request, "until")
    limit = params.integer_or(request, "limit", MAX_EVENTS, lo=1, hi=MAX_EVENTS)
    n = node(request)
    if n.index is None:
        raise ValidationError("this server runs without a search index")
    log = n.store.get_log(name)
    if log is None:
        raise NotFoundError(f"no log named {name!r}")
    hits = n.index.search(log.id, q, Window(since, until), limit=limit + 1)
    if len(hits) > limit:
        raise params.bad("limit", f"the query selects more than {limit} events; a bundle "
                         "holds all of a selection or none: narrow the query or the window"
                         f" (since/until), or raise limit (at most {MAX_EVENTS})",
                         f"a query selecting at most {limit} events", f"more than {limit}")
    sel = Selection(log=name, tenant=tenant_of(name), seqs=select_seqs(hits), query=text,
                    since=qp.get("since"), until=qp.get("until"), created_by=who.id,
                    witness_keys=witness_keys(n.options.get("config")))
    body = await asyncio.to_thread(build_bundle, n.logs, sel)
    await record_access(request, who, name, "evidence", dict(qp), len(sel.seqs))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Response(body, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="evidence-{name}-{stamp}.zip"',
        "Cache-Control": "no-store", "X-Auditkeep-Events": str(len(sel.seqs))})
