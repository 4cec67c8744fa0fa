"""Stored records as Elastic Common Schema (ECS 8.x) documents, nested as Elasticsearch
stores them. `event.category`/`event.type` follow the auditkeep category and the action's
verb; what ECS has no field for is kept under `auditkeep.*`.

See docs/export.md for the field table.
"""

from __future__ import annotations

from typing import Any

from auditkeep.export._record import compact, integer, ip_text, mapping, text
from auditkeep.export.vocabulary import CHANGES, account_in_action, account_kind, read_action

ECS_VERSION = "8.17.0"

#: auditkeep category -> event.category. `api` covers API calls of any kind, syslog
#: included by ECS's own definition, so it takes the categories with no closer bucket.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "auth": ("authentication",),
    "admin": ("iam",),
    "policy": ("iam", "configuration"),
    "config": ("configuration",),
    "data_access": ("api",),
    "data_change": ("api",),
    "system": ("api",),
}

#: The event.type values ECS expects with each category.
_EXPECTED_TYPES = {
    "authentication": frozenset({"start", "end", "info"}),
    "iam": frozenset({"admin", "change", "creation", "deletion", "group", "info", "user"}),
    "configuration": frozenset({"access", "change", "creation", "deletion", "info"}),
    "api": frozenset({"access", "admin", "allowed", "change", "creation", "deletion",
                      "denied", "end", "info", "start", "user"}),
}

_VERB_TYPES = {"create": "creation", "delete": "deletion", "read": "access", "list": "access",
               "login": "start", "logout": "end", "start": "start", "stop": "end",
               **dict.fromkeys(CHANGES, "change")}
_OUTCOMES = {"success": "success", "failure": "failure", "denied": "failure"}
#: Same ascending scale as OCSF's severity_id, so both exports sort alike.
SEVERITIES = {"info": 1, "notice": 2, "warning": 3, "critical": 5}
_IAM_KINDS = {"user": "user", "serviceaccount": "user", "account": "user", "group": "group"}


def event_types(category: str | None, verb: str, outcome: str | None,
                kind: str | None) -> list[str]:
    """`event.type` for a record: the verb's type if ECS expects it with the event's
    categories (else `info`), plus `user`/`group`/`admin` for IAM events and `denied`
    for denied API calls."""
    categories = CATEGORIES.get(category or "", ("api",))
    allowed = frozenset().union(*(_EXPECTED_TYPES[c] for c in categories))
    main = _VERB_TYPES.get(verb, "info")
    types = [main if main in allowed else "info"]
    if "iam" in categories:
        types.append(_IAM_KINDS.get(kind or "", "admin"))
    if outcome == "denied" and "denied" in allowed:
        types.append("denied")
    return types


def to_ecs(record: dict[str, Any]) -> dict[str, Any]:
    """One stored record as an ECS document (see docs/export.md)."""
    action = text(record.get("action"))
    category = text(record.get("category"))
    outcome = text(record.get("outcome"))
    severity = text(record.get("severity"))
    actor = mapping(record.get("actor"))
    impersonator = mapping(actor.get("impersonator"))
    source = mapping(record.get("source"))
    resource = mapping(record.get("resource"))
    reading = read_action(action or "")
    resource_kind = account_kind(resource.get("type"))
    kind = resource_kind or account_in_action(reading)  # `CreateUser` is about a user

    acting = compact({"id": text(actor.get("id")), "name": text(actor.get("name")),
                      "email": text(actor.get("email"))})
    # ECS: `user` is who initiated the event, `user.effective` whose identity it ran
    # under (sudo). With impersonation auditkeep's actor is the identity used and the
    # impersonator the real caller, so they go to `user.effective` and `user`.
    user = ({"id": text(impersonator.get("id")), "effective": acting} if impersonator
            else dict(acting))
    target_id, target_name = text(resource.get("id")), text(resource.get("name"))
    if resource_kind in ("user", "serviceaccount", "account"):
        user["target"] = compact({"id": target_id, "name": target_name})
    ip = ip_text(actor.get("ip"))

    doc: dict[str, Any] = {
        "@timestamp": text(record.get("time")),
        "ecs": {"version": ECS_VERSION},
        "event": compact({
            "kind": "event",
            "module": "auditkeep",
            "dataset": "auditkeep.audit",
            "category": list(CATEGORIES.get(category or "", ("api",))),
            "type": event_types(category, reading.verb, outcome, kind),
            "action": action,
            "outcome": _OUTCOMES.get(outcome or "", "unknown"),
            "id": text(record.get("id")),
            "sequence": integer(record.get("seq")),
            "created": text(record.get("received")),
            "severity": SEVERITIES.get(severity or ""),
            "reason": text(record.get("reason")),
            "provider": text(source.get("service")),
        }),
        "log": compact({"level": severity}),
        "user": compact(user),
        "group": (compact({"id": target_id, "name": target_name})
                  if resource_kind == "group" else None),
        "source": compact({"ip": ip}),
        "user_agent": compact({"original": text(actor.get("user_agent"))}),
        "service": compact({"name": text(source.get("service")),
                            "version": text(source.get("version")),
                            "environment": text(source.get("environment"))}),
        "host": compact({"hostname": text(source.get("host"))}),
        "cloud": compact({"region": text(source.get("region"))}),
        "trace": compact({"id": text(record.get("trace_id"))}),
        "span": compact({"id": text(record.get("span_id"))}),
        "http": compact({"request": compact({"id": text(record.get("request_id"))})}),
        "organization": compact({"id": text(record.get("tenant"))}),
        "related": compact({
            "user": _unique(text(actor.get("id")), text(impersonator.get("id")),
                            target_id if resource_kind else None),
            "ip": _unique(ip),
        }),
        "auditkeep": compact({
            "seq": integer(record.get("seq")),
            "category": category,
            "outcome": outcome,
            "severity": severity,
            "actor": compact({"type": text(actor.get("type")),
                              "session_id": text(actor.get("session_id")),
                              # kept here when it is not an address `source.ip` takes
                              "ip": None if ip else text(actor.get("ip"))}),
            "resource": record.get("resource"),
            "targets": record.get("targets"),
            "changes": record.get("changes"),
            "metadata": record.get("metadata"),
            "submitter": record.get("submitter"),
            "raw": record.get("raw"),
            "v": record.get("v"),
        }),
    }
    return compact(doc)


def _unique(*values: str | None) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
