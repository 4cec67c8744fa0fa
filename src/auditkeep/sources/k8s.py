"""Kubernetes audit events (`audit.k8s.io/v1`, also `v1beta1`) as schema v1 events.

Pure functions of the decoded JSON: the file-tailing agent and the webhook source share
them, so an event that reaches the server both ways gets the same id and content and is
stored once. See docs/agent.md for the mapping table.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import orjson

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.sources._common import Reader
from auditkeep.sources._common import clip as _clip

DEFAULT_STAGES = frozenset({"ResponseComplete", "Panic"})
API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
READ_VERBS = frozenset({"get", "list", "watch"})

# Category of an event, decided in this order (see docs/agent.md):
AUTH_RESOURCES = frozenset({
    "tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews",
    "localsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews",
    "certificatesigningrequests"})
AUTH_SUBRESOURCES = frozenset({("serviceaccounts", "token")})
POLICY_RESOURCES = frozenset({
    "roles", "rolebindings", "clusterroles", "clusterrolebindings", "networkpolicies",
    "podsecuritypolicies", "validatingadmissionpolicies", "validatingadmissionpolicybindings"})
CONFIG_RESOURCES = frozenset({
    "configmaps", "customresourcedefinitions", "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations", "apiservices"})

MAX_ANNOTATIONS = 50  # metadata may hold 100 keys in all
MAX_GROUPS = 100
EVENT_BUDGET = 60 * 1024  # schema v1 events are at most 64 KiB
_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]+$")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?"
                   r"([Zz]|[+-]\d{2}:\d{2})?$")


class K8sEventMapper:
    """One Kubernetes audit `Event` (a dict) in, one schema v1 event dict out, or None
    when the event's stage is not wanted. Malformed input raises `ValidationError`
    naming every bad field by JSON pointer (under `pointer`)."""

    __slots__ = ("stages",)

    def __init__(self, stages: Collection[str] | None = DEFAULT_STAGES) -> None:
        self.stages = None if stages is None else frozenset(stages)

    def __call__(self, obj: Any, pointer: str = "") -> dict[str, Any] | None:
        r = _Reader(pointer)
        event = _map(obj, r, self.stages)
        r.raise_if_any()
        return event

    def event_list(self, obj: Any) -> list[dict[str, Any]]:
        """Every wanted event of an `EventList` (the webhook body), in order; all problems
        of all items are reported at once."""
        r = _Reader("")
        items = r.list_of(obj, "items") if isinstance(obj, Mapping) else None
        if not isinstance(obj, Mapping):
            r.bad("", "an EventList object", obj)
        else:
            kind = r.text(obj, "kind")
            if kind is not None and kind != "EventList":
                r.bad("/kind", '"EventList"', kind)
            if items is None and "items" not in obj:
                r.problems.append(FieldProblem("/items", "required", "a list of events",
                                               "missing"))
        out: list[dict[str, Any]] = []
        for i, item in enumerate(items or ()):
            sub = _Reader(f"/items/{i}")
            event = _map(item, sub, self.stages)
            r.problems += sub.problems
            if event is not None and not sub.problems:
                out.append(event)
        r.raise_if_any()
        return out


def map_event(obj: Any, *, stages: Collection[str] | None = DEFAULT_STAGES
              ) -> dict[str, Any] | None:
    """Map one audit `Event`; None when its stage is not in `stages` (None: all)."""
    return K8sEventMapper(stages)(obj)


def map_event_list(obj: Any, *, stages: Collection[str] | None = DEFAULT_STAGES
                   ) -> list[dict[str, Any]]:
    """Map an `EventList` (what the API server's webhook backend posts)."""
    return K8sEventMapper(stages).event_list(obj)


class _Reader(Reader):
    """Typed access to the input that collects a problem for each wrong type."""

    __slots__ = ()

    def list_of(self, obj: Mapping[str, Any], key: str, at: str = "") -> list[Any] | None:
        v = obj.get(key)
        if v is None or isinstance(v, list):
            return v
        self.bad(f"{at}/{key}", "a list", v)
        return None

    def strings(self, obj: Mapping[str, Any], key: str, at: str = "") -> list[str]:
        items = self.list_of(obj, key, at) or []
        for i, v in enumerate(items):
            if not isinstance(v, str):
                self.bad(f"{at}/{key}/{i}", "a string", v)
        return [v for v in items if isinstance(v, str)]

    def raise_if_any(self) -> None:
        if self.problems:
            detail = "; ".join(f"{p.pointer}: {p.detail}, got {p.actual}" for p in self.problems)
            raise ValidationError(f"malformed Kubernetes audit event: {detail}",
                                  problems=self.problems)


def _map(obj: Any, r: _Reader, stages: frozenset[str] | None) -> dict[str, Any] | None:
    if not isinstance(obj, Mapping):
        r.bad("", "a Kubernetes audit Event object", obj)
        return None
    kind = r.text(obj, "kind")
    if kind is not None and kind != "Event":
        r.bad("/kind", '"Event"', kind)
    api = r.text(obj, "apiVersion")
    if api is not None and api not in API_VERSIONS:
        r.bad("/apiVersion", " or ".join(sorted(API_VERSIONS)), api)
    stage = r.text(obj, "stage")
    if stages is not None and stage is not None and stage not in stages:
        return None  # absent stage: trimmed input; kept rather than silently dropped
    audit_id = r.text(obj, "auditID")
    verb = r.text(obj, "verb")
    uri = r.text(obj, "requestURI")
    level = r.text(obj, "level")
    ref = r.mapping(obj, "objectRef") or {}
    resource = r.text(ref, "resource", "/objectRef")
    sub = r.text(ref, "subresource", "/objectRef")
    ns = r.text(ref, "namespace", "/objectRef")
    name = r.text(ref, "name", "/objectRef")
    group = r.text(ref, "apiGroup", "/objectRef")
    version = r.text(ref, "apiVersion", "/objectRef")
    user = r.mapping(obj, "user")
    imp = r.mapping(obj, "impersonatedUser")
    username = r.text(user, "username", "/user") if user is not None else None
    imp_name = r.text(imp, "username", "/impersonatedUser") if imp is not None else None
    ips = r.strings(obj, "sourceIPs")
    agent = r.text(obj, "userAgent")
    status = r.mapping(obj, "responseStatus") or {}
    code = status.get("code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        r.bad("/responseStatus/code", "an integer", code)
        code = None
    annotations = r.mapping(obj, "annotations") or {}
    when = _event_time(obj, r)
    if r.problems:
        return None

    truncated: list[str] = []
    missing = [f for f in ("auditID", "stage", "verb", "user") if not obj.get(f)]
    if user is not None and username is None:
        missing.append("user.username")
    if imp is not None and imp_name is None:
        missing.append("impersonatedUser.username")
    event: dict[str, Any] = {
        "id": _event_id(obj, audit_id, stage),
        "action": _action(resource, sub, verb, bool(ref)),
        "actor": _actor(username, imp is not None, imp_name, ips, agent, truncated),
        "outcome": _outcome(code),
        "category": _category(resource, sub, verb),
    }
    if when is not None:
        event["time"] = when
    if resource:
        if not name and verb == "create":  # the name may only be in the request body
            body_meta = (obj.get("requestObject") or {})
            body_meta = body_meta.get("metadata") if isinstance(body_meta, Mapping) else None
            if isinstance(body_meta, Mapping) and isinstance(body_meta.get("name"), str):
                name = body_meta["name"] or None
        rid = f"{ns}/{name or '*'}" if ns else (name or "*")
        res = {"type": _clip(resource, 256, "/resource/type", truncated),
               "id": _clip(rid, 1024, "/resource/id", truncated)}
        if name:
            res["name"] = _clip(name, 1024, "/resource/name", truncated)
        event["resource"] = res
    elif uri and not ref:
        path = uri.split("?", 1)[0] or "/"
        event["resource"] = {"type": "nonresource",
                             "id": _clip(path, 1024, "/resource/id", truncated)}
    event["source"] = {"service": "kube-apiserver"}
    if audit_id:
        event["request_id"] = _clip(audit_id, 256, "/request_id", truncated)
    meta = _metadata(obj, verb, uri, stage, level, ns, group, version, sub, api, code,
                     status, user, imp, ips, annotations)
    if missing:
        meta["missing"] = missing
    event["metadata"] = meta
    if len(orjson.dumps(event)) > EVENT_BUDGET:  # pathological sizes: shed the bulkiest
        for key in ("annotations", "groups", "impersonatedGroups", "message", "requestURI"):
            if key in meta:
                del meta[key]
                truncated.append(f"/metadata/{key}")
                if len(orjson.dumps(event)) <= EVENT_BUDGET:
                    break
    if truncated:
        meta["truncated"] = truncated
    return event


def _event_id(obj: Mapping[str, Any], audit_id: str | None, stage: str | None) -> str:
    suffix = f":{_SEGMENT_UNSAFE.sub('_', stage)[:32]}" if stage else ""
    if audit_id:
        if _ID_SAFE.match(audit_id) and len(audit_id) + len(suffix) <= 124:
            return f"k8s:{audit_id}{suffix}"
        return f"k8s:h:{hashlib.sha256(audit_id.encode()).hexdigest()[:32]}{suffix}"
    # No auditID (trimmed input): the content decides, so a re-read maps to the same id.
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":")).encode()
    return f"k8s:sha256:{hashlib.sha256(raw).hexdigest()[:32]}{suffix}"


