"""OTLP/HTTP logs on the wire: the decoded export (types), decoding protobuf and JSON
bodies, and the ExportLogsServiceResponse. Mapping to schema v1 is in `otlp`."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import msgspec
import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from auditkeep.errors import FieldProblem, PayloadTooLarge, ValidationError
from auditkeep.pipeline.validate import (
    MAX_BODY_BYTES,
    problem_from_msgspec,
)
from auditkeep.sources._common import type_name as _type_name

CONTENT_PROTOBUF = "application/x-protobuf"
CONTENT_JSON = "application/json"
RAW_FORMATS = {"protobuf": "otlp.protobuf", "json": "otlp.json"}

MAX_NESTING = 64  # AnyValue nesting read from JSON; metadata keeps 8 levels of it
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_SIGNED = re.compile(r"^-?[0-9]{1,19}$")

Attributes = tuple[tuple[str, Any], ...]


class KvList(tuple[tuple[str, Any], ...]):
    """An OTLP `kvlistValue`: (key, value) pairs in order, told apart from an array (a
    list). Other values are `str`, `bool`, `int`, `float`, `bytes` or None (empty)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class OtlpOrigin:
    """What a log record was sent under: its resource's attributes and its scope."""

    resource: Attributes = ()
    scope_name: str = ""
    scope_version: str = ""


@dataclass(frozen=True, slots=True)
class OtlpLogRecord:
    """One OTLP `LogRecord`, decoded the same from protobuf and from JSON. `raw` is its own
    bytes: `LogRecord.SerializeToString()`, or the exact slice of a JSON body."""

    pointer: str
    raw: bytes
    origin: OtlpOrigin
    time_unix_nano: int = 0
    observed_time_unix_nano: int = 0
    severity_number: int = 0
    severity_text: str = ""
    body: Any = None
    attributes: Attributes = ()
    dropped_attributes_count: int = 0
    flags: int = 0
    trace_id: bytes = b""
    span_id: bytes = b""
    event_name: str = ""


@dataclass(frozen=True, slots=True)
class OtlpLogs:
    """A decoded `ExportLogsServiceRequest`: its records in body order."""

    encoding: Literal["protobuf", "json"]
    records: tuple[OtlpLogRecord, ...]


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """One audit record as a schema v1 event, with the original to store beside it."""

    event: dict[str, Any]
    raw: bytes
    raw_format: str  # "otlp.protobuf" or "otlp.json"
    pointer: str  # e.g. /resourceLogs/0/scopeLogs/1/logRecords/3


@dataclass(frozen=True, slots=True)
class MappedLogs:
    records: list[MappedRecord]
    skipped: int  # log records without `audit.action`: not audit records, not stored


# -- decoding -------------------------------------------------------------------------


def decode_request(body: bytes, content_type: str, content_encoding: str | None = None
                   ) -> OtlpLogs:
    """An OTLP/HTTP logs export body (`application/x-protobuf` or `application/json`,
    optionally gzip- or deflate-compressed) as `OtlpLogs`; raises `ValidationError` naming
    every malformed field by JSON pointer (lowerCamelCase names for protobuf too)."""
    body = _decompress(body, content_encoding)
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (CONTENT_PROTOBUF, "application/protobuf"):
        return _from_protobuf(body)
    if media == CONTENT_JSON:
        return _from_json(body)
    raise ValidationError(
        f"an OTLP/HTTP body is {CONTENT_PROTOBUF} or {CONTENT_JSON}, not {media or 'untyped'}",
        problems=[FieldProblem("/header/content-type", "unsupported media type",
                               f"{CONTENT_PROTOBUF} or {CONTENT_JSON}", media or "missing")])


def encode_response(content_type: str, *, rejected: int = 0, message: str = "") -> bytes:
    """The `ExportLogsServiceResponse` body in the request's encoding; `rejected` and
    `message` fill `partial_success` (a message with 0 rejected is a warning)."""
    json_body = content_type.split(";", 1)[0].strip().lower() == CONTENT_JSON
    if not rejected and not message:
        return b"{}" if json_body else b""
    if json_body:
        partial: dict[str, Any] = {"rejectedLogRecords": str(rejected)} if rejected else {}
        if message:
            partial["errorMessage"] = message
        return orjson.dumps({"partialSuccess": partial})
    response = ExportLogsServiceResponse()
    response.partial_success.rejected_log_records = rejected
    response.partial_success.error_message = message
    return response.SerializeToString()


