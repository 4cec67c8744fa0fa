"""`GET /v1/dashboards/{executive|oncall|debug|operations}`: the panels the UI draws,
computed from live data — the search index for what happened, the node's counters for
how ingest runs.

A panel is `{id, title, kind: stat|table|series|bars, value?, unit?, columns?, rows?,
points?, note?, state?}`. Counts come from the caller's tenant; node-wide counters
(refused requests) only for admin tokens, since they mix every tenant; the operations
board (dashboards_ops.py) is all node-wide, so admin tokens only."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.datadir import Node
from auditkeep.errors import NotFoundError
from auditkeep.query.aggregate import Aggregates, aggregator
from auditkeep.query.fields import time_us
from auditkeep.query.index import Window
from auditkeep.query.lang import parse
from auditkeep.server import params, polls
from auditkeep.server.aggregate import iso
from auditkeep.server.context import caller, json_response, node, pipelines, record_access
from auditkeep.server.dashboards_ops import operations
from auditkeep.server.reads import log_for

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
Panel = dict[str, Any]


class _Board:
    """What every panel needs: the tenant's log in the index, and the time."""

    def __init__(self, request: Request, tenant: str, admin: bool) -> None:
        self.request = request
        self.n: Node = node(request)
        self.tenant = tenant
        self.admin = admin
        self.now = int(time.time() * 1e6)
        log = self.n.store.get_log(tenant)
        self.log_id = log.id if log is not None else None

    def agg(self, query: str, since_us: int) -> Aggregates | None:
        if self.log_id is None or self.n.index is None:
            return None
        return aggregator(self.n.index, self.log_id, parse(query), Window(since_us, None))

    def count(self, query: str, since_us: int) -> int:
        a = self.agg(query, since_us)
        return a.total() if a is not None else 0

    def groups(self, query: str, field: str, since_us: int, top: int = 10) -> list[list[Any]]:
        a = self.agg(query, since_us)
        return [[*key, n] for key, n in a.groups([field], top)] if a is not None else []

    def series(self, query: str, since_us: int, interval: str) -> list[list[Any]]:
        a = self.agg(query, since_us)
        if a is None:
            return []
        return [[iso(b), c] for b, c in a.histogram(interval, self.now).buckets]

    def sequencer(self) -> Any:
        return self.n.logs.sequencers().get(self.tenant)

    def recent(self, query: str, limit: int) -> list[dict[str, Any]]:
        if self.log_id is None or self.n.index is None:
            return []
        hits = self.n.index.search(self.log_id, parse(query), Window(), limit=limit)
        return self.n.logs.records(self.tenant, [s for _, s in hits], personal=False)


def executive(b: _Board) -> list[Panel]:
    day, week = b.now - DAY_US, b.now - 7 * DAY_US
    total = b.count("", day)
    failed = b.count("outcome:(failure OR denied)", day)
    s = b.sequencer()
    first = _oldest_time(b)
    return [
        {"id": "events-24h", "title": "Events recorded (24 h)", "kind": "stat", "value": total},
        {"id": "ingest-success", "title": "Ingestion success since start", "kind": "stat",
         "value": _ratio(s.stats.committed_events if s else 0,
                         (s.stats.rejected_pushback if s else 0)
                         + (sum(b.n.rejections.values()) if b.admin else 0)),
         "unit": "%", "note": "committed events against events refused with 503"
                             + (" and refused requests" if b.admin else "")},
        {"id": "failed-24h", "title": "Failed or denied actions (24 h)", "kind": "stat",
         "value": failed},
        {"id": "critical-admin", "title": "Critical admin events by actor (7 d)",
         "kind": "table", "columns": ["actor", "events"],
         "rows": b.groups("category:admin AND severity:critical", "actor.id", week)},
        {"id": "storage", "title": "Storage used", "kind": "stat",
         "value": _storage_bytes(b.n), "unit": "bytes",
         "note": "log database, search index and journal on this node"},
        {"id": "retention", "title": "Retention", "kind": "stat", "value": "keep everything",
         "note": "no retention policy is configured: nothing is purged"
                 + (f"; oldest event {first}" if first else "")},
    ]


