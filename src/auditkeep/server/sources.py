"""Source endpoints: producers' own formats, mapped onto schema v1, raw kept byte-exactly.

Every source follows one path: slice each original object out of the body (its exact
bytes), map it with a pure function from `auditkeep.sources`, then validate, prepare and
sequence the mapped events like `POST /v1/events` does, with the originals stored beside
the log. A request is atomic: an object that cannot be mapped fails the request with a
problem naming it, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.auth import Principal
from auditkeep.errors import FieldProblem, PayloadTooLarge, ValidationError
from auditkeep.log.sequencer import AppendResult
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import check_utf8, decode_events, problem_from_msgspec
from auditkeep.server.batches import batch_facts
from auditkeep.server.context import caller, json_response, node, pipelines
from auditkeep.server.ingest import read_body, receipts_response
from auditkeep.sources import cloudtrail, gcp, otlp
from auditkeep.sources.generic import GenericMapping
from auditkeep.sources.k8s import K8sEventMapper

#: One mapped event: (its schema v1 dict or None when filtered out, raw format, raw bytes).
Mapped = tuple[dict[str, Any] | None, str, bytes]


class _EventList(msgspec.Struct):
    """An `audit.k8s.io/v1` EventList; each item kept as its exact bytes."""

    items: list[msgspec.Raw] = msgspec.field(default_factory=list)
    kind: str | None = None


_event_list = msgspec.json.Decoder(_EventList)


def k8s_endpoint(mapper: K8sEventMapper) -> Callable[[Request], Any]:
    """`POST /v1/sources/k8s`: the body a kube-apiserver audit webhook sends."""

    async def post_k8s(request: Request) -> Response:
        _ingest_token(request)
        body = await read_body(request)
        check_utf8(body)
        try:
            parsed = _event_list.decode(body)
        except msgspec.DecodeError as exc:
            raise ValidationError(f"not an audit.k8s.io EventList: {exc}",
                                  problems=[problem_from_msgspec(exc, None)]) from None
        if parsed.kind not in (None, "EventList"):
            raise ValidationError("not an EventList", problems=[FieldProblem(
                "/kind", "wrong kind", "EventList", str(parsed.kind))])
        mapped: list[Mapped] = []
        problems: list[FieldProblem] = []
        for i, raw in enumerate(parsed.items):
            data = bytes(raw)
            try:
                mapped.append((mapper(orjson.loads(data), f"/items/{i}"), "k8s.audit", data))
            except ValidationError as exc:
                problems += [_indexed(p, i) for p in exc.problems]
            except orjson.JSONDecodeError as exc:
                problems.append(FieldProblem(f"/items/{i}", f"not JSON: {exc}", index=i))
        if problems:
            raise ValidationError(f"{len(problems)} problem(s) in the EventList",
                                  problems=problems)
        return await ingest_mapped(request, mapped, "k8s")

    return post_k8s


async def post_cloudtrail(request: Request) -> Response:
    """`POST /v1/sources/cloudtrail`: a CloudTrail log file's body, `{"Records": [...]}`
    (gzip accepted, decompressed within a bound)."""
    _ingest_token(request)
    body = gunzip_bounded(await read_body(request))
    check_utf8(body)
    records = cloudtrail.decode_log_file(body)
    mapped: list[Mapped] = []
    problems: list[FieldProblem] = []
    for i, (raw, record) in enumerate(records):
        try:
            mapped.append((cloudtrail.map_record(record, f"/Records/{i}"), cloudtrail.FORMAT,
                           raw))
        except ValidationError as exc:
            problems += [_indexed(p, i) for p in exc.problems]
    if problems:
        raise ValidationError(f"{len(problems)} problem(s) in the log file", problems=problems)
    return await ingest_mapped(request, mapped, "cloudtrail")


async def post_gcp(request: Request) -> Response:
    """`POST /v1/sources/gcp`: a Pub/Sub push body (one LogEntry), or LogEntries as a
    bucket export writes them (JSON lines), a JSON array or one object."""
    _ingest_token(request)
    body = gunzip_bounded(await read_body(request))
    check_utf8(body)
    if _is_push(body):
        pushed = gcp.parse_pubsub_push(body)
        entries = [(0, pushed.raw, pushed.entry)]
    else:
        entries = gcp.decode_export(body)
    mapped: list[Mapped] = []
    problems: list[FieldProblem] = []
    for position, raw, entry in entries:
        try:
            mapped.append((gcp.map_log_entry(entry, f"/{position}"), gcp.FORMAT, raw))
        except ValidationError as exc:
            problems += [_indexed(p, position) for p in exc.problems]
    if problems:
        raise ValidationError(f"{len(problems)} problem(s) in the log entries",
                              problems=problems)
    return await ingest_mapped(request, mapped, "gcp")


def _is_push(body: bytes) -> bool:
    """One JSON object with a `message` and a `subscription`: a Pub/Sub push."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:  # JSON lines, or not JSON at all: decode_export says
        return False
    return isinstance(obj, dict) and "message" in obj and "subscription" in obj