def _decompress(body: bytes, encoding: str | None) -> bytes:
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in ("gzip", "deflate"):
        raise ValidationError(f"unsupported content encoding {name!r}", problems=[FieldProblem(
            "/header/content-encoding", "unsupported encoding", "gzip, deflate or identity",
            name)])
    # wbits 47: gzip or zlib header, detected; raw deflate (-15) is what some send as deflate
    for wbits in ((47,) if name == "gzip" else (47, -15)):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, MAX_BODY_BYTES + 1)
        except zlib.error:
            continue
        if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"the {name} body inflates to more than {MAX_BODY_BYTES} bytes",
                problems=[FieldProblem("/", "body too large", f"<= {MAX_BODY_BYTES} bytes",
                                       "more")])
        if inflater.eof:
            return out
    raise ValidationError(f"the body is not valid {name} data", problems=[FieldProblem(
        "/", f"corrupt {name} data", f"a {name} stream", "undecodable bytes")])


def _from_protobuf(body: bytes) -> OtlpLogs:
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise ValidationError(f"not an OTLP ExportLogsServiceRequest: {exc}", problems=[
            FieldProblem("/", "malformed protobuf", "ExportLogsServiceRequest",
                         "undecodable bytes")]) from None
    problems: list[FieldProblem] = []
    records: list[OtlpLogRecord] = []
    for i, rl in enumerate(request.resource_logs):
        resource = _pb_attributes(rl.resource.attributes)
        for j, sl in enumerate(rl.scope_logs):
            origin = OtlpOrigin(resource, sl.scope.name, sl.scope.version)
            for k, lr in enumerate(sl.log_records):
                at = f"/resourceLogs/{i}/scopeLogs/{j}/logRecords/{k}"
                for name, value, size in (("traceId", lr.trace_id, 16),
                                          ("spanId", lr.span_id, 8)):
                    if len(value) not in (0, size):
                        problems.append(FieldProblem(f"{at}/{name}", f"expected {size} bytes",
                                                     f"{size} bytes", f"{len(value)} bytes"))
                records.append(OtlpLogRecord(
                    at, lr.SerializeToString(), origin, lr.time_unix_nano,
                    lr.observed_time_unix_nano, lr.severity_number, lr.severity_text,
                    _pb_value(lr.body), _pb_attributes(lr.attributes),
                    lr.dropped_attributes_count, lr.flags, lr.trace_id, lr.span_id,
                    lr.event_name))
    _raise_if_any(problems)
    return OtlpLogs("protobuf", tuple(records))


def _pb_attributes(kvs: Iterable[KeyValue]) -> Attributes:
    return tuple((kv.key, _pb_value(kv.value)) for kv in kvs)


def _pb_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return KvList(_pb_attributes(value.kvlist_value.values))
    return None if kind is None else getattr(value, kind)


# OTLP/JSON: lowerCamelCase keys (the collector also reads the proto names, and so do
# we), ids in hex, 64-bit integers as numbers or decimal strings, enums as numbers or
# names. The envelope is decoded with each log record kept as its exact bytes.


class _JsonScopeLogs(msgspec.Struct):
    scope: Any = None
    log_records: list[msgspec.Raw] | None = msgspec.field(default=None, name="logRecords")
    log_records_: list[msgspec.Raw] | None = msgspec.field(default=None, name="log_records")


class _JsonResourceLogs(msgspec.Struct):
    resource: Any = None
    scope_logs: list[_JsonScopeLogs] | None = msgspec.field(default=None, name="scopeLogs")
    scope_logs_: list[_JsonScopeLogs] | None = msgspec.field(default=None, name="scope_logs")


class _JsonRequest(msgspec.Struct):
    resource_logs: list[_JsonResourceLogs] | None = msgspec.field(default=None,
                                                                  name="resourceLogs")
    resource_logs_: list[_JsonResourceLogs] | None = msgspec.field(default=None,
                                                                   name="resource_logs")


_json_request = msgspec.json.Decoder(_JsonRequest)
_SEVERITY_NAMES = {name: int(number) for name, number in SeverityNumber.items()}
_VALUE_KINDS = ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue",
                "arrayValue", "kvlistValue")


