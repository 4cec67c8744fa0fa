"""OpenTelemetry logs (OTLP/HTTP, protobuf or JSON) as schema v1 events.

`decode_request` reads an `ExportLogsServiceRequest` body into `OtlpLogs`: every log
record with its JSON pointer and its own bytes. `map_logs` turns each record that carries
an `audit.action` attribute into a schema v1 event and counts the others. Both are pure;
docs/otlp.md has the attribute conventions and the decisions behind them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep.pipeline.schema import ACTION_PATTERN, ID_PATTERN
from auditkeep.pipeline.validate import (
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEYS,
    MAX_SAFE_INT,
)
from auditkeep.sources.otlp_wire import (
    CONTENT_JSON,
    CONTENT_PROTOBUF,
    RAW_FORMATS,
    KvList,
    MappedLogs,
    MappedRecord,
    OtlpLogRecord,
    OtlpLogs,
    OtlpOrigin,
    decode_request,
    encode_response,
)

ACTION_KEY = "audit.action"  # the marker: a record without it is not an audit record
OUTCOMES = frozenset({"success", "failure", "denied", "unknown"})
CATEGORIES = frozenset({"admin", "auth", "data_access", "data_change", "config", "system",
                        "policy"})
ACTOR_TYPES = frozenset({"user", "service", "system", "anonymous"})
#: Attributes that fill a personal actor field (salted commitments in the hashed entry):
#: never copied into metadata, which every reader sees in the clear.
PERSONAL_KEYS = frozenset({"client.address", "source.address", "user.name", "user.full_name",
                           "user.email", "user_agent.original"})
#: Resource attributes that fill `source`, in order of preference per field.
SOURCE_KEYS = (("service", ("service.name",)), ("version", ("service.version",)),
               ("host", ("host.name",)), ("region", ("cloud.region",)),
               ("environment", ("deployment.environment.name", "deployment.environment")))

EVENT_BUDGET = 60 * 1024  # schema v1 events are at most 64 KiB
MAX_META_STRING = 4096
MAX_META_BYTES = 3072  # 4096 characters of base64
MAX_META_ITEMS = 100
_ID = re.compile(ID_PATTERN)
_ACTION = re.compile(ACTION_PATTERN)
_ACTION_UNSAFE = re.compile(r"[^A-Za-z0-9_:*/-]+")
_FIRST_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_OMIT = object()

Attributes = tuple[tuple[str, Any], ...]






# -- mapping --------------------------------------------------------------------------


def map_logs(logs: OtlpLogs) -> MappedLogs:
    """Every audit record of a decoded export as a schema v1 event, in body order, and the
    number of records skipped for lacking `audit.action`. Never raises: what cannot be
    mapped is left out and named in the event's `metadata.missing`."""
    fmt = RAW_FORMATS[logs.encoding]
    out: list[MappedRecord] = []
    for record in logs.records:
        event = map_record(record)
        if event is not None:
            out.append(MappedRecord(event, record.raw, fmt, record.pointer))
    return MappedLogs(out, len(logs.records) - len(out))