MAX_INFLATED = 64 << 20


def gunzip_bounded(body: bytes, limit: int = MAX_INFLATED) -> bytes:
    """The body, gunzipped when it is gzip, refusing to inflate past `limit` bytes (a
    10 MiB request must not become gigabytes)."""
    if body[:2] != b"\x1f\x8b":
        return body
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValidationError(f"not a gzip body: {exc}", problems=[
            FieldProblem("/", "cannot decompress", "gzip", str(exc))]) from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the gzip body inflates past {limit} bytes", problems=[
            FieldProblem("/", "body too large", f"<= {limit} bytes inflated",
                         f"> {limit} bytes")])
    return out


async def ingest_mapped(request: Request, mapped: Sequence[Mapped], source: str) -> Response:
    """Run the tenant's configured stages for `source`, then sequence the mapped events
    of one request (atomically) with their raw originals; answer with receipts."""
    tenant, result, extra = await sequence_mapped(request, mapped, source)
    if result is None:
        return json_response({"tenant": tenant, "receipts": [], **extra,
                              "checkpoint": node(request).logs.checkpoint(tenant).note},
                             status=200)
    return receipts_response(tenant, result, **extra)


async def sequence_mapped(request: Request, mapped: Sequence[Mapped], source: str
                          ) -> tuple[str, AppendResult | None, dict[str, int]]:
    """(tenant, the append's result or None when nothing was left, counts of filtered
    and dropped events)."""
    who = _ingest_token(request)
    tenant = who.tenant_for(request.query_params.get("tenant"))
    kept = [(ev, fmt, data) for ev, fmt, data in mapped if ev is not None]
    filtered = len(mapped) - len(kept)
    staged, positions, dropped = pipelines(request).run_dicts(tenant, source,
                                                              [ev for ev, _, _ in kept])
    kept = [(ev, kept[i][1], kept[i][2]) for ev, i in zip(staged, positions, strict=True)]
    if kept:
        redacted = pipelines(request).redact_raws(tenant, source, [ev for ev, _, _ in kept],
                                                  [data for _, _, data in kept])
        kept = [(ev, fmt, data) for (ev, fmt, _), data in zip(kept, redacted, strict=True)]
    pipelines(request).count_redactions(tenant, [ev for ev, _, _ in kept])
    extra = {"filtered": filtered, **({"dropped": dropped} if dropped else {})}
    if not kept:
        slis = node(request).options.get("slis")
        if slis is not None:
            slis.ingest_request(source, 200)
        return tenant, None, extra
    try:
        events = decode_events(orjson.dumps([ev for ev, _, _ in kept]), ndjson=False)
    except ValidationError as exc:  # a mapper bug rather than bad input: say which object
        raise ValidationError(f"a mapped event is not valid schema v1: {exc.detail}",
                              problems=exc.problems) from None
    pipelines(request).apply_schemas(tenant, events, single=False)
    pendings = prepare(events, tenant=tenant, submitter=who.id, may_set_tenant=False,
                       raws=[(fmt, data) for _, fmt, data in kept])
    n = node(request)
    result = await asyncio.wrap_future(n.logs.append(tenant, pendings))
    slis = n.options.get("slis")
    if slis is not None:  # once per request, as for /v1/events (health/slis.py)
        new = sum(1 for r in result.receipts if not r.duplicate)
        slis.committed(tenant, source, len(pendings), new, result.size, batch_facts(pendings))
        slis.ingest_request(source, 200)
    return tenant, result, extra


