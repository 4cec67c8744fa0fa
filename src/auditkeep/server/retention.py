"""Retention over HTTP (admin only): the effective policy of a tenant and where each
part came from, setting it, the dry-run plan, and a purge pass now (docs/retention.md).

A plan names seq ranges and counts of a tenant's events, so it is recorded in the
tenant's `_access` log like any other read; a run is recorded by its purge records.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.datadir import Node
from auditkeep.pipeline.config import ServerConfig
from auditkeep.pipeline.config_keeping import RetentionConfig
from auditkeep.pipeline.schema import TENANT_PATTERN
from auditkeep.retention.job import RetentionJob
from auditkeep.retention.policy import layer_from_body, layer_from_stored
from auditkeep.retention.purge import Retention
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access

_TENANT = re.compile(TENANT_PATTERN)


def retention_of(n: Node) -> Retention:
    """The node's retention (the job's, so a run over HTTP and a scheduled pass never
    purge at once); made on first use where serve did not make a job."""
    job = n.options.get("retention")
    if job is None:
        config: ServerConfig | None = n.options.get("config")
        settings = config.retention if config is not None else RetentionConfig()
        job = n.options.setdefault("retention", RetentionJob(Retention(
            n.logs, n.index, settings,
            archive=config is not None and config.archive is not None), None))
    retention: Retention = job.retention
    return retention


def _tenant(request: Request) -> str | None:
    raw = request.query_params.get("tenant")
    if raw is None:
        return None
    if not _TENANT.match(raw):
        raise params.bad("tenant", "not a tenant name", "1 to 63 of a-z, 0-9 and -", raw)
    return raw


def _policy_body(r: Retention, tenant: str) -> dict[str, Any]:
    stored = r.stored(tenant)
    body = r.policy(tenant).to_json()
    body["stored"] = None if stored is None else {
        "updated": stored.updated, "updated_by": stored.updated_by,
        "policy": layer_from_stored(stored.body).to_json()}
    return body


async def get_retention(request: Request) -> Response:
    """`GET /v1/retention?tenant=`: the effective policy, each part with its source."""
    caller(request).require("admin")
    params.only(request, {"tenant"})
    tenant = _tenant(request) or "default"
    r = retention_of(node(request))
    return json_response(await run_in_threadpool(_policy_body, r, tenant))


async def put_retention(request: Request) -> Response:
    """`PUT /v1/retention?tenant=` `{"default", "categories", "require_archive"}`: the
    tenant's own policy, replacing the one stored before (unset parts: the file's)."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    tenant = _tenant(request) or "default"
    layer = layer_from_body(await request.body())
    r = retention_of(node(request))

    def put() -> dict[str, Any]:
        r.set_policy(tenant, layer, by=who.id)
        return _policy_body(r, tenant)
    return json_response(await run_in_threadpool(put))


async def get_plan(request: Request) -> Response:
    """`GET /v1/retention/plan[?tenant=]`: what a run would purge now (every tenant when
    none is named), by tenant, log and category."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    tenant = _tenant(request)
    r = retention_of(node(request))
    plans = await run_in_threadpool(r.plan, None if tenant is None else [tenant])
    tenants = sorted({p.tenant for p in plans})
    for t in tenants:
        mine = [p for p in plans if p.tenant == t]
        await record_access(request, who, t, "retention_plan", {"tenant": t},
                            sum(p.events for p in mine))
    return json_response({"logs": [p.to_json() for p in plans],
                          "events": sum(p.events for p in plans)})


async def post_run(request: Request) -> Response:
    """`POST /v1/retention/run[?tenant=]`: a purge pass now, until nothing is due;
    answers with what went (each purge with its record's id and seq)."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    tenant = _tenant(request)
    r = retention_of(node(request))
    report = await run_in_threadpool(lambda: r.run(None if tenant is None else [tenant],
                                                   actor=who.id))
    return json_response(report.to_json())
