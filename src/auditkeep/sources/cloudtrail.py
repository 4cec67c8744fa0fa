"""AWS CloudTrail records as schema v1 events, and CloudTrail log files as delivered to S3.

Pure functions of the decoded JSON (the mapping table is in docs/sources.md). The file
reader slices each record's exact bytes out of its file, so the original can be stored
beside the log byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import orjson

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.validate import problem_from_msgspec
from auditkeep.sources._common import Reader, scalars
from auditkeep.sources._common import clip as _clip
from auditkeep.sources._common import type_name as _type_name
from auditkeep.sources.k8s import parse_time

#: The `raw.format` the server records for an original from this source.
FORMAT = "aws.cloudtrail"
EVENT_BUDGET = 60 * 1024  # schema v1 events are at most 64 KiB
MAX_TARGETS = 20
MAX_PARAMETERS = 20  # small scalar request parameters kept in metadata
MAX_EVENT_DATA = 10  # small scalar `additionalEventData` entries kept in metadata
MAX_SCALAR = 256

# Outcome: an errorCode containing one of these is a refusal (by IAM, SCPs, a VPC endpoint
# policy or authentication); any other errorCode is a failure.
DENIED_CODES = ("AccessDenied", "Unauthorized", "NotAuthorized", "Forbidden", "AuthFailure",
                "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken")
DRY_RUN_CODES = frozenset({"DryRunOperation", "Client.DryRunOperation"})

# Category, decided in this order (see docs/sources.md):
SIGN_IN_TYPES = frozenset({"AwsConsoleSignIn"})
SYSTEM_TYPES = frozenset({"AwsServiceEvent", "AwsCloudTrailInsight"})
AUTH_SERVICES = frozenset({"signin", "sts"})
ADMIN_SERVICES = frozenset({"iam", "organizations", "identitystore", "sso", "sso-directory",
                            "account"})
CONFIG_SERVICES = frozenset({"cloudtrail", "config", "guardduty", "securityhub",
                             "access-analyzer", "macie", "macie2", "inspector2", "detective"})
_READ_NAME = re.compile(r"^(Get|List|Describe|Head|Lookup|Search|BatchGet|Query|Scan)(?![a-z])")
_POLICY_NAME = re.compile(r"Polic(y|ies)|Acl|Permission|Grant|^(Authorize|Revoke)SecurityGroup")
_NOT_ACCESS_POLICY = re.compile(r"Lifecycle|Scaling|Retention|Backup")

_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]+$")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_INSTANCE_SESSION = re.compile(r"^i-[0-9a-fA-F]{8,17}$")
_SERVICE_LINKED = ":role/aws-service-role/"
_DIGEST = "_CloudTrail-Digest_"


def map_record(obj: Any, pointer: str = "") -> dict[str, Any]:
    """One CloudTrail record (a dict) in, one schema v1 event dict out. A record that
    cannot be mapped raises `ValidationError` naming every bad field by JSON pointer
    (under `pointer`)."""
    r = _Reader(pointer)
    return r.result(_map(obj, r))


@dataclass(frozen=True, slots=True)
class MappedLogFile:
    """The records of one log file: `(index, event)` for each record mapped, and the
    problems of the records that could not be (each `FieldProblem` carries the record's
    `index` and a pointer under `/Records/<index>`)."""

    events: list[tuple[int, dict[str, Any]]]
    problems: list[FieldProblem]

    def raise_for_problems(self) -> None:
        """For callers that take a file all or nothing."""
        if self.problems:
            bad = sorted({p.index for p in self.problems if p.index is not None})
            raise ValidationError(f"{len(bad)} CloudTrail record(s) cannot be mapped: "
                                  f"{_summary(self.problems)}", problems=self.problems)


def map_log_file(obj: Any) -> MappedLogFile:
    """Map every record of a decoded log file (`{"Records": [...]}`); a record that
    cannot be mapped is reported, never dropped. Raises `ValidationError` only when `obj`
    is not a log file at all."""
    if not isinstance(obj, Mapping):
        raise ValidationError("not a CloudTrail log file: expected {\"Records\": [...]}",
                              problems=[FieldProblem("", "expected a log file object",
                                                     "an object", _type_name(obj))])
    if not isinstance(obj.get("Records"), list):
        got = _type_name(obj["Records"]) if "Records" in obj else "missing"
        raise ValidationError("not a CloudTrail log file: expected {\"Records\": [...]}",
                              problems=[FieldProblem("/Records", "expected a list of records",
                                                     "a list", got)])
    events: list[tuple[int, dict[str, Any]]] = []
    problems: list[FieldProblem] = []
    for i, record in enumerate(obj["Records"]):
        r = _Reader(f"/Records/{i}")
        event = _map(record, r)
        if r.problems or event is None:
            problems += [replace(p, index=i) for p in r.problems]
        else:
            events.append((i, event))
    return MappedLogFile(events, problems)


class RawRecord(NamedTuple):
    """One record of a log file: where it is, its exact bytes, and its decoded JSON."""

    path: Path
    position: int  # 0-based, in the file's `Records`
    raw: bytes
    record: Any


class _LogFile(msgspec.Struct):
    Records: list[msgspec.Raw]


_log_file = msgspec.json.Decoder(_LogFile)
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)  # msgspec raises the latter too


def decode_log_file(body: bytes) -> list[tuple[bytes, Any]]:
    """Each record of a log file's body (gzip-compressed or not), in order: its exact
    bytes and its decoded JSON. Raises `ValidationError` when the body is not a CloudTrail
    log file."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValidationError(f"not a gzip file: {exc}", problems=[
                FieldProblem("", "cannot decompress", "gzip", str(exc))]) from None
    try:
        raws = [bytes(raw) for raw in _log_file.decode(body).Records]
    except _DECODE_ERRORS as exc:
        raise ValidationError(f"not a CloudTrail log file: {exc}",
                              problems=[problem_from_msgspec(exc, None)]) from None
    out: list[tuple[bytes, Any]] = []
    for i, raw in enumerate(raws):
        try:  # slicing skips over strings; decoding checks them (UTF-8)
            out.append((raw, msgspec.json.decode(raw)))
        except _DECODE_ERRORS as exc:
            raise ValidationError(f"record {i} is not JSON: {exc}", problems=[FieldProblem(
                f"/Records/{i}", "expected JSON (UTF-8)", "JSON", "not JSON", index=i)]) from None
    return out


