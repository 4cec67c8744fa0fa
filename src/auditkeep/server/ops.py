"""Health, readiness, status and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from auditkeep import __version__
from auditkeep.datadir import Node
from auditkeep.health.ready import readiness
from auditkeep.health.slis import histogram_good_total
from auditkeep.server.context import caller, json_response, node, pipelines
from auditkeep.server.problems import MEDIA_TYPE, PROBLEM_TYPE
from auditkeep.witness.job import WitnessJob, witness_metrics


class NodeCollector(Collector):
    """Reads counters the hot paths keep anyway, so metrics cost nothing per event."""

    def __init__(self, n: Node) -> None:
        self._node = n

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        committed = CounterMetricFamily("auditkeep_events_committed", "Events durably committed",
                                        labels=["log"])
        pushback = CounterMetricFamily("auditkeep_pushback_events",
                                       "Events refused with 503 because a queue was full",
                                       labels=["log"])
        dups = CounterMetricFamily("auditkeep_duplicate_events",
                                   "Events answered as duplicates of an earlier one",
                                   labels=["log"])
        queued = GaugeMetricFamily("auditkeep_sequencer_queue_events",
                                   "Events waiting for a sequencer", labels=["log"])
        for name, s in self._node.logs.sequencers().items():
            committed.add_metric([name], s.stats.committed_events)
            pushback.add_metric([name], s.stats.rejected_pushback)
            dups.add_metric([name], s.stats.duplicates)
            queued.add_metric([name], s.queued_events)
        yield from (committed, pushback, dups, queued)
        if self._node.indexer is not None:
            lag = GaugeMetricFamily("auditkeep_index_lag_events",
                                    "Committed entries not yet searchable", labels=["log"])
            for name, v in self._node.indexer.lag().items():
                lag.add_metric([name], v["lag"])
            yield lag
        rejected = CounterMetricFamily("auditkeep_ingest_rejected_requests",
                                       "Ingest requests refused, by HTTP status",
                                       labels=["status"])
        for status, count in sorted(self._node.rejections.items()):
            rejected.add_metric([str(status)], count)
        yield rejected
        detection = self._node.options.get("detection")
        if detection is not None:
            lag = GaugeMetricFamily("auditkeep_detect_lag_events",
                                    "Committed entries the detection engine has not read",
                                    labels=["log"])
            for name, v in detection.engine.lag().items():
                lag.add_metric([name], v)
            yield lag
            yield CounterMetricFamily("auditkeep_detect_evaluated_events",
                                      "Events the detection engine evaluated",
                                      value=detection.engine.evaluated)
            yield CounterMetricFamily("auditkeep_alerts_created", "Alerts created",
                                      value=detection.engine.alerts_created)
        workers = self._node.options.get("ingest_workers")
        if workers is not None:
            yield CounterMetricFamily("auditkeep_ingest_worker_restarts",
                                      "Ingest worker processes replaced after dying",
                                      value=workers.restarts)
        pipes = self._node.options.get("pipelines")
        if pipes is not None:
            dropped = CounterMetricFamily("auditkeep_pipeline_dropped_events",
                                          "Events a configured stage dropped, by reason",
                                          labels=["reason"])
            for reason, count in sorted(pipes.dropped.items()):
                dropped.add_metric([reason], count)
            flagged = CounterMetricFamily("auditkeep_schema_violation_events",
                                          "Events that broke their action's schema",
                                          labels=["tenant"])
            for tenant, count in sorted(pipes.schemas.violations.items()):
                flagged.add_metric([tenant], count)
            redacted = CounterMetricFamily("auditkeep_redactions",
                                           "Fields redaction rules changed, by tenant and rule",
                                           labels=["tenant", "rule"])
            for (tenant, rule), count in sorted(pipes.redactions.items()):
                redacted.add_metric([tenant, rule], count)
            yield from (dropped, flagged, redacted)
        witness = self._node.options.get("witness")
        if witness is not None:
            yield from witness_metrics(witness)
        retention = self._node.options.get("retention")
        if retention is not None:
            yield CounterMetricFamily("auditkeep_retention_purged_events",
                                      "Events purged by retention in this process",
                                      value=retention.retention.purged)
        scan = self._node.options.get("pii_scan")
        if scan is not None:
            scanned, by_rule = scan.snapshot()
            yield CounterMetricFamily("auditkeep_pii_scanned_records",
                                      "Stored records the scheduled PII scan has read",
                                      value=scanned)
            found = CounterMetricFamily("auditkeep_pii_findings",
                                        "PII or secrets found in stored records, by tenant "
                                        "and detector", labels=["tenant", "rule"])
            for (tenant, rule), count in sorted(by_rule.items()):
                found.add_metric([tenant, rule], count)
            yield found


def registry_for(n: Node) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(NodeCollector(n))
    detection = n.options.get("detection")
    slis = n.options.get("slis")
    if detection is not None:
        reg.register(detection.latency)
        if slis is not None:
            slis.follow_alerts(histogram_good_total(detection.latency))
    if slis is not None:  # the seed's SLIs (health/slis.py)
        reg.register(slis)
    slo = n.options.get("slo")
    if slo is not None:  # burn rates and error budget (health/slo.py)
        reg.register(slo)
    return reg


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    """200 {"ready": true, "checks": {...}}; else 503 problem+json + Retry-After with the
    same `checks`, each failing one with its `detail` (health/ready.py)."""
    n = node(request)
    r = readiness(n)
    ready, checks = await run_in_threadpool(r.check, n)
    if ready:
        return json_response({"ready": True, "checks": checks})
    failing = [name for name, c in checks.items() if not c["ok"]]
    body = {"type": PROBLEM_TYPE + "not-ready", "title": "Not ready", "status": 503,
            "detail": "; ".join(f"{name}: {checks[name].get('detail', 'failed')}"
                                for name in failing),
            "instance": request.url.path, "ready": False, "failing": failing,
            "checks": checks}
    return Response(orjson.dumps(body), status_code=503, media_type=MEDIA_TYPE,
                    headers={"Retry-After": str(r.retry_after)})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry),
                    media_type="text/plain; version=0.0.4")


async def status(request: Request) -> Response:
    caller(request)
    n = node(request)
    logs = {}
    lag = n.indexer.lag() if n.indexer is not None else {}
    seqs = n.logs.sequencers()
    for info in n.logs.logs():
        s = seqs.get(info.name)
        logs[info.name] = {
            "size": info.size,
            "queued": s.queued_events if s else 0,
            "index": lag.get(info.name),
        }
    p = pipelines(request)
    return json_response({
        "version": __version__,
        "logs": logs,
        "indexer": None if n.indexer is None else {
            "indexed": n.indexer.indexed, "last_error": n.indexer.last_error},
        "pipeline": {"dropped": dict(p.dropped),
                     "schema_violations": dict(p.schemas.violations),
                     "redactions": _by_tenant(p.redactions)},
        "ingest": _ingest_status(n),
        "detection": _detection_status(n),
        "pii_scan": _pii_status(n),
        # per source: received - time over its recent requests (negative: producer ahead)
        "clock_skew": None if n.options.get("slis") is None
        else n.options["slis"].skew_summary(),
        "scale": _scale_status(n),
        "witnesses": _witness_status(n),
        "retention": None if n.options.get("retention") is None
        else n.options["retention"].status(),
        "self_audit": None if n.options.get("self_audit") is None
        else n.options["self_audit"].status(),
        "canary": None if n.options.get("canary") is None
        else n.options["canary"].status(),
    })


def _witness_status(n: Node) -> list[dict[str, object]] | None:
    """Per witness: cosignatures obtained, and each log's cosigned size and last error."""
    job: WitnessJob | None = n.options.get("witness")
    return None if job is None else job.status()


