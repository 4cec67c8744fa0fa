"""Reads of audit data: one event with its proof, its raw object, one entry. Each is recorded
in the tenant's `_access` log before it is answered."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.errors import GoneError, NotFoundError
from auditkeep.log.service import ACCESS_SUFFIX, access_log_name, tenant_of
from auditkeep.pipeline.prepare import dedup_key
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access


def log_for(who: Principal, requested: str | None) -> str:
    """The log a read targets: the caller's tenant, or `T._access` when asked for."""
    tenant = who.tenant_for(tenant_of(requested) if requested else None)
    if requested and requested.endswith(ACCESS_SUFFIX):
        return access_log_name(tenant)
    return tenant


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


async def get_event(request: Request) -> Response:
    who = caller(request)
    who.require("read", "audit")
    params.only(request, {"tenant"})
    tenant = log_for(who, request.query_params.get("tenant"))
    event_id = request.path_params["id"]
    n = node(request)
    found = find_event(request, tenant, event_id, personal=who.sees_personal)
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
    tenant = log_for(who, request.query_params.get("tenant"))
    event_id = request.path_params["id"]
    n = node(request)
    found = find_event(request, tenant, event_id, personal=False)
    log = n.store.get_log(tenant)
    raw = n.store.read_raw(log.id, found["seq"]) if log is not None else None
    if raw is None:
        if "raw" in found and log is not None:
            by = n.store.erased_seqs(log.id, found["seq"], found["seq"] + 1).get(found["seq"])
            if by is not None:
                raise GoneError(f"the raw object of event {event_id!r} was erased (erasure "
                                f"record at seq {by})")
        raise NotFoundError(f"event {event_id!r} was sent as schema v1 and has no raw object")
    await record_access(request, who, tenant, "event.raw", {"id": event_id}, 1)
    fmt, data = raw
    return Response(data, media_type=RAW_MEDIA_TYPES.get(fmt, "application/json"),
                    headers={"X-Auditkeep-Raw-Format": fmt})


#: Media types of stored raw objects by format; JSON unless listed.
RAW_MEDIA_TYPES = {"otlp.protobuf": "application/x-protobuf", "syslog": "text/plain"}


def find_event(request: Request, tenant: str, event_id: str, *, personal: bool
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
    found = n.logs.records(name, [seq], personal=who.sees_personal)
    if not found:
        n.logs.entry(name, seq)  # raises PurgedError (410) for an entry retention purged
        raise NotFoundError(f"log {name!r}: seq {seq} is not stored")
    rec = found[0]
    await record_access(request, who, tenant, "entry", {"log": name, "seq": seq}, 1)
    return json_response(rec)