def read_cloudtrail_paths(paths: Iterable[str | os.PathLike[str]], *,
                          on_error: Callable[[Path, Exception], None] | None = None
                          ) -> Iterator[RawRecord]:
    """Every record of the CloudTrail log files at `paths`, as delivered to S3: files
    (`*.json` or `*.json.gz`, read whatever their name) and directory trees, walked
    recursively in sorted order, skipping digest files. A file that cannot be read or is
    not a log file (`OSError`, `ValidationError`) is passed to `on_error`, as `os.walk`
    does, and skipped; without `on_error` it is raised."""
    for path in _log_files(paths):
        try:
            records = decode_log_file(path.read_bytes())
        except (OSError, ValidationError) as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        for i, (raw, record) in enumerate(records):
            yield RawRecord(path, i, raw, record)


def _log_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            yield path
            continue
        found = [Path(top, name) for top, _, names in os.walk(path) for name in names
                 if name.endswith((".json", ".json.gz")) and _DIGEST not in name]
        yield from sorted(found)


class _Reader(Reader):
    """Typed access to the record that collects a problem for each wrong type."""

    __slots__ = ()

    def flag(self, obj: Mapping[str, Any], key: str) -> bool | None:
        v = obj.get(key)
        parsed = _bool_text(v)
        if parsed is None and v is not None:
            self.bad(f"/{key}", 'a boolean (or "true"/"false")', v)
        return parsed

    def result(self, event: dict[str, Any] | None) -> dict[str, Any]:
        if self.problems or event is None:
            raise ValidationError(f"malformed CloudTrail record: {_summary(self.problems)}",
                                  problems=self.problems)
        return event