def _scale_status(n: Node) -> dict[str, object] | None:
    """Scaled out: this process's role, the logs it leads, and whether it runs the
    deployment's background work (docs/scaling.md)."""
    bus = n.options.get("bus")
    if bus is None:
        return None
    leased = n.options.get("leased")
    return {"role": n.options.get("role", "all"), "stream": bus.options.stream,
            "leading": bus.sequencers.leading() if bus.sequencers is not None else [],
            "background": bool(leased is not None and leased.running)}


def _by_tenant(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (tenant, rule), count in sorted(counts.items()):
        out.setdefault(tenant, {})[rule] = count
    return out


def _pii_status(n: Node) -> dict[str, object] | None:
    scan = n.options.get("pii_scan")
    if scan is None:
        return None
    scanned, by_rule = scan.snapshot()
    return {"scanned": scanned, "findings": _by_tenant(dict(by_rule)),
            "last_error": scan.last_error}


def _detection_status(n: Node) -> dict[str, object] | None:
    d = n.options.get("detection")
    if d is None:
        return None
    return {"rules": len(d.rules.ruleset.active), "rules_dir": str(d.rules.directory),
            "rules_error": d.rules.error, "generation": d.rules.generation,
            "lag": d.engine.lag(), "evaluated": d.engine.evaluated,
            "alerts_created": d.engine.alerts_created, "last_error": d.engine.last_error,
            "recorder_error": d.recorder.last_error}


def _ingest_status(n: Node) -> dict[str, object]:
    workers = n.options.get("ingest_workers")
    if workers is None:
        return {"workers": 0, "worker_pids": [], "worker_restarts": 0}
    return {"workers": workers.count, "worker_pids": workers.pids(),
            "worker_restarts": workers.restarts}
