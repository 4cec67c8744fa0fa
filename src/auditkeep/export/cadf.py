"""Stored records as DMTF CADF events (DSP0262 1.0, the JSON form pycadf and OpenStack
emit). The action is taken from the CADF action taxonomy by the action's verb; the
auditkeep action itself, the reason text, metadata and changes travel as attachments.

See docs/export.md for the field table.
"""

from __future__ import annotations

from typing import Any

from auditkeep.export._record import compact, integer, mapping, text
from auditkeep.export.vocabulary import kind_of, read_action

EVENT_TYPE_URI = "http://schemas.dmtf.org/cloud/audit/1.0/event"
OBSERVER = {"id": "auditkeep", "typeURI": "service/security", "name": "auditkeep"}
#: The domain of `reason.reasonCode`: auditkeep's own outcome words.
REASON_TYPE = "auditkeep:outcome"

ACTIONS = {"create": "create", "read": "read", "list": "read/list", "update": "update",
           "delete": "delete", "login": "authenticate/login", "logout": "authenticate/logout",
           "enable": "enable", "disable": "disable", "start": "start", "stop": "stop",
           "revoke": "revoke", "reset": "update", "lock": "disable", "unlock": "enable",
           "attach": "update", "detach": "update", "grant": "update"}
_OUTCOMES = {"success": "success", "failure": "failure", "denied": "failure"}
INITIATOR_TYPES = {"user": "service/security/account/user", "service": "service",
                   "system": "service", "anonymous": "unknown"}
#: Resource kind (see `vocabulary.kind_of`) -> CADF resource taxonomy. Others: `data`.
TARGET_TYPES = {
    "user": "data/security/account/user", "serviceaccount": "data/security/account/user",
    "account": "data/security/account", "role": "data/security/role",
    "clusterrole": "data/security/role", "group": "data/security/group",
    "policy": "data/security/policy", "rolebinding": "data/security/policy",
    "clusterrolebinding": "data/security/policy", "key": "data/security/key",
    "secret": "data/security/credential", "credential": "data/security/credential",
    "token": "data/security/credential", "certificate": "data/security/credential",
    "configmap": "data/config", "config": "data/config", "file": "data/file",
    "object": "data/file", "log": "data/file/log", "database": "data/database",
    "table": "data/database/table", "bucket": "storage/container",
    "volume": "storage/volume", "queue": "storage/queue", "instance": "compute/machine",
    "vm": "compute/machine", "node": "compute/node", "pod": "data/workload/app",
    "deployment": "data/workload/app", "job": "data/workload/job",
    "image": "data/image", "namespace": "data/directory", "directory": "data/directory",
    "network": "network", "message": "data/message", "service": "service",
}


def cadf_action(record: dict[str, Any]) -> str:
    """The CADF taxonomy action for a record: the verb's action; an `auth` event whose
    verb is no login/logout is `authenticate`; no known verb is `unknown`."""
    verb = read_action(text(record.get("action")) or "").verb
    if record.get("category") == "auth" and verb not in ("login", "logout"):
        return "authenticate"
    return ACTIONS.get(verb, "unknown")


def to_cadf(record: dict[str, Any]) -> dict[str, Any]:
    """One stored record as a CADF event (see docs/export.md)."""
    outcome = text(record.get("outcome"))
    actor = mapping(record.get("actor"))
    source = mapping(record.get("source"))
    resource = mapping(record.get("resource"))
    reason = text(record.get("reason"))
    event: dict[str, Any] = {
        "typeURI": EVENT_TYPE_URI,
        "id": text(record.get("id")),
        "eventType": "activity",
        "eventTime": text(record.get("time")),
        "action": cadf_action(record),
        "outcome": _OUTCOMES.get(outcome or "", "unknown"),
        "initiator": compact({
            "id": text(actor.get("id")),
            "typeURI": INITIATOR_TYPES.get(text(actor.get("type")) or "", "unknown"),
            "name": text(actor.get("name")),
            "host": compact({"address": text(actor.get("ip")),
                             "agent": text(actor.get("user_agent"))}),
        }),
        "target": _target(resource, source),
        "observer": dict(OBSERVER),
        "reason": ({"reasonType": REASON_TYPE, "reasonCode": outcome}
                   if outcome in ("failure", "denied") else None),
        "severity": text(record.get("severity")),
        "attachments": _attachments(record, actor, source, reason),
    }
    return compact(event)


def _target(resource: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The resource acted on; CADF requires a target, so an event without a resource
    targets the service that reported it (or `unknown`)."""
    if resource:
        return compact({
            "id": text(resource.get("id")),
            "typeURI": TARGET_TYPES.get(kind_of(resource.get("type")) or "", "data"),
            "name": text(resource.get("name")),
        })
    return {"id": text(source.get("service")) or "unknown", "typeURI": "service"}


def _attachments(record: dict[str, Any], actor: dict[str, Any], source: dict[str, Any],
                 reason: str | None) -> list[dict[str, Any]]:
    context = compact({
        "tenant": text(record.get("tenant")),
        "seq": integer(record.get("seq")),
        "category": text(record.get("category")),
        "outcome": text(record.get("outcome")),
        "received": text(record.get("received")),
        "request_id": text(record.get("request_id")),
        "trace_id": text(record.get("trace_id")),
        "span_id": text(record.get("span_id")),
        "actor": compact({"type": text(actor.get("type")),
                          "email": text(actor.get("email")),
                          "session_id": text(actor.get("session_id")),
                          "impersonator": actor.get("impersonator")}),
        "resource_type": text(mapping(record.get("resource")).get("type")),
        "targets": record.get("targets"),
        "source": source or None,
        "submitter": record.get("submitter"),
        "raw": record.get("raw"),
    })
    items = [
        ("action", "auditkeep:action", text(record.get("action"))),
        ("reason", "text/plain", reason),
        ("metadata", "application/json", record.get("metadata")),
        ("changes", "application/json", record.get("changes")),
        ("auditkeep", "application/json", context),
    ]
    return [{"name": name, "typeURI": type_uri, "content": content}
            for name, type_uri, content in items if content not in (None, {}, [])]
