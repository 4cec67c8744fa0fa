"""Reads of audit data: search, one event with its proof, one entry. Each is recorded
in the tenant's `_access` log before it is answered."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.errors import NotFoundError, ValidationError
from auditkeep.log.service import ACCESS_SUFFIX, access_log_name, tenant_of
from auditkeep.pipeline.prepare import dedup_key
from auditkeep.query.index import Filters, decode_cursor, encode_cursor
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access

SEARCH_PARAMS = {"actor", "action", "resource_type", "resource_id", "outcome", "category",
                 "source_service", "since", "until", "q", "limit", "cursor", "tenant"}
MAX_LIMIT = 1000


def _log_for(who: Principal, requested: str | None) -> str:
    """The log a read targets: the caller's tenant, or `T._access` when asked for."""
    tenant = who.tenant_for(tenant_of(requested) if requested else None)
    if requested and requested.endswith(ACCESS_SUFFIX):
        return access_log_name(tenant)
    return tenant


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


async def search_events(request: Request) -> Response:
    who = caller(request)
    who.require("read", "audit")
    params.only(request, SEARCH_PARAMS)
    tenant = _log_for(who, request.query_params.get("tenant"))
    n = node(request)
    if n.index is None:
        raise ValidationError("this server runs without a search index")
    qp = request.query_params
    limit = params.integer_or(request, "limit", 100, lo=1, hi=MAX_LIMIT)
    f = Filters(
        actor=qp.get("actor"), action=qp.get("action"), resource_type=qp.get("resource_type"),
        resource_id=qp.get("resource_id"), outcome=qp.get("outcome"),
        category=qp.get("category"), source_service=qp.get("source_service"),
        since_us=params.timestamp_us(request, "since"),
        until_us=params.timestamp_us(request, "until"), q=qp.get("q"),
    )
    cursor = decode_cursor(qp["cursor"]) if qp.get("cursor") else None
    log = n.store.get_log(tenant)
    hits = n.index.search(log.id, f, limit=limit + 1, cursor=cursor) if log else []
    more = len(hits) > limit
    hits = hits[:limit]
    records = n.logs.records(tenant, [s for _, s in hits], personal=who.sees_personal)
    await record_access(request, who, tenant, "search", dict(qp), len(records))
    next_cursor = encode_cursor(*hits[-1]) if more else None
    return json_response({"events": records, "next_cursor": next_cursor})


async def get_event(request: Request) -> Response:
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"tenant"})
    tenant = _log_for(who, request.query_params.get("tenant"))
    event_id = request.path_params["id"]
    n = node(request)
    found = _find_event(request, tenant, event_id, personal=who.sees_personal)
    cp = n.logs.checkpoint(tenant)
    size, leaf, proof = n.logs.inclusion_proof(tenant, found["seq"], cp.size)
    await record_access(request, who, tenant, "event", {"id": event_id}, 1)
    return json_response({
        "record": found,
        "receipt": {"id": event_id, "seq": found["seq"], "leaf_hash": b64(leaf)},
        "proof": {"seq": found["seq"], "tree_size": size, "leaf_hash": b64(leaf),
                  "hashes": [b64(h) for h in proof]},
        "checkpoint": cp.note,
    })


async def get_event_raw(request: Request) -> Response:
    """The producer's original object of an event that came through a source, byte for
    byte as it arrived (its SHA-256 is the record's `raw.sha256`)."""
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"tenant"})
    tenant = _log_for(who, request.query_params.get("tenant"))
    event_id = request.path_params["id"]
    n = node(request)
    found = _find_event(request, tenant, event_id, personal=False)
    log = n.store.get_log(tenant)
    raw = n.store.read_raw(log.id, found["seq"]) if log is not None else None
    if raw is None:
        raise NotFoundError(f"event {event_id!r} was sent as schema v1 and has no raw object")
    await record_access(request, who, tenant, "event.raw", {"id": event_id}, 1)
    fmt, data = raw
    return Response(data, media_type=RAW_MEDIA_TYPES.get(fmt, "application/json"),
                    headers={"X-Auditkeep-Raw-Format": fmt})


#: Media types of stored raw objects by format; JSON unless listed.
RAW_MEDIA_TYPES = {"otlp.protobuf": "application/x-protobuf", "syslog": "text/plain"}


def _find_event(request: Request, tenant: str, event_id: str, *, personal: bool
                ) -> dict[str, Any]:
    n = node(request)
    log = n.store.get_log(tenant)
    if log is not None:
        seqs = n.store.find_dedup(log.id, [dedup_key(event_id)]).get(dedup_key(event_id), [])
        for rec in n.logs.records(tenant, seqs, personal=personal):
            if rec["id"] == event_id:
                return rec
    raise NotFoundError(f"no event with id {event_id!r} in tenant {tenant!r}")


async def get_entry(request: Request) -> Response:
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"format"})
    name = request.path_params["tenant"]
    tenant = who.tenant_for(tenant_of(name))
    seq = request.path_params["seq"]
    fmt = request.query_params.get("format", "record")
    if fmt not in ("record", "canonical"):
        raise params.bad("format", "unknown format", "record or canonical", fmt)
    n = node(request)
    if fmt == "canonical":
        entry = n.logs.entry(name, seq)
        await record_access(request, who, tenant, "entry", {"log": name, "seq": seq,
                                                            "format": fmt}, 1)
        return Response(entry, media_type="application/json")
    rec = n.logs.records(name, [seq], personal=who.sees_personal)[0]
    await record_access(request, who, tenant, "entry", {"log": name, "seq": seq}, 1)
    return json_response(rec)