def _summary(problems: list[FieldProblem]) -> str:
    return "; ".join(f"{p.pointer or '/'}: {p.detail}, got {p.actual}" for p in problems)


_UID_TEXT = ("type", "arn", "principalId", "userName", "accountId", "invokedBy", "accessKeyId")
_ISSUER_TEXT = ("type", "arn", "principalId", "userName", "accountId")


def _map(obj: Any, r: _Reader) -> dict[str, Any] | None:
    if not isinstance(obj, Mapping):
        r.bad("", "a CloudTrail record (an object)", obj)
        return None
    event_id = r.text(obj, "eventID")
    name = r.text(obj, "eventName")
    source = r.text(obj, "eventSource")
    raw_time = r.text(obj, "eventTime")
    event_type = r.text(obj, "eventType")
    code = r.text(obj, "errorCode")
    message = r.text(obj, "errorMessage")
    ip = r.text(obj, "sourceIPAddress")
    agent = r.text(obj, "userAgent")
    request_id = r.text(obj, "requestID")
    region = r.text(obj, "awsRegion")
    read_only = r.flag(obj, "readOnly")
    uid = r.mapping(obj, "userIdentity")
    ident = _identity(uid, r) if uid is not None else None
    if r.problems:
        return None

    truncated: list[str] = []
    unmapped: list[str] = []
    missing = [f for f in ("eventID", "eventTime", "eventSource", "eventName", "userIdentity")
               if not obj.get(f)]
    service = _service(source)
    action = f"aws.{service}.{_SEGMENT_UNSAFE.sub('_', name) if name else 'unknown'}"
    event: dict[str, Any] = {
        "id": _record_id(obj, event_id),
        "action": _clip(action, 256, "/action", truncated).rstrip("."),
        "actor": _actor(ident, missing, truncated),
        "outcome": _outcome(code, name, obj.get("responseElements")),
        "category": _category(event_type, service, name, read_only),
    }
    meta: dict[str, Any] = {}
    if raw_time is not None:
        when = parse_time(raw_time)
        if when is None:  # exports redact values ("redacted"): map the rest, keep the text
            unmapped.append("/eventTime")
            meta["eventTime"] = raw_time[:MAX_SCALAR]
        else:
            event["time"] = when
    if ip is not None:
        if _is_address(ip):
            event["actor"]["ip"] = _clip(ip, 64, "/actor/ip", truncated)
        else:  # an AWS service acting for the caller ("cloudformation.amazonaws.com")
            meta["sourceIPAddress"] = _clip(ip, MAX_SCALAR, "/metadata/sourceIPAddress",
                                            truncated)
    if agent is not None:
        event["actor"]["user_agent"] = _clip(agent, 1024, "/actor/user_agent", truncated)
    resources = _resources(obj.get("resources"), unmapped, truncated)
    if resources:
        event["resource"] = resources[0]
    if len(resources) > 1:
        event["targets"] = resources[1:]
    if message or code:
        event["reason"] = _clip(message or code or "", 1024, "/reason", truncated)
    src = {"service": _clip(source, 256, "/source/service", truncated)} if source else {}
    if region:
        src["region"] = _clip(region, 256, "/source/region", truncated)
    if src:
        event["source"] = src
    if request_id:
        event["request_id"] = _clip(request_id, 256, "/request_id", truncated)

    meta |= _metadata(obj, name, code, read_only, ident, unmapped, truncated)
    if code in DRY_RUN_CODES:
        meta["dryRun"] = True
    if missing:
        meta["missing"] = missing
    if unmapped:
        meta["unmapped"] = unmapped
    event["metadata"] = meta
    _fit(event, truncated)
    if truncated:
        meta["truncated"] = truncated
    return event