async def post_otlp_logs(request: Request) -> Response:
    """`POST /v1/otlp/v1/logs`: OTLP/HTTP logs in protobuf or JSON (gzip/deflate too).
    Records carrying `audit.action` become events; others are skipped and counted. The
    answer is an ExportLogsServiceResponse in the request's encoding, as OTLP clients
    expect; errors are problem+json (400: the exporter drops, 503: it retries)."""
    _ingest_token(request)
    body = await read_body(request)
    ctype = request.headers.get("content-type", "")
    logs = otlp.decode_request(body, ctype, request.headers.get("content-encoding"))
    result = otlp.map_logs(logs)
    mapped = [(m.event, m.raw_format, m.raw) for m in result.records]
    _, _, extra = await sequence_mapped(request, mapped, "otlp")
    skipped = result.skipped + extra.get("dropped", 0)
    message = (f"{result.skipped} log record(s) without {otlp.ACTION_KEY} were not recorded"
               if result.skipped else "")
    media = otlp.CONTENT_JSON if "json" in ctype.lower() else otlp.CONTENT_PROTOBUF
    return Response(otlp.encode_response(ctype, rejected=skipped, message=message),
                    media_type=media)


def generic_endpoint(mapping: GenericMapping) -> Callable[[Request], Any]:
    """A configured generic JSON source: one object, an array, or NDJSON, each mapped by
    the configuration's JSON pointers; each object's exact bytes kept as its raw."""

    async def post_generic(request: Request) -> Response:
        _ingest_token(request)
        body = await read_body(request)
        check_utf8(body)
        objects = _json_objects(body)
        mapped: list[Mapped] = []
        problems: list[FieldProblem] = []
        for i, (raw, obj) in enumerate(objects):
            try:
                mapped.append((mapping(obj, f"/{i}"), mapping.raw_format, raw))
            except ValidationError as exc:
                problems += [_indexed(p, i) for p in exc.problems]
        if problems:
            raise ValidationError(f"{len(problems)} problem(s) in the request",
                                  problems=problems)
        return await ingest_mapped(request, mapped, f"generic.{mapping.name}")

    return post_generic


_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def _json_objects(body: bytes) -> list[tuple[bytes, Any]]:
    """Each object of a JSON object / array / NDJSON body, with its exact bytes."""
    stripped = body.strip()
    try:
        if stripped.startswith(b"["):
            raws = [bytes(r) for r in _raw_list.decode(stripped)]
        elif b"\n" in stripped:
            raws = [line for line in stripped.split(b"\n") if line.strip()]
        else:
            raws = [stripped]
        return [(raw, orjson.loads(raw)) for raw in raws]
    except (msgspec.DecodeError, orjson.JSONDecodeError) as exc:
        raise ValidationError(f"malformed JSON: {exc}", problems=[
            FieldProblem("/", "malformed JSON", "JSON", str(exc))]) from None


def _ingest_token(request: Request) -> Principal:
    """The caller, who must hold `ingest`: checked before the body is read, so an
    unauthenticated sender gets its 401 without costing a parse."""
    who: Principal | None = getattr(request.state, "ingest_principal", None)
    if who is None:
        who = caller(request)
        who.require("ingest")
        request.state.ingest_principal = who
    return who


def _indexed(p: FieldProblem, index: int) -> FieldProblem:
    return FieldProblem(p.pointer, p.detail, p.expected, p.actual, index=index)