def _from_json(body: bytes) -> OtlpLogs:
    try:  # up front: msgspec checks UTF-8 only in the strings it decodes
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the body is not valid UTF-8 (byte {exc.start})", problems=[
            FieldProblem("/", "invalid UTF-8", "UTF-8 text", f"byte {exc.start}")]) from None
    try:
        request = _json_request.decode(body)
    except msgspec.DecodeError as exc:
        raise ValidationError(f"not an OTLP/JSON ExportLogsServiceRequest: {exc}",
                              problems=[_envelope_problem(exc)]) from None
    r = _JsonReader()
    records: list[OtlpLogRecord] = []
    for i, rl in enumerate(request.resource_logs or request.resource_logs_ or ()):
        at = f"/resourceLogs/{i}"
        resource = r.obj(rl.resource, f"{at}/resource")
        origin = OtlpOrigin(r.attributes(resource, at + "/resource"))
        for j, sl in enumerate(rl.scope_logs or rl.scope_logs_ or ()):
            at_scope = f"{at}/scopeLogs/{j}"
            scope = r.obj(sl.scope, f"{at_scope}/scope")
            origin_j = OtlpOrigin(origin.resource, r.text(scope, "name", f"{at_scope}/scope"),
                                  r.text(scope, "version", f"{at_scope}/scope"))
            for k, raw in enumerate(sl.log_records or sl.log_records_ or ()):
                record = r.record(bytes(raw), f"{at_scope}/logRecords/{k}", origin_j)
                if record is not None:
                    records.append(record)
    _raise_if_any(r.problems)
    return OtlpLogs("json", tuple(records))


def _envelope_problem(exc: msgspec.DecodeError) -> FieldProblem:
    # problem_from_msgspec turns `$.a[0].b` into /a//b (its regex groups give "" and not
    # None for an index), so the pointer is made here: envelope keys hold no `.` or `[`.
    p = problem_from_msgspec(exc, None)
    path = m[1] if (m := re.search(r" - at `\$([^`]*)`$", str(exc))) else ""
    pointer = re.sub(r"\[(\d+)\]", r"/\1", path).replace(".", "/")
    return FieldProblem(pointer or "/", p.detail, p.expected, p.actual)


@cache
def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


