"""`GET /v1/aggregate`: counts grouped by fields, top-N, distinct counts and a time
histogram for the events a query selects."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import ValidationError
from auditkeep.health.slis import timed
from auditkeep.query.aggregate import aggregator, check_group_field
from auditkeep.server import params
from auditkeep.server.context import json_response, node, record_access
from auditkeep.server.search import SEARCH_PARAMS, scope

AGGREGATE_PARAMS = (SEARCH_PARAMS - {"limit", "cursor"}) | {"group_by", "interval", "top",
                                                             "distinct"}


@timed("aggregate")
async def aggregate(request: Request) -> Response:
    s = scope(request, AGGREGATE_PARAMS)
    qp = request.query_params
    group_by = [check_group_field(p.strip(), "group_by")
                for p in qp.get("group_by", "").split(",") if p.strip()]
    if len(group_by) > 2:
        raise params.bad("group_by", "at most two fields", "one or two fields", qp["group_by"])
    top = params.integer_or(request, "top", 10, lo=1, hi=1000)
    distinct = check_group_field(qp["distinct"], "distinct") if qp.get("distinct") else None
    interval = qp.get("interval")
    n = node(request)
    if n.index is None:
        raise ValidationError("this server runs without a search index")
    log = n.store.get_log(s.tenant)
    out: dict[str, object] = {"total": 0, "groups": None, "histogram": None, "distinct": None}
    if log is not None:
        agg = aggregator(n.index, log.id, s.node, s.window)
        out["total"] = agg.total()
        if group_by:
            out["group_by"] = group_by
            out["groups"] = [{"key": key, "count": count}
                             for key, count in agg.groups(group_by, top)]
        if interval:
            h = agg.histogram(interval, int(time.time() * 1e6))
            out["histogram"] = {"interval": h.interval, "width_us": h.width_us,
                                "buckets": [{"start": iso(b), "count": c}
                                            for b, c in h.buckets]}
        if distinct:
            out["distinct"] = {distinct: agg.distinct(distinct)}
    elif interval:
        out["histogram"] = {"interval": interval, "buckets": []}
    await record_access(request, s.who, s.tenant, "aggregate", dict(qp), int(out["total"]))  # type: ignore[call-overload]
    return json_response(out)


def iso(us: int) -> str:
    secs, micro = divmod(us, 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{micro:06d}Z" if micro else f"{stamp}Z"