def oncall(b: _Board) -> list[Panel]:
    hour, day = b.now - HOUR_US, b.now - DAY_US
    s = b.sequencer()
    total_day = b.count("", day)
    unknown = b.count("actor.type:anonymous OR actor.id:(unknown OR anonymous OR "
                      "\"system:anonymous\")", day)
    panels: list[Panel] = [
        {"id": "ingest-rate", "title": "Events per minute (last hour, by event time)",
         "kind": "series", "points": b.series("", hour, "1m")},
        {"id": "queue", "title": "Sequencer queue depth", "kind": "stat",
         "value": s.queued_events if s else 0, "unit": "events"},
        {"id": "pushback", "title": "Events refused with 503 since start", "kind": "stat",
         "value": s.stats.rejected_pushback if s else 0},
        {"id": "latency", "title": "Delivery latency (last 500 events)", "kind": "table",
         "columns": ["percentile", "seconds"], "rows": _latency(b.recent("", 500)),
         "note": "received by the server minus the event's own time"},
        {"id": "unknown-actor", "title": "Unknown-actor rate (24 h)", "kind": "stat",
         "value": _ratio(unknown, total_day - unknown), "unit": "%",
         "note": f"{unknown} of {total_day} events by anonymous or unknown actors"},
        {"id": "index-lag", "title": "Search index lag", "kind": "stat",
         "value": (b.n.indexer.lag().get(b.tenant, {}).get("lag", 0)
                   if b.n.indexer is not None else 0), "unit": "events"},
    ]
    if b.admin:
        panels.insert(3, {"id": "rejects", "title": "Refused ingest requests since start",
                          "kind": "table", "columns": ["status", "requests"],
                          "rows": [[str(k), v] for k, v in sorted(b.n.rejections.items())]})
    return panels


def debug(b: _Board) -> list[Panel]:
    day = b.now - DAY_US
    p = pipelines(b.request)
    recent = b.recent("_exists_:raw.format", 10)
    return [
        {"id": "by-source", "title": "Events per source format (24 h)", "kind": "bars",
         "columns": ["source", "events"],
         "rows": [*b.groups("", "raw.format", day, 20),
                  ["schema v1 (API, SDK)", b.count("-_exists_:raw.format", day)]]},
        {"id": "by-service", "title": "Events per source.service (24 h)", "kind": "bars",
         "columns": ["service", "events"], "rows": b.groups("", "source.service", day, 20)},
        {"id": "errors", "title": "Pipeline drops and schema violations since start",
         "kind": "table", "columns": ["what", "events"],
         "rows": [[f"dropped: {k}", v] for k, v in sorted(p.dropped.items())]
         + [[f"schema violations: {k}", v] for k, v in sorted(p.schemas.violations.items())
            if k == b.tenant or b.admin]},
        {"id": "indexer", "title": "Indexer", "kind": "stat",
         "value": "ok" if b.n.indexer is None or not b.n.indexer.last_error
         else "failing", "note": (b.n.indexer.last_error or "") if b.n.indexer else
         "this server runs without a search index"},
        {"id": "recent-raw", "title": "Recent source events", "kind": "table",
         "columns": ["time", "format", "action", "id"],
         "rows": [[r["time"], r["raw"]["format"], r["action"], r["id"]] for r in recent]},
    ]


BOARDS: dict[str, Callable[[_Board], list[Panel] | Awaitable[list[Panel]]]] = {
    "executive": executive, "oncall": oncall, "debug": debug, "operations": operations}
#: Boards of node-wide figures only: a tenant's token gets 403 rather than an empty board.
ADMIN_BOARDS = frozenset({"operations"})


async def dashboard(request: Request) -> Response:
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"tenant", polls.POLL_PARAM})
    session = polls.poll_session(request)  # the UI's auto-refresh
    name = request.path_params["name"]
    build = BOARDS.get(name)
    if build is None:
        raise NotFoundError(f"no dashboard {name!r}; there are {', '.join(BOARDS)}")
    if name in ADMIN_BOARDS:
        who.require("admin")
    tenant = log_for(who, request.query_params.get("tenant"))
    built = build(_Board(request, tenant, who.is_admin))
    panels = await built if inspect.isawaitable(built) else built
    if session is None:
        await record_access(request, who, tenant, "dashboard", {"name": name}, len(panels))
    else:
        await polls.sessions(request).record(request, who, tenant, "dashboard", name,
                                             {"name": name}, len(panels), session)
    return json_response({"name": name, "tenant": tenant,
                          "generated": iso(int(time.time() * 1e6)), "panels": panels})


def _ratio(good: int, bad: int) -> float | None:
    return None if good + bad == 0 else round(100.0 * good / (good + bad), 2)


def _storage_bytes(n: Node) -> int:
    if n.data is None:
        return 0
    return sum(f.stat().st_size for f in n.data.root.rglob("*") if f.is_file())


def _oldest_time(b: _Board) -> str | None:
    if b.log_id is None or b.n.index is None:
        return None
    hits = b.n.index.search(b.log_id, parse(""), Window(), limit=1, oldest_first=True)
    return iso(hits[0][0]) if hits else None


def _latency(records: list[dict[str, Any]]) -> list[list[Any]]:
    waits = sorted((time_us(r["received"]) - time_us(r["time"])) / 1e6
                   for r in records if "received" in r)
    if not waits:
        return []

    def pick(q: float) -> float:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))], 3)
    return [["p50", pick(0.5)], ["p95", pick(0.95)], ["max", round(waits[-1], 3)]]