def _identity(uid: Mapping[str, Any], r: _Reader) -> dict[str, Any]:
    """The `userIdentity` strings the event depends on, checked; flat, dotted keys."""
    at = "/userIdentity"
    ident: dict[str, Any] = {k: v for k in _UID_TEXT if (v := r.text(uid, k, at)) is not None}
    ctx = r.mapping(uid, "sessionContext", at)
    if ctx is not None:
        issuer = r.mapping(ctx, "sessionIssuer", f"{at}/sessionContext") or {}
        for k in _ISSUER_TEXT:
            if (v := r.text(issuer, k, f"{at}/sessionContext/sessionIssuer")) is not None:
                ident[f"issuer.{k}"] = v
        if (v := r.text(ctx, "sourceIdentity", f"{at}/sessionContext")) is not None:
            ident["sourceIdentity"] = v
        ident["attributes"] = ctx.get("attributes")
        ident["webIdFederationData"] = ctx.get("webIdFederationData")
    behalf = r.mapping(uid, "onBehalfOf", at)
    if behalf is not None and (v := r.text(behalf, "userId", f"{at}/onBehalfOf")) is not None:
        ident["onBehalfOf.userId"] = v
    return ident


def _actor(ident: dict[str, Any] | None, missing: list[str], truncated: list[str]
           ) -> dict[str, Any]:
    if ident is None:  # trimmed input; `metadata.missing` says so
        return {"id": "unknown", "type": "anonymous"}
    kind = ident.get("type")
    account = ident.get("accountId")
    if kind == "AWSService":
        pid = ident.get("invokedBy") or ident.get("principalId")
    elif "ANONYMOUS_PRINCIPAL" in (account, ident.get("principalId")):
        return {"id": "anonymous", "type": "anonymous"}
    else:
        pid = ident.get("arn") or ident.get("principalId") or ident.get("onBehalfOf.userId")
        if pid is None and kind == "Root" and account:
            pid = f"arn:aws:iam::{account}:root"
        pid = pid or ident.get("userName") or account
    if pid is None:
        if "userIdentity" not in missing:
            missing.append("userIdentity.arn")
        return {"id": "unknown", "type": "anonymous"}
    actor: dict[str, Any] = {"id": _clip(pid, 256, "/actor/id", truncated),
                             "type": _actor_type(kind, ident)}
    name = _display_name(kind, ident)
    if name:
        actor["name"] = _clip(name, 1024, "/actor/name", truncated)
    key = ident.get("accessKeyId")
    if key and key.startswith("ASIA"):  # temporary credentials: one role or federated session
        actor["session_id"] = _clip(key, 256, "/actor/session_id", truncated)
    if source_identity := ident.get("sourceIdentity"):
        actor["impersonator"] = {"id": _clip(source_identity, 256, "/actor/impersonator/id",
                                             truncated), "type": "user"}
    return actor


def _actor_type(kind: str | None, ident: Mapping[str, Any]) -> str:
    if kind == "AWSService":
        return "service"
    if kind == "AssumedRole":
        issuer = ident.get("issuer.arn") or ""
        if _SERVICE_LINKED in issuer or _INSTANCE_SESSION.match(_session_name(ident) or ""):
            return "service"  # used only by an AWS service, or an EC2 instance profile
    return "user"


def _session_name(ident: Mapping[str, Any]) -> str | None:
    """`alice` of `arn:aws:sts::1:assumed-role/Admin/alice` (or of `AROA...:alice`)."""
    parts = (ident.get("arn") or "").split(":", 5)[-1].split("/")
    skip = {"assumed-role": 2, "federated-user": 1}.get(parts[0])
    if skip is not None and (name := "/".join(parts[skip:])):
        return name
    return (ident.get("principalId") or "").partition(":")[2] or None


