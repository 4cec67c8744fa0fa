"""Investigation reads: the query-language search, the filter search of `GET /v1/events`,
and the context around one event. Every answer is recorded in `_access` first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.archive.reading import search_archive
from auditkeep.auth import Principal
from auditkeep.errors import NotFoundError, ValidationError
from auditkeep.health.slis import timed
from auditkeep.query.ast import And, Eq, Literal_, Node
from auditkeep.query.fields import time_us
from auditkeep.query.filters import FILTER_FIELDS, filters_query
from auditkeep.query.index import Window, decode_cursor, encode_cursor
from auditkeep.query.lang import parse
from auditkeep.server import params, polls
from auditkeep.server.archive import archive_job
from auditkeep.server.context import caller, json_response, node, record_access
from auditkeep.server.polls import POLL_PARAM, poll_session
from auditkeep.server.reads import find_event, log_for

MAX_LIMIT = 1000
EVENTS_PARAMS = {*FILTER_FIELDS, "since", "until", "q", "limit", "cursor", "tenant"}
SEARCH_PARAMS = {"query", "saved", "since", "until", "limit", "cursor", "tenant", "include",
                 POLL_PARAM}


@dataclass(frozen=True, slots=True)
class Scope:
    """Who reads which log, what they asked for, and the window."""

    who: Principal
    tenant: str
    node: Node
    window: Window
    query: str


def scope(request: Request, allowed: set[str]) -> Scope:
    """Authorise a read and parse `query`/`saved`/`since`/`until`/`cursor` into a Scope."""
    who = caller(request)
    who.require("read", "audit")
    params.only(request, allowed)
    qp = request.query_params
    tenant = log_for(who, qp.get("tenant"))
    text = qp.get("query", "")
    since, until = params.timestamp_us(request, "since"), params.timestamp_us(request, "until")
    if qp.get("saved"):
        saved = load_saved(request, tenant, qp["saved"])
        if "query" in qp:
            raise params.bad("query", "give query or saved, not both", "one of them", text)
        text = saved.get("query", "")
        since = since if since is not None else _saved_time(saved, "since")
        until = until if until is not None else _saved_time(saved, "until")
    q = parse(text) if "query" in allowed else filters_query(qp)
    cursor = decode_cursor(qp["cursor"]) if qp.get("cursor") else None
    return Scope(who, tenant, q, Window(since, until, cursor), text)


def load_saved(request: Request, tenant: str, name: str) -> dict[str, Any]:
    for s in node(request).store.saved_searches(tenant):
        if s.name == name:
            body: dict[str, Any] = orjson.loads(s.body)
            return body
    raise NotFoundError(f"no saved search {name!r} in tenant {tenant!r}")


def _saved_time(saved: dict[str, Any], key: str) -> int | None:
    raw = saved.get(key)
    if not raw:
        return None
    return params.parse_time_us(raw, key)


def hits_to_page(request: Request, s: Scope, limit: int, *, oldest_first: bool = False
                 ) -> tuple[list[dict[str, Any]], str | None]:
    n = node(request)
    if n.index is None:
        raise ValidationError("this server runs without a search index")
    log = n.store.get_log(s.tenant)
    hits = n.index.search(log.id, s.node, s.window, limit=limit + 1,
                          oldest_first=oldest_first) if log else []
    more = len(hits) > limit
    hits = hits[:limit]
    records = n.logs.records(s.tenant, [q for _, q in hits], personal=s.who.sees_personal)
    return records, (encode_cursor(*hits[-1]) if more else None)


def with_archive(request: Request, s: Scope, limit: int
                 ) -> tuple[list[dict[str, Any]], str | None, list[int]]:
    """A page of the hot index's hits merged with purged events found in the archive,
    by (time, seq) newest first; and the seqs of those that came from the archive.

    Both sources are read one past the page, so a page never skips an event: when a
    source had more, the page stops at the oldest key read from it (a page may then be
    shorter than `limit`, even empty with a `next_cursor`; docs/archive.md)."""
    n = node(request)
    if n.index is None:
        raise ValidationError("this server runs without a search index")
    job = archive_job(n)
    log = n.store.get_log(s.tenant)
    if log is None:
        return [], None, []
    hits = n.index.search(log.id, s.node, s.window, limit=limit + 1)
    gone = n.store.purged_ranges(log.id)
    hot = [h for h in hits if not any(p.first <= h[1] < p.end for p in gone)]
    cold = search_archive(n.logs, job.archiver.objects, s.tenant, s.node, s.window, limit + 1)
    stops = [src[-1] for src in (hits, [(t, q) for t, q, _ in cold]) if len(src) > limit]
    cutoff = max(stops) if stops else None
    merged: list[tuple[int, int, dict[str, Any] | None]] = [(t, q, None) for t, q in hot]
    merged += cold
    merged.sort(key=lambda x: (x[0], x[1]), reverse=True)
    page = [m for m in merged if cutoff is None or (m[0], m[1]) >= cutoff][:limit]
    more = cutoff is not None or len(merged) > limit
    hot_records = iter(n.logs.records(s.tenant, [q for _, q, r in page if r is None],
                                      personal=s.who.sees_personal))
    records = [r if r is not None else next(hot_records) for _, _, r in page]
    last = (page[-1][0], page[-1][1]) if page else cutoff
    next_cursor = encode_cursor(*last) if more and last is not None else None
    return records, next_cursor, [q for _, q, r in page if r is not None]


async def search_events(request: Request) -> Response:
    """`GET /v1/events`: the filter parameters."""
    return await _search(request, EVENTS_PARAMS)


async def search(request: Request) -> Response:
    """`GET /v1/search`: the query language (or a saved search)."""
    return await _search(request, SEARCH_PARAMS)


@timed("search")
async def _search(request: Request, allowed: set[str]) -> Response:
    s = scope(request, allowed)
    session = poll_session(request)  # only /v1/search allows it (the UI's live tail)
    limit = params.integer_or(request, "limit", 100, lo=1, hi=MAX_LIMIT)
    include = request.query_params.get("include")
    if include not in (None, "", "archive"):
        raise params.bad("include", "unknown value", "archive", include)
    from_archive: list[int] | None = None
    if include == "archive":
        records, next_cursor, from_archive = await run_in_threadpool(with_archive, request, s,
                                                                     limit)
    else:
        records, next_cursor = hits_to_page(request, s, limit)
    if session is None:
        await record_access(request, s.who, s.tenant, "search", dict(request.query_params),
                            len(records))
    else:
        await polls.sessions(request).record(request, s.who, s.tenant, "search", s.query,
                                             dict(request.query_params), len(records), session)
    body: dict[str, Any] = {"events": records, "next_cursor": next_cursor}
    if from_archive is not None:
        body["from_archive"] = from_archive  # seqs read from the cold archive
    return json_response(body)


CONTEXT_BY = {"actor": ("actor.id",), "resource": ("resource.type", "resource.id"),
              "trace": ("trace_id",), "request": ("request_id",)}


async def context(request: Request) -> Response:
    """`GET /v1/events/{id}/context`: the events just before and after one event that
    share its actor, resource, trace or request."""
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"by", "before", "after", "tenant"})
    qp = request.query_params
    tenant = log_for(who, qp.get("tenant"))
    by = qp.get("by", "actor")
    if by not in CONTEXT_BY:
        raise params.bad("by", "unknown context", ", ".join(CONTEXT_BY), by)
    before = params.integer_or(request, "before", 10, lo=0, hi=100)
    after = params.integer_or(request, "after", 10, lo=0, hi=100)
    event_id = request.path_params["id"]
    event = find_event(request, tenant, event_id, personal=who.sees_personal)
    values = _context_values(event, by)
    if values is None:
        raise params.bad("by", f"the event has no {by} to follow", "a field the event has", by)
    q: Node = And(tuple(Eq(p, Literal_(str(v))) for p, v in values)) if len(values) > 1 \
        else Eq(values[0][0], Literal_(str(values[0][1])))
    at = (time_us(event["time"]), event["seq"])
    older, _ = hits_to_page(request, Scope(who, tenant, q, Window(cursor=at), ""), before)
    newer, _ = hits_to_page(request, Scope(who, tenant, q, Window(after=at), ""), after,
                            oldest_first=True)
    await record_access(request, who, tenant, "context", {"id": event_id, "by": by},
                        len(older) + len(newer) + 1)
    return json_response({"event": event, "by": by, "before": older[::-1], "after": newer})


def _context_values(event: dict[str, Any], by: str) -> list[tuple[str, Any]] | None:
    out = []
    for path in CONTEXT_BY[by]:
        obj: Any = event
        for part in path.split("."):
            obj = obj.get(part) if isinstance(obj, dict) else None
        if obj is None:
            return None
        out.append((path, obj))
    return out
