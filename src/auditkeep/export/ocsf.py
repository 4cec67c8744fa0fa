"""Stored records as OCSF 1.1.0 events: Authentication (3002), Account Change (3001) or
API Activity (6003), chosen from the category, the resource type and the action name.

See docs/export.md for the field table. Fields OCSF has no place for go to `unmapped`,
so a consumer can always get back to the auditkeep record.
"""

from __future__ import annotations

from typing import Any

from auditkeep import __version__
from auditkeep.export._record import compact, epoch_ms, integer, ip_text, mapping, text
from auditkeep.export.vocabulary import (
    CHANGES,
    ActionReading,
    account_in_action,
    account_kind,
    read_action,
)

OCSF_VERSION = "1.1.0"

AUTHENTICATION = 3002
ACCOUNT_CHANGE = 3001
API_ACTIVITY = 6003

_CLASSES = {  # class_uid -> (class name, category_uid, category name)
    AUTHENTICATION: ("Authentication", 3, "Identity & Access Management"),
    ACCOUNT_CHANGE: ("Account Change", 3, "Identity & Access Management"),
    API_ACTIVITY: ("API Activity", 6, "Application Activity"),
}

_API_ACTIVITIES = {"create": 1, "read": 2, "list": 2, "delete": 4,
                   **dict.fromkeys(CHANGES, 3)}
_AUTH_ACTIVITIES = {"login": 1, "logout": 2}
_ACCOUNT_ACTIVITIES = {"create": 1, "enable": 2, "disable": 5, "delete": 6, "attach": 7,
                       "grant": 7, "detach": 8, "revoke": 8, "lock": 9}