def _display_name(kind: str | None, ident: Mapping[str, Any]) -> str | None:
    if kind == "Root":
        return "root"
    if kind in ("AssumedRole", "FederatedUser"):
        return _session_name(ident)
    name = ident.get("userName")
    return name if isinstance(name, str) else None


def _outcome(code: str | None, name: str | None, response: Any) -> str:
    if code:
        if any(d in code for d in DENIED_CODES):
            return "denied"
        return "success" if code in DRY_RUN_CODES else "failure"
    # Sign-in events carry no errorCode: the result is {"ConsoleLogin": "Failure"}.
    if name and isinstance(response, Mapping) and response.get(name) == "Failure":
        return "denied"
    return "success"


def _category(event_type: str | None, service: str, name: str | None,
              read_only: bool | None) -> str:
    if event_type in SIGN_IN_TYPES:
        return "auth"
    if event_type in SYSTEM_TYPES:
        return "system"
    if service in AUTH_SERVICES:
        return "auth"
    name = name or ""
    if read_only or (read_only is None and _READ_NAME.match(name)):
        return "data_access"
    if _POLICY_NAME.search(name) and not _NOT_ACCESS_POLICY.search(name):
        return "policy"
    if service in ADMIN_SERVICES:
        return "admin"
    if service in CONFIG_SERVICES:
        return "config"
    return "data_change"


def _service(source: str | None) -> str:
    if not source:
        return "unknown"
    return _SEGMENT_UNSAFE.sub("_", source.removesuffix(".amazonaws.com")) or "unknown"


def _record_id(obj: Mapping[str, Any], event_id: str | None) -> str:
    if event_id:
        if _ID_SAFE.match(event_id) and len(event_id) <= 124:
            return f"aws:{event_id}"
        return f"aws:h:{hashlib.sha256(event_id.encode()).hexdigest()[:32]}"
    # No eventID (trimmed input): the content decides, so a re-read maps to the same id.
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":")).encode()
    return f"aws:sha256:{hashlib.sha256(raw).hexdigest()[:32]}"


def _resources(items: Any, unmapped: list[str], truncated: list[str]) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        unmapped.append("/resources")
        return []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if len(out) > MAX_TARGETS:  # the resource and MAX_TARGETS targets are taken
            truncated.append("/targets")
            break
        arn = (item.get("ARN") or item.get("arn")) if isinstance(item, Mapping) else None
        if not isinstance(arn, str) or not arn:
            unmapped.append(f"/resources/{i}")
            continue
        kind = item.get("type")
        at = "/resource" if not out else f"/targets/{len(out) - 1}"
        out.append({"type": _clip(kind if isinstance(kind, str) and kind else _arn_type(arn),
                                  256, f"{at}/type", truncated),
                    "id": _clip(arn, 1024, f"{at}/id", truncated)})
    return out


