"""`GET /v1/export`: every event a query selects, streamed as NDJSON, CSV or Parquet (as
stored, or mapped onto OCSF, ECS or CADF), in constant memory however many rows.

The export is recorded in `_access` before the first byte leaves, and again with the
row count when the last byte has (or the client went away)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from auditkeep.export import media_type, stream
from auditkeep.health.slis import timed
from auditkeep.log.service import access_log_name, tenant_of
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.query.index import Window
from auditkeep.server import params
from auditkeep.server.context import node, record_access
from auditkeep.server.search import SEARCH_PARAMS, Scope, scope

EXPORT_PARAMS = (SEARCH_PARAMS - {"limit", "cursor"}) | {"format", "mapping", "columns",
                                                          "max_rows"}
BATCH = 1000
EXTENSIONS = {"ndjson": "ndjson", "csv": "csv", "parquet": "parquet"}


@timed("export")
async def export(request: Request) -> Response:
    s = scope(request, EXPORT_PARAMS)
    qp = request.query_params
    fmt = qp.get("format", "ndjson")
    mapping = qp.get("mapping", "auditkeep")
    columns = [c.strip() for c in qp["columns"].split(",") if c.strip()] \
        if qp.get("columns") else None
    max_rows = params.integer(request, "max_rows", lo=1)
    counter = _Counter()
    body = stream(_batches(request, s, max_rows, counter), fmt, mapping, columns)  # checks args
    await record_access(request, s.who, s.tenant, "export", dict(qp), 0)
    n = node(request)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"auditkeep-{s.tenant}-{stamp}.{mapping}.{EXTENSIONS[fmt]}"

    def chunks() -> Iterator[bytes]:
        try:
            yield from body
        finally:
            _record_done(n, s, dict(qp), counter.rows, request.url.path)

    return StreamingResponse(chunks(), media_type=media_type(fmt), headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})


class _Counter:
    rows = 0


def _batches(request: Request, s: Scope, max_rows: int | None, counter: _Counter
             ) -> Iterator[list[dict[str, Any]]]:
    """Keyset pages of stored records, newest first, `BATCH` at a time."""
    n = node(request)
    log = n.store.get_log(s.tenant)
    if log is None or n.index is None:
        return
    cursor = None
    while max_rows is None or counter.rows < max_rows:
        want = BATCH if max_rows is None else min(BATCH, max_rows - counter.rows)
        window = Window(s.window.since_us, s.window.until_us, cursor)
        hits = n.index.search(log.id, s.node, window, limit=want)
        if not hits:
            return
        records = n.logs.records(s.tenant, [q for _, q in hits], personal=s.who.sees_personal)
        counter.rows += len(records)
        yield records
        cursor = hits[-1]
        if len(hits) < want:
            return


def _record_done(n: Any, s: Scope, details: dict[str, Any], rows: int, path: str) -> None:
    """The second `_access` record, with how many rows left. Not awaited: the response is
    already gone, and the first record (before any row) is the one reads wait for."""
    event = Event(action="auditkeep.read.export.done", actor=Actor(id=s.who.id, type="service"),
                  outcome="success", category="data_access",
                  resource=Resource(type="log", id=s.tenant),
                  metadata={"path": path, "params": details, "results": rows})
    owner = tenant_of(s.tenant)
    n.logs.append(access_log_name(owner),
                  prepare([event], tenant=owner, submitter=s.who.id, may_set_tenant=True))