class _JsonReader:
    """Typed reads of decoded OTLP/JSON that collect a problem for each wrong value."""

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def bad(self, at: str, expected: str, value: Any) -> None:
        self.problems.append(FieldProblem(at, f"expected {expected}", expected,
                                          _type_name(value)))

    @staticmethod
    def pick(obj: Mapping[str, Any], camel: str, at: str) -> tuple[Any, str]:
        """The field's value (null is absent) and its pointer, by either spelling."""
        value = obj.get(camel)
        if value is None:
            snake = _snake(camel)
            if obj.get(snake) is not None:
                return obj[snake], f"{at}/{snake}"
        return value, f"{at}/{camel}"

    def obj(self, value: Any, at: str) -> Mapping[str, Any]:
        if value is None or isinstance(value, Mapping):
            return value or {}
        self.bad(at, "an object", value)
        return {}

    def text(self, obj: Mapping[str, Any], key: str, at: str) -> str:
        value, where = self.pick(obj, key, at)
        if value is None or isinstance(value, str):
            return value or ""
        self.bad(where, "a string", value)
        return ""

    def uint(self, obj: Mapping[str, Any], key: str, at: str, bits: int = 64) -> int:
        value, where = self.pick(obj, key, at)
        if value is None:
            return 0
        if isinstance(value, str) and _DIGITS.match(value):
            value = int(value)
        if type(value) is int and 0 <= value < 1 << bits:
            return value
        self.bad(where, f"an unsigned {bits}-bit integer (a number or a decimal string)",
                 value)
        return 0

    def severity(self, obj: Mapping[str, Any], at: str) -> int:
        value, where = self.pick(obj, "severityNumber", at)
        if value is None:
            return 0
        if type(value) is int and -(1 << 31) <= value < 1 << 31:
            return value
        if isinstance(value, str) and value in _SEVERITY_NAMES:
            return _SEVERITY_NAMES[value]
        self.bad(where, "a SeverityNumber (0-24 or its name)", value)
        return 0

    def ident(self, obj: Mapping[str, Any], key: str, at: str, size: int) -> bytes:
        value, where = self.pick(obj, key, at)
        if value is None or value == "":
            return b""
        if isinstance(value, str):
            if len(value) == 2 * size:
                try:
                    return bytes.fromhex(value)
                except ValueError:
                    pass
            else:  # protobuf's generic JSON mapping writes base64; some senders use it
                decoded = _base64(value)
                if decoded is not None and len(decoded) == size:
                    return decoded
        self.bad(where, f"{2 * size} hex digits", value)
        return b""

    def record(self, raw: bytes, at: str, origin: OtlpOrigin) -> OtlpLogRecord | None:
        try:
            obj = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:  # not expected: the envelope parsed
            self.problems.append(FieldProblem(at, f"malformed JSON: {exc}", "JSON",
                                              "undecodable bytes"))
            return None
        if not isinstance(obj, Mapping):
            self.bad(at, "a LogRecord object", obj)
            return None
        body, body_at = self.pick(obj, "body", at)
        return OtlpLogRecord(
            at, raw, origin,
            time_unix_nano=self.uint(obj, "timeUnixNano", at),
            observed_time_unix_nano=self.uint(obj, "observedTimeUnixNano", at),
            severity_number=self.severity(obj, at),
            severity_text=self.text(obj, "severityText", at),
            body=self.value(body, body_at, 1),
            attributes=self.attributes(obj, at),
            dropped_attributes_count=self.uint(obj, "droppedAttributesCount", at, 32),
            flags=self.uint(obj, "flags", at, 32),
            trace_id=self.ident(obj, "traceId", at, 16),
            span_id=self.ident(obj, "spanId", at, 8),
            event_name=self.text(obj, "eventName", at))

    def attributes(self, obj: Mapping[str, Any], at: str, key: str = "attributes",
                   depth: int = 0) -> Attributes:
        """A list of `KeyValue` objects: `attributes`, or a kvlist's `values`."""
        items, where = self.pick(obj, key, at)
        if items is None:
            return ()
        if not isinstance(items, list):
            self.bad(where, "a list of {key, value} objects", items)
            return ()
        out: list[tuple[str, Any]] = []
        for n, kv in enumerate(items):
            if not isinstance(kv, Mapping):
                self.bad(f"{where}/{n}", "a {key, value} object", kv)
                continue
            name, name_at = self.pick(kv, "key", f"{where}/{n}")
            name = "" if name is None else name  # proto3 JSON leaves out default values
            if not isinstance(name, str):
                self.bad(name_at, "a string", name)
                continue
            value, value_at = self.pick(kv, "value", f"{where}/{n}")
            out.append((name, self.value(value, value_at, depth + 1)))
        return tuple(out)

    def value(self, value: Any, at: str, depth: int) -> Any:
        """An `AnyValue` object; None when it is absent or empty."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.bad(at, "an AnyValue object", value)
            return None
        if depth > MAX_NESTING:
            self.problems.append(FieldProblem(at, "nested too deeply",
                                              f"<= {MAX_NESTING} levels", "deeper"))
            return None
        found: list[tuple[str, Any, str]] = []
        for name in _VALUE_KINDS:
            v, where = self.pick(value, name, at)
            if v is not None:
                found.append((name, v, where))
        if not found:
            return None
        if len(found) > 1:
            self.problems.append(FieldProblem(at, "more than one value", "one of "
                                              + ", ".join(_VALUE_KINDS),
                                              ", ".join(k for k, _, _ in found)))
            return None
        kind, v, where = found[0]
        if kind == "stringValue" and isinstance(v, str):
            return v
        if kind == "boolValue" and isinstance(v, bool):
            return v
        if kind == "intValue":
            if isinstance(v, str) and _SIGNED.match(v):
                v = int(v)
            if type(v) is int and -(1 << 63) <= v < 1 << 63:
                return v
            self.bad(where, "a signed 64-bit integer (a number or a decimal string)", v)
            return None
        if kind == "doubleValue":
            if type(v) in (int, float):
                return float(v)
            if isinstance(v, str):  # "NaN", "Infinity", "-Infinity", or a number as text
                with contextlib.suppress(ValueError):
                    return float(v)
            self.bad(where, 'a number, "NaN", "Infinity" or "-Infinity"', v)
            return None
        if kind == "bytesValue" and isinstance(v, str):
            decoded = _base64(v)
            if decoded is not None:
                return decoded
            self.bad(where, "base64", v)
            return None
        if kind == "arrayValue" and isinstance(v, Mapping):
            items, items_at = self.pick(v, "values", where)
            if items is None:
                return []
            if isinstance(items, list):
                return [self.value(x, f"{items_at}/{n}", depth + 1) for n, x in enumerate(items)]
            self.bad(items_at, "a list of AnyValue objects", items)
            return None
        if kind == "kvlistValue" and isinstance(v, Mapping):
            return KvList(self.attributes(v, where, "values", depth))
        expected = {"stringValue": "a string", "boolValue": "a boolean"}.get(kind, "an object")
        self.bad(where, expected, v)
        return None


def _base64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not (proto3 JSON accepts each)."""
    text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _raise_if_any(problems: list[FieldProblem]) -> None:
    if problems:
        detail = "; ".join(f"{p.pointer}: {p.detail}, got {p.actual}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValidationError(f"malformed OTLP logs export: {detail}{more}", problems=problems)


