"""What an HTTP request contributes to audit events, whatever the framework: the context
fields read from its headers, and the event that records a mutating request."""

from __future__ import annotations

import re
import uuid
from types import MappingProxyType
from typing import Any

__all__ = ["ANONYMOUS", "MUTATING_METHODS", "mutation_event", "outcome_of", "parse_traceparent",
           "request_context"]

#: Methods whose requests change state and are recorded when `record_mutations` is on.
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The actor of an event recorded while no actor is bound: schema v1 requires one, and an
#: unauthenticated caller is what "nobody bound" means in a web request.
ANONYMOUS: MappingProxyType[str, str] = MappingProxyType({"id": "anonymous", "type": "anonymous"})

# W3C Trace Context level 1, section 3.2: version-traceid-parentid-flags. A later version may
# append fields after the flags, so only version 00 must end there.
_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-[0-9a-f]{2}"
    r"(?P<rest>-.*)?$")
# schema v1 allows 1-256 characters; control characters would only reach the log to confuse
# whoever reads it, so such a header is replaced rather than recorded.
_REQUEST_ID = re.compile(r"^[\x20-\x7e]{1,256}$")
_MAX_RESOURCE_ID = 1024  # schema v1's limit on resource.id


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace_id, span_id) from a `traceparent` header, or None when it is absent or invalid
    (the spec says to ignore an invalid one, not to reject the request)."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip())
    if m is None or m["version"] == "ff" or (m["version"] == "00" and m["rest"]):
        return None
    if m["trace"] == "0" * 32 or m["span"] == "0" * 16:
        return None
    return m["trace"], m["span"]


def request_context(request_id: str | None, traceparent: str | None) -> dict[str, str]:
    """The context fields of a request: its `X-Request-Id` when usable, else a fresh id (so
    every event of the request can be found together), and the caller's trace ids."""
    rid = request_id.strip() if request_id else ""
    fields = {"request_id": rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex}
    ids = parse_traceparent(traceparent)
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


def outcome_of(status: int | None, raised: bool) -> str:
    """Schema v1's outcome for a response: an exception leaves the result unknown (the
    change may or may not have been made), 401/403 are refusals, other errors failures."""
    if raised or status is None:
        return "unknown"
    if status in (401, 403):
        return "denied"
    return "success" if status < 400 else "failure"


def mutation_event(*, action: str, method: str, path: str, status: int | None, raised: bool,
                   actor: Any) -> dict[str, Any]:
    """The `emit` arguments recording one mutating request."""
    return {
        "action": action,
        "actor": actor if actor is not None else dict(ANONYMOUS),
        "outcome": outcome_of(status, raised),
        "category": "data_change",
        "resource": {"type": "http_route", "id": (path or "/")[:_MAX_RESOURCE_ID]},
        "metadata": {"method": method, "path": path, "status": status},
    }