def _segment(value: str | None) -> str:
    return _SEGMENT_UNSAFE.sub("_", value) if value else "unknown"


def _action(resource: str | None, sub: str | None, verb: str | None, has_ref: bool) -> str:
    if not has_ref:
        return f"k8s.nonresource.{_segment(verb)}"
    parts = ["k8s", _segment(resource)]
    if sub:
        parts.append(_segment(sub))
    parts.append(_segment(verb))
    return ".".join(parts)


def principal_type(username: str) -> str:
    """Schema v1 actor type of a Kubernetes username."""
    if username.startswith("system:serviceaccount:"):
        return "service"
    if username == "system:anonymous":
        return "anonymous"
    if username.startswith("system:"):
        return "system"
    return "user"


def _principal(username: str | None, truncated: list[str]) -> dict[str, Any]:
    if username is None:  # trimmed input; `metadata.missing` says so
        return {"id": "unknown", "type": "anonymous"}
    return {"id": _clip(username, 256, "/actor/id", truncated), "type": principal_type(username)}


def _actor(username: str | None, impersonating: bool, imp_name: str | None, ips: list[str],
           agent: str | None, truncated: list[str]) -> dict[str, Any]:
    actor = _principal(username, truncated)
    if impersonating:
        real = actor
        actor = _principal(imp_name, truncated)
        actor["impersonator"] = real
    if ips:
        actor["ip"] = _clip(ips[0], 64, "/actor/ip", truncated)
    if agent:
        actor["user_agent"] = _clip(agent, 1024, "/actor/user_agent", truncated)
    return actor