_ACTIVITY_NAMES = {
    API_ACTIVITY: {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
    AUTHENTICATION: {1: "Logon", 2: "Logoff"},
    ACCOUNT_CHANGE: {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset",
                     5: "Disable", 6: "Delete", 7: "Attach Policy", 8: "Detach Policy",
                     9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable"},
}
OTHER = 99

_SEVERITIES = {"info": (1, "Informational"), "notice": (2, "Low"), "warning": (3, "Medium"),
               "critical": (5, "Critical")}
_STATUSES = {"success": (1, "Success"), "failure": (2, "Failure"), "denied": (2, "Failure")}
_USER_TYPES = {"user": (1, "User"), "system": (3, "System"), "service": (99, "Service"),
               "anonymous": (99, "Anonymous")}

#: Categories whose account-related actions are Account Changes (see `class_of`).
_ACCOUNT_CATEGORIES = frozenset({"admin", "data_change"})
#: Verbs that make an event an Authentication whatever category its producer gave.
_AUTH_VERBS = frozenset({"login", "logout"})
#: Words that make an action about an account even when it names none (`ChangePassword`).
_CREDENTIAL_WORDS = frozenset({"password", "mfa"})


def class_of(record: dict[str, Any]) -> int:
    """The OCSF class_uid for a record:

    - category `auth`, or an action whose verb is a logon or logoff (`users.login`,
      `ConsoleLogin`) whatever its category -> Authentication (3002);
    - category `admin` or `data_change` about an identity (resource type user, account,
      role, group or serviceaccount; an action such as `iam.user.create` or
      `aws.iam.CreateUser`; or an action about a password or MFA), or a `policy`
      attach/detach on one (`AttachUserPolicy`) -> Account Change (3001);
    - everything else -> API Activity (6003).
    """
    category = record.get("category")
    reading = read_action(text(record.get("action")) or "")
    if category == "auth" or reading.verb in _AUTH_VERBS:
        return AUTHENTICATION
    about_account = (account_kind(mapping(record.get("resource")).get("type")) is not None
                     or account_in_action(reading) is not None
                     or not _CREDENTIAL_WORDS.isdisjoint(reading.words))
    if about_account and (category in _ACCOUNT_CATEGORIES or (
            category == "policy" and reading.verb in ("attach", "detach", "grant", "revoke"))):
        return ACCOUNT_CHANGE
    return API_ACTIVITY


def activity_of(class_uid: int, reading: ActionReading) -> int:
    """The activity_id of an action within its class; 99 (Other) when the verb has no
    activity there."""
    if class_uid == AUTHENTICATION:
        return _AUTH_ACTIVITIES.get(reading.verb, OTHER)
    if class_uid == ACCOUNT_CHANGE:
        return _account_activity(reading)
    return _API_ACTIVITIES.get(reading.verb, OTHER)


def _account_activity(reading: ActionReading) -> int:
    words, verb = reading.words, reading.verb
    if "mfa" in words:
        if verb in ("enable", "create", "attach"):
            return 10
        if verb in ("disable", "delete", "detach"):
            return 11
        return OTHER
    if "password" in words:
        if verb == "reset" or "reset" in words:
            return 4
        if verb in ("update", "create"):
            return 3
    if verb == "create" and ("to" in reading.rest or "from" in reading.rest):
        return OTHER  # membership (`AddUserToGroup`), not a new identity
    return _ACCOUNT_ACTIVITIES.get(verb, OTHER)


def to_ocsf(record: dict[str, Any]) -> dict[str, Any]:
    """One stored record as an OCSF 1.1.0 event (see docs/export.md)."""
    action = text(record.get("action")) or ""
    reading = read_action(action)
    class_uid = class_of(record)
    class_name, category_uid, category_name = _CLASSES[class_uid]
    activity_id = activity_of(class_uid, reading)
    activity_name = _ACTIVITY_NAMES[class_uid].get(activity_id, "Other")
    outcome = text(record.get("outcome"))
    status_id, status = _STATUSES.get(outcome or "", (0, "Unknown"))
    severity = text(record.get("severity"))
    severity_id, severity_name = _SEVERITIES.get(severity or "", (0, "Unknown"))
    actor = mapping(record.get("actor"))
    source = mapping(record.get("source"))
    resource = mapping(record.get("resource"))
    targets = [mapping(t) for t in record.get("targets") or () if isinstance(t, dict)]
    user = _user(actor)

    event: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "time": epoch_ms(record.get("time")),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": status_id,
        "status": status,
        "message": text(record.get("reason")),
        "actor": compact({
            "user": user,
            "session": compact({"uid": text(actor.get("session_id"))}),
        }),
        "src_endpoint": compact({"ip": ip_text(actor.get("ip"))}),
        "http_request": compact({"user_agent": text(actor.get("user_agent"))}),
        "api": compact({
            "operation": action,
            "service": compact({"name": text(source.get("service"))}),
            "request": compact({"uid": text(record.get("request_id"))}),
        }),
        "metadata": _metadata(record),
    }
    unmapped: dict[str, Any] = {
        "outcome": outcome,
        "category": record.get("category"),
        "severity": severity,
        "impersonator": actor.get("impersonator"),
        "ip": None if ip_text(actor.get("ip")) else text(actor.get("ip")),  # not an address
        "span_id": record.get("span_id"),
        "source": compact({k: source.get(k) for k in ("version", "environment", "region")}),
        "changes": record.get("changes"),
        "metadata": record.get("metadata"),
        "submitter": record.get("submitter"),
        "raw": record.get("raw"),
    }
    dst = compact({"hostname": text(source.get("host")), "svc_name": text(source.get("service"))})
    if class_uid == API_ACTIVITY:
        event["dst_endpoint"] = dst
        event["resources"] = [_resource(r, source) for r in (resource, *targets) if r]
    else:
        # IAM classes have a `user` instead of `resources`: the subject authenticating
        # (the actor) or the identity changed. The resource itself is kept as it was.
        unmapped["resource"], unmapped["targets"] = record.get("resource"), record.get("targets")
        if class_uid == AUTHENTICATION:
            event["user"] = user
            event["dst_endpoint"] = dst
            event["service"] = compact({"name": text(source.get("service"))})
            event["session"] = compact({"uid": text(actor.get("session_id"))})
        else:
            event["user"] = _target_user(resource, targets)
            unmapped["source"] = compact({**unmapped["source"], "host": source.get("host")})
    event["unmapped"] = compact(unmapped)
    return compact(event)


def _user(actor: dict[str, Any]) -> dict[str, Any]:
    type_id, type_name = _USER_TYPES.get(text(actor.get("type")) or "", (0, "Unknown"))
    return compact({
        "uid": text(actor.get("id")),
        "name": text(actor.get("name")),
        "email_addr": text(actor.get("email")),
        "type_id": type_id,
        "type": type_name,
    })


def _target_user(resource: dict[str, Any], targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The identity an Account Change is about: the resource if it is an identity, else
    the first target that is one, else the resource whatever it is. Empty (and so left
    out) when the record names no resource at all (CloudTrail's `CreateUser` has the new
    user's name only in `metadata.requestParameters`)."""
    chosen = next((r for r in (resource, *targets) if account_kind(r.get("type"))), resource)
    return compact({"uid": text(chosen.get("id")), "name": text(chosen.get("name")),
                    "type": text(chosen.get("type"))})


def _resource(r: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return compact({"type": text(r.get("type")), "uid": text(r.get("id")),
                    "name": text(r.get("name")), "region": text(source.get("region"))})


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    return compact({
        "uid": text(record.get("id")),
        "version": OCSF_VERSION,
        "product": {"name": "auditkeep", "vendor_name": "auditkeep", "version": __version__},
        "log_name": text(record.get("tenant")),
        "correlation_uid": text(record.get("trace_id")),
        "sequence": integer(record.get("seq")),
        "original_time": text(record.get("time")),
        "logged_time": epoch_ms(record.get("received")),
    })
