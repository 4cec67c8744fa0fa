"""Google Cloud audit logs (a `LogEntry` whose `protoPayload` is an `AuditLog`) as schema
v1 events, and the two ways a log sink delivers them: Pub/Sub push bodies and JSON exports.

Pure functions of the decoded JSON (the mapping table is in docs/sources.md). The readers
keep each entry's exact bytes, so the original can be stored beside the log byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import ipaddress
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import msgspec
import orjson

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.validate import problem_from_msgspec
from auditkeep.sources._common import Reader, scalars
from auditkeep.sources._common import clip as _clip
from auditkeep.sources.k8s import parse_time, principal_type

#: The `raw.format` the server records for an original from this source.
FORMAT = "gcp.auditlog"
AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
EVENT_BUDGET = 60 * 1024  # schema v1 events are at most 64 KiB
MAX_SCALAR = 256
MAX_LABELS = 10
MAX_REQUEST = 20  # small scalar request fields kept in metadata
MAX_LIST = 20

#: The audit log a `logName` names (`projects/p/logs/cloudaudit.googleapis.com%2Factivity`).
LOG_TYPES = {f"cloudaudit.googleapis.com/{t}": t
             for t in ("activity", "data_access", "system_event", "policy")}
#: google.rpc.Code: PERMISSION_DENIED, UNAUTHENTICATED.
DENIED_CODES = frozenset({7, 16})
SEVERITIES = {"DEFAULT": "info", "DEBUG": "info", "INFO": "info", "NOTICE": "notice",
              "WARNING": "warning", "ERROR": "warning", "CRITICAL": "critical",
              "ALERT": "critical", "EMERGENCY": "critical"}

# Category, decided in this order (see docs/sources.md):
AUTH_SERVICES = frozenset({"iamcredentials", "sts"})
ADMIN_SERVICES = frozenset({"iam", "cloudresourcemanager", "admin", "cloudidentity"})
CONFIG_SERVICES = frozenset({"logging", "securitycenter"})
POLICY_SERVICES = frozenset({"orgpolicy", "accesscontextmanager"})
_POLICY_METHOD = re.compile(r"Polic(y|ies)|IamPermissions|[Ff]irewall")
_NOT_ACCESS_POLICY = re.compile(r"Lifecycle|Scaling|Retention|Backup|resourcePolicies")

_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]+$")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SERVICE_AGENT = re.compile(r"@(gcp-sa-[a-z0-9-]+\.iam|cloudservices|system|"
                            r"container-engine-robot\.iam|compute-system\.iam)"
                            r"\.gserviceaccount\.com$")
_TRACE = re.compile(r"^(?!0{32})[0-9a-f]{32}$")
_SPAN = re.compile(r"^(?!0{16})[0-9a-f]{16}$")


def map_log_entry(obj: Any, pointer: str = "") -> dict[str, Any]:
    """One `LogEntry` (a dict) with an `AuditLog` payload in, one schema v1 event dict out.
    Anything else raises `ValidationError` naming every bad field by JSON pointer (under
    `pointer`)."""
    r = _Reader(pointer)
    event = _map(obj, r)
    if r.problems or event is None:
        detail = "; ".join(f"{p.pointer or '/'}: {p.detail}, got {p.actual}"
                           for p in r.problems)
        raise ValidationError(f"malformed Google Cloud audit log entry: {detail}",
                              problems=r.problems)
    return event


class PushedEntry(NamedTuple):
    """A log entry as a Pub/Sub push subscription delivers it. `raw` is the message
    data: the `LogEntry` JSON exactly as the log sink published it."""

    raw: bytes
    entry: Any
    message_id: str | None
    publish_time: str | None
    subscription: str | None
    attributes: dict[str, str]


class _PushMessage(msgspec.Struct):
    data: str
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    messageId: str | None = None  # push bodies carry both the camelCase and snake_case forms
    message_id: str | None = None
    publishTime: str | None = None
    publish_time: str | None = None


class _Push(msgspec.Struct):
    message: _PushMessage
    subscription: str | None = None


_push = msgspec.json.Decoder(_Push)
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)  # msgspec raises the latter too


def parse_pubsub_push(body: bytes) -> PushedEntry:
    """The log entry in a Pub/Sub push body (`{"message": {"data": base64(LogEntry
    JSON), ...}, "subscription": ...}`); map it with `map_log_entry(pushed.entry)`.
    Raises `ValidationError` naming the bad field."""
    try:
        push = _push.decode(body)
    except _DECODE_ERRORS as exc:
        raise ValidationError(f"not a Pub/Sub push body: {exc}",
                              problems=[problem_from_msgspec(exc, None)]) from None
    data = push.message.data
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        try:  # protobuf JSON readers accept the URL-safe alphabet, unpadded, too
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            raise _bad_data("base64", "not base64") from None
    try:
        entry = msgspec.json.decode(raw)
    except _DECODE_ERRORS:
        raise _bad_data("a JSON LogEntry", "not JSON") from None
    m = push.message
    return PushedEntry(raw, entry, m.messageId or m.message_id, m.publishTime or m.publish_time,
                       push.subscription, m.attributes)


def _bad_data(expected: str, actual: str) -> ValidationError:
    return ValidationError(f"Pub/Sub message data is {actual}", problems=[
        FieldProblem("/message/data", f"expected {expected}", expected, actual)])


class RawEntry(NamedTuple):
    """One entry of an export file: where it is, its exact bytes, and its decoded JSON.
    `position` is 0-based: the line of a JSON-lines file, the element of a JSON array."""

    path: Path
    position: int
    raw: bytes
    entry: Any


def decode_export(body: bytes) -> list[tuple[int, bytes, Any]]:
    """`(position, exact bytes, decoded JSON)` of each entry of an export body
    (gzip-compressed or not): JSON lines (a log sink's Cloud Storage files), a JSON array
    (`gcloud logging read --format=json`) or one JSON object. Raises `ValidationError` on
    the first entry that is not JSON (its `index` set): `read_gcp_paths` carries on past
    it instead."""
    out: list[tuple[int, bytes, Any]] = []
    for item in _split(body):
        if isinstance(item, ValidationError):
            raise item
        out.append(item)
    return out


def read_gcp_paths(paths: Iterable[str | os.PathLike[str]], *,
                   on_error: Callable[[Path, Exception], None] | None = None
                   ) -> Iterator[RawEntry]:
    """Every entry of the export files at `paths`: files (read whatever their name) and
    directory trees walked recursively in sorted order (`*.json`, `*.jsonl`, `*.ndjson`,
    each maybe `.gz`). A file that cannot be read (`OSError`) or an entry that is not
    JSON (`ValidationError`, its problem's `index` set) goes to `on_error`, as with
    `os.walk`, and reading carries on; without `on_error` it is raised."""
    for path in _export_files(paths):
        try:
            body = path.read_bytes()
        except OSError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        for item in _split(body):
            if isinstance(item, ValidationError):
                if on_error is None:
                    raise item
                on_error(path, item)
            else:
                yield RawEntry(path, *item)


def _split(body: bytes) -> Iterator[tuple[int, bytes, Any] | ValidationError]:
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            yield ValidationError(f"not a gzip file: {exc}", problems=[
                FieldProblem("", "cannot decompress", "gzip", str(exc))])
            return
    text = body.strip()
    if text[:1] == b"[":
        try:
            items = msgspec.json.decode(text, type=list[msgspec.Raw])
        except _DECODE_ERRORS as exc:
            yield ValidationError(f"not a JSON array of log entries: {exc}",
                                  problems=[problem_from_msgspec(exc, None)])
            return
        for i, raw in enumerate(items):
            yield _entry(i, bytes(raw), f"element {i}")
        return
    try:  # one (maybe pretty-printed) entry?
        single = msgspec.json.decode(text)
    except _DECODE_ERRORS:
        pass  # no: JSON lines
    else:
        yield 0, text, single
        return
    for i, line in enumerate(body.split(b"\n")):
        line = line.strip()
        if line:
            yield _entry(i, line, f"line {i + 1}")


def _entry(position: int, raw: bytes, where: str) -> tuple[int, bytes, Any] | ValidationError:
    try:
        return position, raw, msgspec.json.decode(raw)
    except _DECODE_ERRORS as exc:
        return ValidationError(f"{where} is not JSON: {exc}", problems=[FieldProblem(
            "", "expected a JSON log entry", "JSON", "not JSON", index=position)])


def _export_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    suffixes = tuple(s + gz for s in (".json", ".jsonl", ".ndjson") for gz in ("", ".gz"))
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            yield path
            continue
        yield from sorted(Path(top, name) for top, _, names in os.walk(path)
                          for name in names if name.endswith(suffixes))


class _Reader(Reader):
    """Typed access to the entry that collects a problem for each wrong type."""

    __slots__ = ()

    def mapping(self, obj: Mapping[str, Any], key: str, at: str = "") -> Mapping[str, Any]:
        v = obj.get(key)
        if isinstance(v, Mapping):
            return v
        if v is not None:
            self.bad(f"{at}/{key}", "an object", v)
        return {}


def _map(obj: Any, r: _Reader) -> dict[str, Any] | None:
    if not isinstance(obj, Mapping):
        r.bad("", "a LogEntry object", obj)
        return None
    payload = obj.get("protoPayload")
    if not isinstance(payload, Mapping):
        r.bad("/protoPayload", "an AuditLog object", payload,
              "missing" if payload is None else None)
        return None
    kind = r.text(payload, "@type", "/protoPayload")
    if kind is not None and kind != AUDIT_LOG_TYPE:
        r.bad("/protoPayload/@type", f'"{AUDIT_LOG_TYPE}"', kind, kind[:MAX_SCALAR])
    insert_id = r.text(obj, "insertId")
    log_name = r.text(obj, "logName")
    raw_time = r.text(obj, "timestamp")
    service = r.text(payload, "serviceName", "/protoPayload")
    method = r.text(payload, "methodName", "/protoPayload")
    resource_name = r.text(payload, "resourceName", "/protoPayload")
    auth = r.mapping(payload, "authenticationInfo", "/protoPayload")
    at = "/protoPayload/authenticationInfo"
    email = r.text(auth, "principalEmail", at)
    subject = r.text(auth, "principalSubject", at)
    chain = _delegation(auth, r)
    request_meta = r.mapping(payload, "requestMetadata", "/protoPayload")
    ip = r.text(request_meta, "callerIp", "/protoPayload/requestMetadata")
    agent = r.text(request_meta, "callerSuppliedUserAgent", "/protoPayload/requestMetadata")
    status = r.mapping(payload, "status", "/protoPayload")
    code = status.get("code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        r.bad("/protoPayload/status/code", "an integer", code)
    message = r.text(status, "message", "/protoPayload/status")
    if r.problems:
        return None

    truncated: list[str] = []
    unmapped: list[str] = []
    missing = [f for f in ("insertId", "timestamp", "logName") if not obj.get(f)]
    missing += [f"protoPayload.{f}" for f in ("@type", "serviceName", "methodName")
                if not payload.get(f)]
    log_type = _log_type(log_name)
    short = _SEGMENT_UNSAFE.sub("_", service.removesuffix(".googleapis.com")) if service else ""
    event: dict[str, Any] = {
        "id": _entry_id(obj, insert_id, log_name, raw_time),
        "action": _clip(_action(short or "unknown", method), 256, "/action",
                        truncated).rstrip("."),
        "actor": _actor(email, subject, chain, log_type, service, missing, truncated),
        "outcome": "success" if not code else "denied" if code in DENIED_CODES else "failure",
        "category": _category(log_type, short, method),
    }
    meta: dict[str, Any] = {}
    if raw_time is not None:
        when = parse_time(raw_time)
        if when is None:
            unmapped.append("/timestamp")
            meta["timestamp"] = raw_time[:MAX_SCALAR]
        else:
            event["time"] = when
    if ip is not None:
        if _is_address(ip):
            event["actor"]["ip"] = _clip(ip, 64, "/actor/ip", truncated)
        else:  # "private", "gce-internal-ip": no address to commit to
            meta["callerIp"] = _clip(ip, MAX_SCALAR, "/metadata/callerIp", truncated)
    if agent is not None:
        event["actor"]["user_agent"] = _clip(agent, 1024, "/actor/user_agent", truncated)
    resource = obj.get("resource")
    resource = resource if isinstance(resource, Mapping) else {}
    rtype = resource.get("type") if isinstance(resource.get("type"), str) else None
    labels = _labels(resource.get("labels"))
    if resource_name:
        event["resource"] = {"type": _clip(rtype or "unknown", 256, "/resource/type", truncated),
                             "id": _clip(resource_name, 1024, "/resource/id", truncated)}
    if message:
        event["reason"] = _clip(message, 1024, "/reason", truncated)
    severity = obj.get("severity")
    if isinstance(severity, str) and severity in SEVERITIES:
        event["severity"] = SEVERITIES[severity]
    elif severity is not None:
        unmapped.append("/severity")
    src = {"service": _clip(service, 256, "/source/service", truncated)} if service else {}
    location = labels.get("location") or labels.get("region") or labels.get("zone")
    if location:
        src["region"] = location
    if src:
        event["source"] = src
    _trace(obj, event, meta)
    attrs = request_meta.get("requestAttributes")
    if isinstance(attrs, Mapping) and isinstance(rid := attrs.get("id"), str) and rid:
        event["request_id"] = _clip(rid, 256, "/request_id", truncated)

    meta |= _metadata(obj, payload, log_name, log_type, severity, rtype, labels, code, email,
                      subject, chain, request_meta, truncated)
    for key, value in (("missing", missing), ("unmapped", unmapped)):
        if value:
            meta[key] = value
    event["metadata"] = meta
    _fit(event, truncated)
    if truncated:
        meta["truncated"] = truncated
    return event


def _delegation(auth: Mapping[str, Any], r: _Reader) -> list[str]:
    """Who delegated to the calling service account, the original caller first."""
    at = "/protoPayload/authenticationInfo/serviceAccountDelegationInfo"
    items = auth.get("serviceAccountDelegationInfo")
    if items is None:
        return []
    if not isinstance(items, list):
        r.bad(at, "a list", items)
        return []
    chain: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            r.bad(f"{at}/{i}", "an object", item)
            continue
        first = r.mapping(item, "firstPartyPrincipal", f"{at}/{i}")
        who = (r.text(first, "principalEmail", f"{at}/{i}/firstPartyPrincipal")
               or r.text(item, "principalSubject", f"{at}/{i}"))
        chain.append(who or ("third-party" if "thirdPartyPrincipal" in item else "unknown"))
    return chain


def gcp_principal_type(principal: str) -> str:
    """Schema v1 actor type of a Google Cloud principal (an email or a principal subject)."""
    if principal.startswith("system:"):  # GKE control plane, through Cloud Audit Logs
        return principal_type(principal)
    if principal == "system@google.com" or _SERVICE_AGENT.search(principal):
        return "system"  # Google itself, or a Google-managed service agent
    if (principal.endswith(".gserviceaccount.com") or principal.startswith("serviceAccount:")
            or "/workloadIdentityPools/" in principal):
        return "service"
    return "user"


def _actor(email: str | None, subject: str | None, chain: list[str], log_type: str | None,
           service: str | None, missing: list[str], truncated: list[str]) -> dict[str, Any]:
    pid = email or subject
    if pid is None:
        if log_type == "system_event" and service:  # Google's own systems act unnamed
            return {"id": service[:256], "type": "system"}
        missing.append("protoPayload.authenticationInfo.principalEmail")
        return {"id": "unknown", "type": "anonymous"}  # e.g. allUsers reading a public object
    actor: dict[str, Any] = {"id": _clip(pid, 256, "/actor/id", truncated),
                             "type": gcp_principal_type(pid)}
    if email and "@" in email and not email.startswith("system:"):
        actor["email"] = _clip(email, 1024, "/actor/email", truncated)
    if chain and chain[0] not in ("third-party", "unknown"):
        actor["impersonator"] = {"id": _clip(chain[0], 256, "/actor/impersonator/id", truncated),
                                 "type": gcp_principal_type(chain[0])}
    return actor


def _action(service: str, method: str | None) -> str:
    segments = [_SEGMENT_UNSAFE.sub("_", s) for s in (method or "unknown").split(".") if s]
    return ".".join(["gcp", service, *(segments or ["unknown"])])


def _log_type(log_name: str | None) -> str | None:
    if not log_name or "/logs/" not in log_name:
        return None
    return LOG_TYPES.get(unquote(log_name.split("/logs/", 1)[1]))


def _category(log_type: str | None, service: str, method: str | None) -> str:
    if log_type == "policy":
        return "policy"
    if log_type == "system_event":
        return "system"
    if service in AUTH_SERVICES:
        return "auth"
    if log_type == "data_access":
        return "data_access"
    method = method or ""
    if service in POLICY_SERVICES or (_POLICY_METHOD.search(method)
                                      and not _NOT_ACCESS_POLICY.search(method)):
        return "policy"
    if service in ADMIN_SERVICES:
        return "admin"
    if service in CONFIG_SERVICES:
        return "config"
    return "data_change"


def _entry_id(obj: Mapping[str, Any], insert_id: str | None, log_name: str | None,
              raw_time: str | None) -> str:
    """Logging deduplicates on (log, timestamp, insertId), so an insertId is unique only
    together with those: the id carries a digest of them, and a re-read maps the same."""
    where = hashlib.sha256(f"{log_name or ''}\n{raw_time or ''}".encode()).hexdigest()[:16]
    if insert_id:
        if _ID_SAFE.match(insert_id) and len(insert_id) <= 128 - 21:
            return f"gcp:{insert_id}:{where}"
        digest = hashlib.sha256(f"{insert_id}\n{where}".encode()).hexdigest()[:32]
        return f"gcp:h:{digest}"
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":")).encode()
    return f"gcp:sha256:{hashlib.sha256(raw).hexdigest()[:32]}"


def _trace(obj: Mapping[str, Any], event: dict[str, Any], meta: dict[str, Any]) -> None:
    trace = obj.get("trace")
    if isinstance(trace, str) and trace:
        trace_id = trace.rsplit("/traces/", 1)[-1]
        if _TRACE.match(trace_id):
            event["trace_id"] = trace_id
        else:
            meta["trace"] = trace[:MAX_SCALAR]
    span = obj.get("spanId")
    if isinstance(span, str) and _SPAN.match(span) and "trace_id" in event:
        event["span_id"] = span


def _metadata(obj: Mapping[str, Any], payload: Mapping[str, Any], log_name: str | None,
              log_type: str | None, severity: Any, rtype: str | None, labels: dict[str, str],
              code: int | None, email: str | None, subject: str | None, chain: list[str],
              request_meta: Mapping[str, Any], truncated: list[str]) -> dict[str, Any]:
    auth = payload.get("authenticationInfo") or {}
    meta: dict[str, Any] = {}
    project = labels.get("project_id")
    if not project and log_name and log_name.startswith("projects/"):
        project = log_name.split("/")[1]
    for key, value in (
            ("logName", log_name), ("logType", log_type), ("insertId", obj.get("insertId")),
            ("receiveTimestamp", obj.get("receiveTimestamp")), ("severity", severity),
            ("serviceName", payload.get("serviceName")),
            ("methodName", payload.get("methodName")), ("resourceType", rtype),
            ("projectId", project), ("numResponseItems", payload.get("numResponseItems")),
            ("principalSubject", subject if email else None),
            ("serviceAccountKeyName", auth.get("serviceAccountKeyName")),
            ("authoritySelector", auth.get("authoritySelector")),
            ("callerNetwork", request_meta.get("callerNetwork"))):
        if isinstance(value, str) and value:
            meta[key] = _clip(value, 1024, f"/metadata/{key}", truncated)
    if code and -(2**53 - 1) <= code <= 2**53 - 1:
        meta["statusCode"] = code
    if labels:
        meta["resourceLabels"] = labels
    if entry_labels := _labels(obj.get("labels")):
        meta["labels"] = entry_labels
    if chain:
        meta["delegationChain"] = [c[:MAX_SCALAR] for c in chain[:MAX_LIST]]
    granted, denied = _permissions(payload.get("authorizationInfo"))
    if granted:
        meta["permissions"] = granted
    if denied:
        meta["permissionsDenied"] = denied
    meta |= _operation(obj.get("operation"))
    location = payload.get("resourceLocation")
    if isinstance(location, Mapping) and (where := _strings(location.get("currentLocations"))):
        meta["resourceLocations"] = where
    meta |= _violation(payload)
    if request := _scalars(payload.get("request"), MAX_REQUEST):
        meta["request"] = request
    return meta


def _permissions(items: Any) -> tuple[list[str], list[str]]:
    granted: list[str] = []
    denied: list[str] = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and isinstance(p := item.get("permission"), str) and p:
            into = granted if item.get("granted") is True else denied
            if p not in into and len(into) < MAX_LIST:
                into.append(p[:MAX_SCALAR])
    return granted, denied


def _operation(op: Any) -> dict[str, Any]:
    if not isinstance(op, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, as_key in (("id", "operationId"), ("producer", "operationProducer")):
        if isinstance(v := op.get(key), str) and v:
            out[as_key] = v[:1024]
    for key, as_key in (("first", "operationFirst"), ("last", "operationLast")):
        if isinstance(v := op.get(key), bool):
            out[as_key] = v
    return out


def _violation(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Why a policy refused the call: VPC Service Controls or an organization policy."""
    out: dict[str, Any] = {}
    vpc = payload.get("metadata")
    if isinstance(vpc, Mapping):
        if isinstance(reason := vpc.get("violationReason"), str) and reason:
            out["violationReason"] = reason[:MAX_SCALAR]
        info = vpc.get("securityPolicyInfo")
        if isinstance(info, Mapping) and isinstance(p := info.get("servicePerimeterName"), str):
            out["servicePerimeterName"] = p[:1024]
    org = payload.get("policyViolationInfo")
    org = org.get("orgPolicyViolationInfo") if isinstance(org, Mapping) else None
    violations = org.get("violationInfo") if isinstance(org, Mapping) else None
    constraints = _strings([v.get("constraint") for v in violations
                            if isinstance(v, Mapping)] if isinstance(violations, list) else [])
    if constraints:
        out["orgPolicyConstraints"] = constraints
    return out


def _labels(obj: Any) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        return {}
    return {k[:64]: v[:MAX_SCALAR] for k, v in list(obj.items())[:MAX_LABELS]
            if isinstance(k, str) and k and isinstance(v, str) and v}


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v[:MAX_SCALAR] for v in value if isinstance(v, str) and v][:MAX_LIST]


def _scalars(obj: Any, limit: int) -> dict[str, Any]:
    return scalars(obj, limit, MAX_SCALAR)


def _fit(event: dict[str, Any], truncated: list[str]) -> None:
    """Shed the bulkiest optional part until the event is within its budget (values that
    escape to six bytes a character can push even a clipped event over)."""
    meta = event["metadata"]
    while len(orjson.dumps(event)) > EVENT_BUDGET:
        present = [k for k in _SHEDDABLE if k in meta]
        if not present:
            return
        key = max(present, key=lambda k: len(orjson.dumps(meta[k])))
        del meta[key]
        truncated.append(f"/metadata/{key}")


_SHEDDABLE = ("request", "labels", "resourceLabels", "permissions", "permissionsDenied",
              "delegationChain", "resourceLocations")


def _is_address(value: str) -> bool:
    """Whether `callerIp` is an address rather than a word like "private". An odd value
    with digits counts as an address: a personal field is committed to, not stored in
    plain text."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return any(c.isdigit() for c in value)
    return True


__all__ = ["AUDIT_LOG_TYPE", "FORMAT", "PushedEntry", "RawEntry", "decode_export",
           "gcp_principal_type", "map_log_entry", "parse_pubsub_push", "read_gcp_paths"]