def map_record(record: OtlpLogRecord) -> dict[str, Any] | None:
    """One log record as a schema v1 event; None when it has no `audit.action`."""
    attrs: dict[str, Any] = {}
    for key, value in record.attributes:
        attrs.setdefault(key, value)  # keys are unique by spec; the first wins, as in pdata
    if ACTION_KEY not in attrs:
        return None
    m = _Mapping(attrs)
    event: dict[str, Any] = {
        "id": _event_id(record, m),
        "action": _action(m),
        "actor": _actor(m),
        "outcome": m.choice("audit.outcome", OUTCOMES, required=True) or "unknown",
    }
    if category := m.choice("audit.category", CATEGORIES):
        event["category"] = category
    if record.time_unix_nano:
        event["time"] = _rfc3339(record.time_unix_nano)
    else:  # the OTel data model: the observed time stands in for an unknown event time
        m.missing.append("time_unix_nano")
        if record.observed_time_unix_nano:
            event["time"] = _rfc3339(record.observed_time_unix_nano)
    if resource := _resource(m):
        event["resource"] = resource
    reason = m.text("audit.reason")
    body_is_reason = reason is None and isinstance(record.body, str) and record.body != ""
    if reason is not None or body_is_reason:
        event["reason"] = m.clip(reason or record.body, 1024, "/reason")
    if severity := _severity(record.severity_number):
        event["severity"] = severity
    if source := _source(record.origin.resource, m):
        event["source"] = source
    if any(record.trace_id):
        event["trace_id"] = record.trace_id.hex()
    if any(record.span_id):
        event["span_id"] = record.span_id.hex()
    if request_id := m.text("audit.request_id"):
        event["request_id"] = m.clip(request_id, 256, "/request_id")
    event["metadata"] = _metadata(record, m, body_is_reason)
    _fit(event, m.truncated)
    return event


class _Mapping:
    """The attributes of one record being mapped, which of them were used for event
    fields, and what was missing, invalid or cut short."""

    __slots__ = ("attrs", "missing", "source_keys", "truncated", "used")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.used: set[str] = set(PERSONAL_KEYS)
        self.source_keys: set[str] = set()  # resource attributes used for `source`
        self.missing: list[str] = []
        self.truncated: list[str] = []

    def text(self, key: str) -> str | None:
        """A string (or integer, e.g. an id) attribute as text; an empty or other value is
        invalid: named in `missing` and left in metadata."""
        value = self.attrs.get(key)
        if value is None:
            return None
        text = value if type(value) is str else str(value) if type(value) is int else ""
        if text:
            self.used.add(key)
            return text
        self.missing.append(f"{key} (invalid)")
        return None

    def choice(self, key: str, allowed: frozenset[str], *, required: bool = False
               ) -> str | None:
        text = self.text(key)
        if text is None:
            if required and key not in self.attrs:
                self.missing.append(key)
            return None
        if text.lower() in allowed:
            return text.lower()
        self.used.discard(key)
        self.missing.append(f"{key} (invalid)")
        return None

    def clip(self, value: str, limit: int, where: str) -> str:
        if len(value) <= limit:
            return value
        self.truncated.append(where)
        return value[:limit]


def _event_id(record: OtlpLogRecord, m: _Mapping) -> str:
    given = m.text("audit.id")
    if given is not None:
        if _ID.match(given):
            return given
        m.missing.append("audit.id (invalid)")
        m.used.discard("audit.id")
        return f"otlp:h:{hashlib.sha256(given.encode()).hexdigest()[:32]}"
    return f"otlp:{record_digest(record)[:32]}"


def record_digest(record: OtlpLogRecord) -> str:
    """SHA-256 (hex) of what a record says, resource and scope included, the same whether
    it came as protobuf or JSON: the default event id, so a retried export dedups."""
    content = [_typed_pairs(record.origin.resource), record.origin.scope_name,
               record.origin.scope_version, str(record.time_unix_nano),
               str(record.observed_time_unix_nano), record.severity_number,
               record.severity_text, _typed(record.body), _typed_pairs(record.attributes),
               record.dropped_attributes_count, record.flags, record.trace_id.hex(),
               record.span_id.hex(), record.event_name]
    return hashlib.sha256(orjson.dumps(content)).hexdigest()


def _typed(value: Any) -> Any:
    t = type(value)
    if t is str:
        return ["s", value]
    if t is bool:
        return ["b", value]
    if t is int:
        return ["i", str(value)]
    if t is float:
        return ["d", value.hex()]
    if t is bytes:
        return ["x", value.hex()]
    if t is list:
        return ["a", [_typed(v) for v in value]]
    if t is KvList:
        return ["m", _typed_pairs(value)]
    return ["n"]


def _typed_pairs(pairs: Attributes) -> list[Any]:
    return [[k, _typed(v)] for k, v in pairs]


