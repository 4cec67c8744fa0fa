"""The `operations` dashboard: the node's health on the same figures as `/metrics` and
`GET /v1/slos` (the SLIs of health/slis.py, the SLO evaluator's last pass, readiness,
index lag, self-audit, canary), so the UI and deploy/grafana/ never disagree.

Every figure here is node-wide (it mixes tenants), so the board is for admin tokens
only: dashboards.py answers anyone else 403 before building it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from auditkeep.health.burn import BURN_ALERTS
from auditkeep.health.ready import readiness
from auditkeep.health.slis import RECENT_SKEWS

if TYPE_CHECKING:
    from auditkeep.datadir import Node
    from auditkeep.server.dashboards import _Board

Panel = dict[str, Any]
#: |received - time| beyond this (s) flags a source's clock (or its delivery) as off.
SKEW_FLAG = 300.0
_ACTIONS = {a.name: a.action for a in BURN_ALERTS}  # "1h" -> "page", "3d" -> "ticket"


async def operations(b: _Board) -> list[Panel]:
    n = b.n
    # Readiness blocks on a store read (up to its timeout): off the event loop.
    ready, checks = await run_in_threadpool(readiness(n).check, n)
    slis = n.options.get("slis")
    panels = [_readiness(ready, checks), *_slos(n, slis)]
    if slis is not None:
        summary = slis.latency_summary()
        panels += [
            _ingest_success(slis),
            _latency("delivery", "Delivery latency since start", "stage", "events",
                     summary["delivery"], "server received to committed and to searchable"),
            _latency("query", "Query latency since start", "kind", "queries",
                     summary["query"], "request to response, per query kind"),
            _skew(slis.skew_summary()),
        ]
    panels.append(_index_lag(n))
    panels.append(_self_audit(n.options.get("self_audit")))
    canary = n.options.get("canary")
    if canary is not None:
        panels.append(_canary(canary.status()))
    return panels


def _readiness(ready: bool, checks: dict[str, dict[str, Any]]) -> Panel:
    return {"id": "readiness", "title": "Readiness (/readyz)", "kind": "table",
            "state": "ok" if ready else "critical",
            "columns": ["check", "state", "detail"],
            "rows": [[name, "ok" if c["ok"] else "failing", _detail(c)]
                     for name, c in checks.items()],
            "note": "ready: a load balancer may send this process traffic" if ready
            else "not ready: /readyz answers 503"}


def _detail(check: dict[str, Any]) -> str:
    if "detail" in check:
        return str(check["detail"])
    return ", ".join(f"{k} {v}" for k, v in check.items() if k != "ok")


def _slos(n: Node, slis: Any) -> list[Panel]:
    job = n.options.get("slo")
    if job is None:
        return [{"id": "slos", "title": "SLOs", "kind": "stat", "value": "not evaluated",
                 "note": "this process runs no SLO evaluator (background jobs elsewhere, "
                         "or `slos: []`); GET /v1/slos says the same"}]
    return [_slo(st, slis, job.interval) for st in job.status()]


def _slo(st: Any, slis: Any, interval: float) -> Panel:
    within = f" within {st.within:g} s" if st.within is not None else ""
    good, total = _good_total(slis, st.sli, st.within)
    rows: list[list[Any]] = [
        ["objective (%)", st.objective],
        ["SLI since start (%)", None if not total else round(100.0 * good / total, 3)],
        ["good / all", f"{good:,} / {total:,}"],
        ["error budget left (%)", None if st.budget_remaining is None
         else round(100.0 * st.budget_remaining, 2)],
        *[[f"burn rate {w}", None if v is None else round(v, 3)] for w, v in st.burn.items()],
        ["alerting", ", ".join(f"{a} ({_ACTIONS.get(a, '?')})" for a in st.firing) or "no"],
    ]
    actions = {_ACTIONS.get(a) for a in st.firing}
    return {"id": f"slo-{st.name}", "title": f"SLO {st.name}: {st.objective:g}% {st.sli}"
            f"{within}", "kind": "table", "columns": ["figure", "value"], "rows": rows,
            "state": "critical" if "page" in actions else "warning" if actions else "ok",
            "note": f"burn rates and budget as the evaluator last computed them (every "
                    f"{interval:g} s; GET /v1/slos), empty until it has two samples; a "
                    f"burn rate of 1 spends the budget exactly over the period"}


def _good_total(slis: Any, sli: str, within: float | None) -> tuple[int, int]:
    if slis is None:
        return 0, 0
    try:
        good, total = slis.good_total(sli, within)
    except ValueError:  # an SLI this build does not measure
        return 0, 0
    return int(good), int(total)


def _ingest_success(slis: Any) -> Panel:
    good, total = slis.good_total("ingest_success")
    return {"id": "ingest-success", "title": "Ingest success since start", "kind": "stat",
            "value": None if not total else round(100.0 * good / total, 3), "unit": "%",
            "note": f"{good:,} of {total:,} ingest requests not answered 5xx "
                    f"(4xx are the client's)"}


def _latency(group: str, title: str, what: str, counted: str,
             rows: dict[str, dict[str, Any]], note: str) -> Panel:
    return {"id": f"{group}-latency", "title": title, "kind": "table",
            "columns": [what, counted, "p50 (s)", "p99 (s)"],
            "rows": [[name, r["count"], r["p50"], r["p99"]] for name, r in rows.items()],
            "note": f"{note}; quantiles estimated from the /metrics buckets, as Grafana's "
                    f"histogram_quantile does"}


def _skew(summary: dict[str, dict[str, Any]]) -> Panel:
    rows, flagged = [], 0
    for source, s in summary.items():
        flag = _skew_flag(s)
        flagged += flag != "ok"
        rows.append([source, flag, *(round(s[k], 1) for k in ("p50", "min", "max")),
                     s["samples"]])
    return {"id": "clock-skew", "title": "Clock skew by source", "kind": "table",
            "columns": ["source", "flag", "p50 (s)", "min (s)", "max (s)", "samples"],
            "rows": rows, "state": "warning" if flagged else "ok",
            "note": f"server received minus the event's time, one event per request over "
                    f"the last {RECENT_SKEWS} requests of each source; negative: the producer's "
                    f"clock is ahead; flagged beyond ±{SKEW_FLAG / 60:g} min"}


def _skew_flag(s: dict[str, Any]) -> str:
    p50 = float(s["p50"])
    if p50 < -SKEW_FLAG:
        return f"clock ahead {_span(-p50)}"
    if p50 > SKEW_FLAG:
        return f"{_span(p50)} late (clock behind, or slow delivery)"
    if float(s["min"]) < -SKEW_FLAG or float(s["max"]) > SKEW_FLAG:
        return f"some beyond ±{SKEW_FLAG / 60:g} min"
    return "ok"


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _index_lag(n: Node) -> Panel:
    if n.indexer is None:
        return {"id": "index-lag", "title": "Search index lag", "kind": "stat",
                "value": "no indexer", "note": "this process runs without a search index"}
    lag = n.indexer.lag()
    return {"id": "index-lag", "title": "Search index lag", "kind": "table",
            "columns": ["log", "entries behind"],
            "rows": [[log, v["lag"]] for log, v in sorted(lag.items())],
            "state": "ok" if n.indexer.last_error is None else "warning",
            "note": n.indexer.last_error or "committed entries not yet fully searchable"}


def _self_audit(job: Any) -> Panel:
    panel: Panel = {"id": "self-audit", "title": "Self-audit, last pass", "kind": "stat"}
    if job is None:
        return {**panel, "value": "off", "note": "no self-audit in this process "
                "(`self_audit: every: off`, or background jobs run elsewhere)"}
    st = job.status()
    last = st.get("last")
    if last is None:
        return {**panel, "value": "not run yet", "note": st.get("last_error") or
                "the first pass has not finished"}
    note = (f"{last['started']}: {len(last['checks'])} checks in {last['seconds']:g} s; "
            f"passes since start: {st['passes']:,}")
    if not last["ok"]:
        note += "; " + "; ".join(last["findings"][:3])
    elif st.get("last_failure") is not None:
        note += f"; last failure {st['last_failure']['started']}"
    return {**panel, "value": "passed" if last["ok"] else "failed",
            "state": "ok" if last["ok"] else "critical", "note": note}


def _canary(st: dict[str, Any]) -> Panel:
    """The canary job's status (health/canary_job.py: runs, failures, last, ...)."""
    panel: Panel = {"id": "canary", "title": "Canary, last run", "kind": "stat"}
    last = st.get("last")
    if not last:
        return {**panel, "value": "not run yet",
                "note": st.get("last_error") or "the first run is one interval after start"}
    ok = bool(last.get("ok"))
    parts = [f"{last.get('at', '?')}: " + ", ".join(
        f"{k} {v} s" for k, v in (last.get("latencies") or {}).items())]
    if not ok and last.get("detail"):
        parts.append(str(last["detail"]))
    parts.append(f"runs {st.get('runs', 0):,}, failed {st.get('failures', 0):,}")
    if ok and st.get("last_failure"):
        parts.append(f"last failure {st['last_failure'].get('at', '?')} at "
                     f"{st['last_failure'].get('failed')}")
    return {**panel, "value": "passed" if ok else f"failed at {last.get('failed')}",
            "state": "ok" if ok else "critical", "note": "; ".join(parts)}
