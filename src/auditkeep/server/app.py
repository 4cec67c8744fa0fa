"""The HTTP application: routes under /v1, problem+json errors, metrics."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auditkeep.datadir import Node
from auditkeep.errors import AuditkeepError
from auditkeep.pipeline.config import API_SOURCE, ServerConfig, SourcesConfig
from auditkeep.pipeline.schemas import ActionSchemas
from auditkeep.privacy.pseudonyms import PSEUDONYM_SECRET
from auditkeep.server import ops, problems
from auditkeep.server.aggregate import aggregate
from auditkeep.server.alerts import (
    ack_alert,
    get_alert,
    list_alerts,
    list_deliveries,
    retry_delivery,
)
from auditkeep.server.archive import list_archive, post_rehydrate, run_archive
from auditkeep.server.context import json_response
from auditkeep.server.dashboards import dashboard
from auditkeep.server.evidence import get_evidence
from auditkeep.server.export import export
from auditkeep.server.holds import get_hold, list_holds, post_hold, post_release
from auditkeep.server.ingest import post_events
from auditkeep.server.openapi import OPENAPI
from auditkeep.server.pipelines import Pipelines
from auditkeep.server.polls import PollSessions
from auditkeep.server.privacy import post_erasure, subject_events
from auditkeep.server.proofs import get_checkpoint, get_consistency, get_inclusion, get_keys
from auditkeep.server.reads import get_entry, get_event, get_event_raw
from auditkeep.server.retention import get_plan, get_retention, post_run, put_retention
from auditkeep.server.rules import delete_rule_file, get_rule_file, list_rules, put_rule_file
from auditkeep.server.saved import delete_saved, get_saved, list_saved, put_saved
from auditkeep.server.schemas import get_schema, put_schema
from auditkeep.server.search import context, search, search_events
from auditkeep.server.slos import list_slos
from auditkeep.server.sources import (
    generic_endpoint,
    k8s_endpoint,
    post_cloudtrail,
    post_gcp,
    post_otlp_logs,
)
from auditkeep.server.ui import ui_routes
from auditkeep.sources.k8s import K8sEventMapper

log = logging.getLogger(__name__)


async def openapi(request: Request) -> Response:
    return json_response(OPENAPI)


def source_routes(config: ServerConfig | None) -> list[Route]:
    """The HTTP sources the configuration turns on (all but syslog by default). Each
    route's name is `ingest:<source>`: the SLIs count its answers under that source."""
    sources = config.sources if config is not None else SourcesConfig()
    routes = []
    if sources.k8s.enabled:
        routes.append(Route("/v1/sources/k8s", k8s_endpoint(K8sEventMapper(sources.k8s.stages)),
                            methods=["POST"], name="ingest:k8s"))
    if sources.cloudtrail.enabled:
        routes.append(Route("/v1/sources/cloudtrail", post_cloudtrail, methods=["POST"],
                            name="ingest:cloudtrail"))
    if sources.gcp.enabled:
        routes.append(Route("/v1/sources/gcp", post_gcp, methods=["POST"], name="ingest:gcp"))
    if sources.otlp.enabled:
        routes.append(Route("/v1/otlp/v1/logs", post_otlp_logs, methods=["POST"],
                            name="ingest:otlp"))
    for g in sources.generic:
        routes.append(Route(g.path, generic_endpoint(g.mapping()), methods=["POST"],
                            name=f"ingest:generic.{g.name}"))
    return routes