def _arn_type(arn: str) -> str:
    """`<service>:<resource type>` of an ARN (`iam:role`), for resources without `type`."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[2]:
        return "unknown"
    kind = re.split(r"[/:]", parts[5], maxsplit=1)
    if len(kind) < 2 or parts[2] == "s3":  # S3 ARNs name the bucket first
        return parts[2]
    return f"{parts[2]}:{kind[0]}"


_TEXT_META = ("eventVersion", "eventType", "eventCategory", "recipientAccountId",
              "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "apiVersion")
_FLAG_META = ("managementEvent", "sessionCredentialFromConsole")
_IDENTITY_META = (("type", "userIdentityType"), ("accountId", "accountId"),
                  ("principalId", "principalId"), ("accessKeyId", "accessKeyId"),
                  ("invokedBy", "invokedBy"))


def _metadata(obj: Mapping[str, Any], name: str | None, code: str | None,
              read_only: bool | None, ident: dict[str, Any] | None, unmapped: list[str],
              truncated: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if name:
        meta["eventName"] = _clip(name, MAX_SCALAR, "/metadata/eventName", truncated)
    if code:
        meta["errorCode"] = _clip(code, MAX_SCALAR, "/metadata/errorCode", truncated)
    if read_only is not None:
        meta["readOnly"] = read_only
    for key in _TEXT_META:
        v = obj.get(key)
        if isinstance(v, str) and v:
            meta[key] = _clip(v, MAX_SCALAR, f"/metadata/{key}", truncated)
        elif v is not None and v != "":
            unmapped.append(f"/{key}")
    for key in _FLAG_META:
        v = obj.get(key)
        flag = _bool_text(v)
        if flag is not None:
            meta[key] = flag
        elif v is not None:
            unmapped.append(f"/{key}")
    if ident is not None:
        meta |= _identity_metadata(ident, unmapped, truncated)
    tls = obj.get("tlsDetails")
    if isinstance(tls, Mapping):
        for key in ("tlsVersion", "cipherSuite", "clientProvidedHostHeader"):
            if isinstance(v := tls.get(key), str) and v:
                meta[key] = _clip(v, MAX_SCALAR, f"/metadata/{key}", truncated)
    if params := _scalars(obj.get("requestParameters"), MAX_PARAMETERS):
        meta["requestParameters"] = params
    if data := _scalars(obj.get("additionalEventData"), MAX_EVENT_DATA):
        meta["additionalEventData"] = data
    return meta


def _identity_metadata(ident: dict[str, Any], unmapped: list[str], truncated: list[str]
                       ) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, as_key in _IDENTITY_META:
        if key in ident:
            meta[as_key] = _clip(ident[key], MAX_SCALAR, f"/metadata/{as_key}", truncated)
    issuer = {k: ident[f"issuer.{k}"][:MAX_SCALAR] for k in _ISSUER_TEXT
              if f"issuer.{k}" in ident}
    if issuer:
        meta["sessionIssuer"] = issuer
    attrs = ident.get("attributes")
    if isinstance(attrs, Mapping):
        mfa = _bool_text(attrs.get("mfaAuthenticated"))
        if mfa is not None:
            meta["mfaAuthenticated"] = mfa
        if isinstance(created := attrs.get("creationDate"), str) and created:
            meta["sessionCreationDate"] = created[:MAX_SCALAR]
    elif attrs is not None:
        unmapped.append("/userIdentity/sessionContext/attributes")
    web = ident.get("webIdFederationData")
    if isinstance(web, Mapping) and isinstance(p := web.get("federatedProvider"), str) and p:
        meta["federatedProvider"] = p[:MAX_SCALAR]
    return meta


def _scalars(obj: Any, limit: int) -> dict[str, Any]:
    return scalars(obj, limit, MAX_SCALAR)


def _fit(event: dict[str, Any], truncated: list[str]) -> None:
    """Shed the bulkiest optional part until the event is within its budget (values that
    escape to six bytes a character can push even a clipped event over)."""
    meta = event["metadata"]
    parts = [(meta, "requestParameters", "/metadata/requestParameters"),
             (meta, "additionalEventData", "/metadata/additionalEventData"),
             (event, "targets", "/targets"), (event, "reason", "/reason")]
    while len(orjson.dumps(event)) > EVENT_BUDGET:
        present = [p for p in parts if p[1] in p[0]]
        if not present:
            return
        holder, key, where = max(present, key=lambda p: len(orjson.dumps(p[0][p[1]])))
        del holder[key]
        truncated.append(where)


def _bool_text(value: Any) -> bool | None:
    """A boolean, also as the text some exports make of it ("true", "True")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _is_address(value: str) -> bool:
    """Whether `sourceIPAddress` is the caller's address rather than an AWS service. An
    odd value with digits (anonymised, zero-padded) counts as an address: a personal
    field is committed to, not stored in plain text."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return not value.endswith(".amazonaws.com") and any(c.isdigit() for c in value)
    return True


__all__ = ["FORMAT", "MappedLogFile", "RawRecord", "decode_log_file", "map_log_file",
           "map_record", "read_cloudtrail_paths"]
