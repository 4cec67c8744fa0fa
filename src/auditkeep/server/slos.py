"""`GET /v1/slos`: each SLO's objective, burn rates by window, error budget left and
the burn alerts firing, as the SLO evaluator last computed them (docs/slos.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node


async def list_slos(request: Request) -> Response:
    """200 {"interval": s, "slos": [...]}; `slos` is empty where no evaluator runs (a
    process without background jobs, or no SLIs)."""
    caller(request).require("read", "audit")
    params.only(request, set())
    job = node(request).options.get("slo")
    if job is None:
        return json_response({"running": False, "slos": []})
    return json_response({"running": True, "interval": job.interval,
                          "slos": [s.to_json() for s in job.status()]})


__all__ = ["list_slos"]
