"""Event schema v1: the typed shape every producer's event must have.

msgspec validates and decodes in one pass, so the types below *are* the validator;
the few rules msgspec cannot express (metadata depth and size, the 64 KiB limit)
live in `auditkeep.pipeline.validate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

SCHEMA_VERSION = 1

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
TENANT_PATTERN = r"^[a-z0-9-]{1,63}$"
ACTION_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_:*/-]+)*$"

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
EventId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
TenantName = Annotated[str, msgspec.Meta(pattern=TENANT_PATTERN)]
Action = Annotated[str, msgspec.Meta(pattern=ACTION_PATTERN, max_length=256)]
TraceId = Annotated[str, msgspec.Meta(pattern=r"^(?!0{32})[0-9a-f]{32}$")]
SpanId = Annotated[str, msgspec.Meta(pattern=r"^(?!0{16})[0-9a-f]{16}$")]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]

ActorType = Literal["user", "service", "system", "anonymous"]
Outcome = Literal["success", "failure", "denied", "unknown"]
Category = Literal["admin", "auth", "data_access", "data_change", "config", "system", "policy"]
Severity = Literal["info", "notice", "warning", "critical"]

#: Actor fields that enter the hashed entry only as salted commitments.
PERSONAL_ACTOR_FIELDS = ("name", "email", "ip", "user_agent")


# gc=False: decoded events cannot form reference cycles, and untracked structs are
# ~4 fewer containers an event for the cyclic GC to traverse on the ingest path.
class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    pass


class Principal(_Strict):
    id: ShortText
    type: ActorType


class Actor(_Strict):
    id: ShortText
    type: ActorType
    name: Text | None = None
    email: Text | None = None
    ip: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    user_agent: Text | None = None
    session_id: ShortText | None = None
    impersonator: Principal | None = None


class Resource(_Strict):
    type: ShortText
    id: Text
    name: Text | None = None


class Source(_Strict):
    service: ShortText | None = None
    version: ShortText | None = None
    host: ShortText | None = None
    region: ShortText | None = None
    environment: ShortText | None = None


class Change(_Strict):
    field: Text
    before: Any = None
    after: Any = None


class Redaction(_Strict):
    """What a redaction rule did to one field (never the value it removed)."""

    path: Annotated[str, msgspec.Meta(pattern=r"^(/[^/]*)+$", max_length=1024)]  # JSON pointer
    rule: ShortText
    action: Literal["drop", "mask", "hash", "commit", "redact"]


class Event(_Strict):
    """One audit event as a producer sends it (schema v1)."""

    action: Action
    actor: Actor
    outcome: Outcome
    id: EventId | None = None
    time: AwareTime | None = None
    category: Category = "data_change"
    resource: Resource | None = None
    targets: Annotated[list[Resource], msgspec.Meta(max_length=20)] | None = None
    reason: Text | None = None
    severity: Severity | None = None
    source: Source | None = None
    trace_id: TraceId | None = None
    span_id: SpanId | None = None
    request_id: ShortText | None = None
    tenant: TenantName | None = None
    changes: Annotated[list[Change], msgspec.Meta(max_length=100)] | None = None
    metadata: dict[str, Any] | None = None
    redactions: Annotated[list[Redaction], msgspec.Meta(max_length=256)] | None = None


#: Fields the server adds; a producer may not send them.
SERVER_FIELDS = ("seq", "received", "submitter", "v", "raw")
