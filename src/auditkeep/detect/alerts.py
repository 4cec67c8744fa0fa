"""An alert: one rule firing for one group, with links to the events that made it.

Stored as an `AlertRecord` (its JSON in `body`) and appended to the tenant's log as an
event of category `policy` (action `auditkeep.alert.fired`), so the record of what was
detected is as tamper-evident as what it was detected in. Ids are derived from the rule,
group and triggering event, so a pass that is repeated after a crash writes the same
alert again rather than a second one.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditkeep.storage.base import AlertRecord

MAX_LINKS = 100  # event links kept per alert; `count` goes on counting past it
ALERT_ACTION = "auditkeep.alert.fired"
ENGINE_ACTOR = "auditkeep-detect"  # actor and submitter of alert records


@dataclass(slots=True)
class Alert:
    id: str
    tenant: str
    rule: str
    title: str
    level: str
    dedup_key: str
    created: str  # when the engine stored it (RFC 3339 UTC, Z)
    updated: str
    first_time: str  # event time of the first / last event folded in
    last_time: str
    count: int = 1  # matching events (or firings, once grouped) folded in
    tags: list[str] = field(default_factory=list)
    group: dict[str, Any] = field(default_factory=dict)  # group-by field -> value
    events: list[dict[str, Any]] = field(default_factory=list)  # {"log", "seq", "id"}
    status: str = "open"  # "open" | "acked"
    acked_by: str | None = None
    acked_at: str | None = None
    suppressed_by: str | None = None  # the suppression window that held its delivery
    severity: str = ""  # the level mapped for sinks (PagerDuty: info|warning|error|critical)
    routes: list[str] = field(default_factory=list)  # sinks it was routed to
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific: silence, gap
    origin: str = "native"  # "native" | "sigma"
    logged_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Alert:
        known = set(cls.__slots__)
        return cls(**{k: v for k, v in body.items() if k in known})

    def record(self) -> AlertRecord:
        return AlertRecord(self.id, self.tenant, self.rule, self.level, self.status,
                           self.dedup_key, self.created, self.updated,
                           orjson.dumps(self.to_json()).decode(), self.logged_seq)

    @classmethod
    def of(cls, rec: AlertRecord) -> Alert:
        a = cls.from_json(orjson.loads(rec.body))
        a.logged_seq = rec.logged_seq
        a.status = rec.status
        return a

    def link(self, log: str, seq: int, event_id: str) -> None:
        if len(self.events) < MAX_LINKS:
            self.events.append({"log": log, "seq": seq, "id": event_id})


def dedup_key(rule: str, group: dict[str, Any]) -> str:
    """The noise-control key: one rule and one group."""
    return rule + "|" + orjson.dumps(group, option=orjson.OPT_SORT_KEYS).decode()


def alert_id(tenant: str, key: str, trigger: str) -> str:
    """A UUID (version 8, RFC 9562) from the tenant, dedup key and triggering event or
    time: the same firing always has the same id."""
    digest = bytearray(hashlib.sha256(f"{tenant}\0{key}\0{trigger}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


SUMMARY = ("id", "rule", "title", "level", "severity", "status", "count", "created",
           "updated", "first_time", "last_time", "group", "suppressed_by", "origin")


def alert_summary(a: Alert) -> dict[str, Any]:
    """The fields lists show (the API's and CLI's alert rows)."""
    return {k: getattr(a, k) for k in SUMMARY}