def _outcome(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 400:
        return "success"
    return "denied" if code in (401, 403) else "failure"


def _category(resource: str | None, sub: str | None, verb: str | None) -> str:
    if resource in AUTH_RESOURCES or (resource, sub) in AUTH_SUBRESOURCES:
        return "auth"
    if verb in READ_VERBS:
        return "data_access"
    if resource in POLICY_RESOURCES:
        return "policy"
    if resource in CONFIG_RESOURCES:
        return "config"
    return "data_change"


def _event_time(obj: Mapping[str, Any], r: _Reader) -> str | None:
    for key in ("stageTimestamp", "requestReceivedTimestamp", "timestamp"):
        raw = r.text(obj, key)
        if raw is None:
            continue
        parsed = parse_time(raw)
        if parsed is None:
            r.bad(f"/{key}", "an RFC 3339 timestamp", raw)
        return parsed
    return None


def parse_time(raw: str) -> str | None:
    """RFC 3339 (`MicroTime`), or the `2024-11-13 18:34:10.595141000` form some exports
    use (read as UTC), as RFC 3339 with at most microseconds; None if it is neither."""
    m = _TIME.match(raw)
    if m is None:
        return None
    day, clock, frac, zone = m.groups()
    zone = "Z" if zone in (None, "z", "Z") else zone
    text = f"{day}T{clock}{'.' + frac[:6] if frac else ''}{zone}"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


def _metadata(obj: Mapping[str, Any], verb: str | None, uri: str | None, stage: str | None,
              level: str | None, ns: str | None, group: str | None, version: str | None,
              sub: str | None, api: str | None, code: int | None, status: Mapping[str, Any],
              user: Mapping[str, Any] | None, imp: Mapping[str, Any] | None, ips: list[str],
              annotations: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in (("verb", verb), ("requestURI", uri and uri[:4096]), ("stage", stage),
                       ("level", level), ("namespace", ns), ("apiGroup", group),
                       ("apiVersion", version), ("subresource", sub),
                       ("auditAPIVersion", api), ("code", code)):
        if value is not None:
            meta[key] = value
    for key in ("reason", "message", "status"):
        v = status.get(key)
        if isinstance(v, str) and v:
            meta[key] = v[:1024]
    if user is not None and (groups := _str_list(user.get("groups"))):
        meta["groups"] = groups
    if imp is not None and (groups := _str_list(imp.get("groups"))):
        meta["impersonatedGroups"] = groups
    if len(ips) > 1:
        meta["sourceIPs"] = ips
    received = obj.get("requestReceivedTimestamp")
    if isinstance(received, str) and obj.get("stageTimestamp"):
        meta["requestReceivedTimestamp"] = received
    kept = {k: v[:1024] for k, v in list(annotations.items())[:MAX_ANNOTATIONS]
            if isinstance(v, str)}
    if kept:
        meta["annotations"] = kept
    return meta


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v[:256] for v in value if isinstance(v, str)][:MAX_GROUPS]


__all__ = ["DEFAULT_STAGES", "K8sEventMapper", "map_event", "map_event_list", "parse_time",
           "principal_type"]