def _action(m: _Mapping) -> str:
    text = m.text(ACTION_KEY)
    if text is None:  # present but not text: still an audit record, so still recorded
        return "otlp.invalid"
    if len(text) <= 256 and _ACTION.match(text):
        return text
    m.missing.append(f"{ACTION_KEY} (invalid)")
    m.used.discard(ACTION_KEY)  # the original stays in metadata
    first, *rest = text[:256].split(".")
    parts = [_FIRST_UNSAFE.sub("_", first) or "_"]
    parts += [_ACTION_UNSAFE.sub("_", p) or "_" for p in rest]
    return ".".join(parts)[:256].rstrip(".")


def _actor(m: _Mapping) -> dict[str, Any]:
    actor_id = m.text("enduser.id") or m.text("user.id")
    kind = m.choice("audit.actor.type", ACTOR_TYPES)
    if actor_id is None:
        m.missing.append("enduser.id")
        actor: dict[str, Any] = {"id": "unknown", "type": kind or "anonymous"}
    else:
        actor = {"id": m.clip(actor_id, 256, "/actor/id"), "type": kind or "user"}
    for field, keys, limit in (("name", ("user.full_name", "user.name"), 1024),
                               ("email", ("user.email",), 1024),
                               ("ip", ("client.address", "source.address"), 64),
                               ("user_agent", ("user_agent.original",), 1024),
                               ("session_id", ("session.id",), 256)):
        for key in keys:
            value = m.text(key)
            if value is not None:
                actor[field] = m.clip(value, limit, f"/actor/{field}")
                break
    return actor


def _resource(m: _Mapping) -> dict[str, Any] | None:
    present = [k for k in ("audit.resource.type", "audit.resource.id") if k in m.attrs]
    if not present:
        return None
    kind, rid = m.text("audit.resource.type"), m.text("audit.resource.id")
    if kind is None or rid is None:  # half a resource: kept in metadata, not guessed at
        m.missing += [k for k in ("audit.resource.type", "audit.resource.id")
                      if k not in present]
        m.used -= {"audit.resource.type", "audit.resource.id"}
        return None
    resource = {"type": m.clip(kind, 256, "/resource/type"),
                "id": m.clip(rid, 1024, "/resource/id")}
    if name := m.text("audit.resource.name"):
        resource["name"] = m.clip(name, 1024, "/resource/name")
    return resource


def _severity(number: int) -> str | None:
    """TRACE..INFO (1-9) info, INFO2-4 notice (as OTel maps syslog's notice), WARN
    warning, ERROR and FATAL critical (as the syslog source maps err..emerg)."""
    if 1 <= number <= 9:
        return "info"
    if 10 <= number <= 12:
        return "notice"
    if 13 <= number <= 16:
        return "warning"
    if 17 <= number <= 24:
        return "critical"
    return None


def _source(resource: Attributes, m: _Mapping) -> dict[str, str]:
    values: dict[str, Any] = {}
    for key, value in resource:
        values.setdefault(key, value)
    source: dict[str, str] = {}
    for field, keys in SOURCE_KEYS:
        for key in keys:
            value = values.get(key)
            if type(value) is str and value:
                source[field] = m.clip(value, 256, f"/source/{field}")
                m.source_keys.add(key)
                break
    return source