def create_app(n: Node) -> Starlette:
    config: ServerConfig | None = n.options.get("config")
    routes = [*source_routes(config),
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/v1/events", search_events, methods=["GET"]),
        Route("/v1/events/{id}", get_event, methods=["GET"]),
        Route("/v1/events/{id}/raw", get_event_raw, methods=["GET"]),
        Route("/v1/events/{id}/context", context, methods=["GET"]),
        Route("/v1/search", search, methods=["GET"]),
        Route("/v1/aggregate", aggregate, methods=["GET"]),
        Route("/v1/export", export, methods=["GET"]),
        Route("/v1/archive", list_archive, methods=["GET"]),
        Route("/v1/archive/run", run_archive, methods=["POST"]),
        Route("/v1/archive/rehydrate", post_rehydrate, methods=["POST"]),
        Route("/v1/evidence", get_evidence, methods=["GET"]),
        Route("/v1/dashboards/{name}", dashboard, methods=["GET"]),
        Route("/v1/saved-searches", list_saved, methods=["GET"]),
        Route("/v1/saved-searches/{name}", get_saved, methods=["GET"]),
        Route("/v1/saved-searches/{name}", put_saved, methods=["PUT"]),
        Route("/v1/saved-searches/{name}", delete_saved, methods=["DELETE"]),
        Route("/v1/alerts", list_alerts, methods=["GET"]),
        Route("/v1/alerts/{id}", get_alert, methods=["GET"]),
        Route("/v1/alerts/{id}/ack", ack_alert, methods=["POST"]),
        Route("/v1/deliveries", list_deliveries, methods=["GET"]),
        Route("/v1/deliveries/{id}/retry", retry_delivery, methods=["POST"]),
        Route("/v1/rules", list_rules, methods=["GET"]),
        Route("/v1/rules/{file}", get_rule_file, methods=["GET"]),
        Route("/v1/rules/{file}", put_rule_file, methods=["PUT"]),
        Route("/v1/rules/{file}", delete_rule_file, methods=["DELETE"]),
        Route("/v1/erasure", post_erasure, methods=["POST"]),
        Route("/v1/retention", get_retention, methods=["GET"]),
        Route("/v1/retention", put_retention, methods=["PUT"]),
        Route("/v1/retention/plan", get_plan, methods=["GET"]),
        Route("/v1/retention/run", post_run, methods=["POST"]),
        Route("/v1/subjects/{subject}/events", subject_events, methods=["GET"]),
        Route("/v1/holds", list_holds, methods=["GET"]),
        Route("/v1/holds", post_hold, methods=["POST"]),
        Route("/v1/holds/{id}", get_hold, methods=["GET"]),
        Route("/v1/holds/{id}/release", post_release, methods=["POST"]),
        Route("/v1/logs/{tenant}/checkpoint", get_checkpoint, methods=["GET"]),
        Route("/v1/logs/{tenant}/proof/inclusion", get_inclusion, methods=["GET"]),
        Route("/v1/logs/{tenant}/proof/consistency", get_consistency, methods=["GET"]),
        Route("/v1/logs/{tenant}/entries/{seq:int}", get_entry, methods=["GET"]),
        Route("/v1/keys", get_keys, methods=["GET"]),
        Route("/v1/schemas/{action}", get_schema, methods=["GET"]),
        Route("/v1/schemas/{action}", put_schema, methods=["PUT"]),
        Route("/v1/status", ops.status, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/v1/slos", list_slos, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *ui_routes(),  # last: the API's routes win
    ]

    # Ingest paths and their SLI source names: refusals are counted where they are made.
    ingest_sources = {"/v1/events": API_SOURCE, **{
        r.path: r.name.removeprefix("ingest:") for r in routes
        if isinstance(r, Route) and r.name.startswith("ingest:")}}

    def count_refusal(request: Request, status: int) -> None:
        source = ingest_sources.get(request.url.path)
        if request.method != "POST" or source is None:
            return
        if source == API_SOURCE:
            n.rejections[status] = n.rejections.get(status, 0) + 1
        slis = n.options.get("slis")
        if slis is not None:
            slis.ingest_request(source, status)

    async def on_error(request: Request, exc: Exception) -> Response:
        count_refusal(request, exc.status if isinstance(exc, AuditkeepError) else 500)
        return await problems.handle_auditkeep_error(request, exc)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        count_refusal(request, 500)
        return problems.problem(500, "internal", "Internal error",
                                "the server failed; nothing of this request was acknowledged",
                                request.url.path)

    polls = PollSessions(n)
    app = Starlette(
        routes=routes,
        exception_handlers={AuditkeepError: on_error, HTTPException: problems.handle_http_error,
                            Exception: on_crash},
        lifespan=lambda _app: polls.running(),  # sweeps poll counts, flushes them at exit
    )
    app.state.node = n
    app.state.polls = polls
    app.state.pipelines = n.options["pipelines"] = Pipelines(
        config, ActionSchemas(n.store), secret=n.store.secret(PSEUDONYM_SECRET))
    app.state.registry = ops.registry_for(n)
    return app