def _rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{rest // 1000:06d}Z"


def _metadata(record: OtlpLogRecord, m: _Mapping, body_is_reason: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if record.severity_number:
        meta["severity_number"] = record.severity_number
    if record.severity_text:
        meta["severity_text"] = m.clip(record.severity_text, 64, "/metadata/severity_text")
    if record.event_name:
        meta["event_name"] = m.clip(record.event_name, 256, "/metadata/event_name")
    if record.time_unix_nano and record.observed_time_unix_nano:
        meta["observed_time"] = _rfc3339(record.observed_time_unix_nano)
    if record.dropped_attributes_count:
        meta["dropped_attributes_count"] = record.dropped_attributes_count
    scope = {k: m.clip(v, 256, f"/metadata/scope/{k}") for k, v in
             (("name", record.origin.scope_name), ("version", record.origin.scope_version))
             if v}
    if scope:
        meta["scope"] = scope
    # 2 keys are kept for `missing` and `truncated`, which are known only at the end
    budget = _MetaBudget(MAX_METADATA_KEYS - 2 - len(meta) - len(scope), m.truncated)
    for name, pairs in (
            ("attributes", [(k, v) for k, v in record.attributes if k not in m.used]),
            ("resource", [(k, v) for k, v in record.origin.resource if k not in m.source_keys])):
        if pairs and budget.left > 0:
            budget.left -= 1
            meta[name] = budget.mapping(pairs, f"/metadata/{name}", 2)
    if record.body not in (None, "") and not body_is_reason and budget.left > 0:
        budget.left -= 1
        body = budget.convert(record.body, "/metadata/body", 1)
        if body is not _OMIT:
            meta["body"] = body
    if m.missing:
        meta["missing"] = m.missing
    return meta


class _MetaBudget:
    """AnyValues as metadata JSON within schema v1's limits (100 keys in all, depth 8,
    integers within ±(2⁵³−1), finite numbers); what does not fit is named in `truncated`."""

    __slots__ = ("left", "truncated")

    def __init__(self, left: int, truncated: list[str]) -> None:
        self.left = left
        self.truncated = truncated

    def convert(self, value: Any, at: str, depth: int) -> Any:
        t = type(value)
        if t is str:
            if len(value) > MAX_META_STRING:
                self.truncated.append(at)
                return value[:MAX_META_STRING]
            return value
        if value is None or t is bool:
            return value
        if t is int:  # beyond 2⁵³ as the decimal string OTLP/JSON uses for int64 anyway
            return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else str(value)
        if t is float:
            if math.isfinite(value):
                return value
            return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        if t is bytes:  # base64, as OTLP/JSON writes bytes
            if len(value) > MAX_META_BYTES:
                self.truncated.append(at)
            return base64.b64encode(value[:MAX_META_BYTES]).decode()
        if depth + 1 > MAX_METADATA_DEPTH:
            self.truncated.append(at)
            return _OMIT
        if t is KvList:
            return self.mapping(value, at, depth + 1)
        if len(value) > MAX_META_ITEMS:
            self.truncated.append(at)
        items = (self.convert(v, f"{at}/{i}", depth + 1) for i, v in
                 enumerate(value[:MAX_META_ITEMS]))
        return [None if v is _OMIT else v for v in items]

    def mapping(self, pairs: Iterable[tuple[str, Any]], at: str, depth: int) -> dict[str, Any]:
        """`pairs` as a JSON object at `depth` (metadata itself is depth 1)."""
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                continue
            if self.left <= 0:
                self.truncated.append(at)
                break
            self.left -= 1  # the key's own, before its value's keys are counted
            converted = self.convert(value, f"{at}/{_pointer_escape(key)}", depth)
            if converted is _OMIT:
                self.left += 1
            else:
                out[key] = converted
        return out


def _fit(event: dict[str, Any], truncated: list[str]) -> None:
    """Shed the bulkiest metadata until the event is within the 64 KiB budget, then name
    everything cut short in `metadata.truncated`."""
    meta = event["metadata"]
    if len(orjson.dumps(event)) > EVENT_BUDGET:
        for key in ("body", "resource", "attributes"):
            if key in meta:
                del meta[key]
                truncated.append(f"/metadata/{key}")
                if len(orjson.dumps(event)) <= EVENT_BUDGET:
                    break
    if truncated:
        meta["truncated"] = list(dict.fromkeys(truncated))


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


__all__ = ["ACTION_KEY", "CONTENT_JSON", "CONTENT_PROTOBUF", "KvList", "MappedLogs",
           "MappedRecord", "OtlpLogRecord", "OtlpLogs", "OtlpOrigin", "decode_request",
           "encode_response", "map_logs", "map_record", "record_digest"]
