"""Turn validated events into what the sequencer appends: normalised fields, personal
values split off behind salted commitments, and the content digest used for idempotency.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from auditkeep.errors import FieldProblem, ForbiddenError, PayloadTooLarge, ValidationError
from auditkeep.log.canonical import CanonicalizationError, canonical_bytes
from auditkeep.pipeline.schema import PERSONAL_ACTOR_FIELDS, SCHEMA_VERSION, Event
from auditkeep.pipeline.validate import MAX_EVENT_BYTES, check_free_form

SALT_BYTES = 16


@dataclass(slots=True)
class Pending:
    """One event ready to be sequenced: everything but its `seq`."""

    id: str
    explicit_id: bool
    fields: dict[str, Any]
    digest: bytes
    personal: dict[str, list[str]] | None


def format_time(dt: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`: the one timestamp form we store."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def now_utc() -> str:
    return format_time(datetime.now(UTC))


def uuid7_strings(n: int) -> list[str]:
    """`n` UUIDv7 strings (RFC 9562): 48-bit Unix ms, then random bits."""
    ms = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    rnd = os.urandom(10 * n)
    out = []
    for i in range(n):
        b = bytearray(ms + rnd[10 * i : 10 * i + 10])
        b[6] = 0x70 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        out.append(str(uuid.UUID(bytes=bytes(b))))
    return out


def commitment(salt: bytes, value: Any) -> str:
    """hex(SHA-256(salt ‖ JCS(value))): hides a personal value, binds the entry to it."""
    return hashlib.sha256(salt + canonical_bytes(value)).hexdigest()


def prepare(
    events: list[Event],
    *,
    tenant: str,
    submitter: str,
    may_set_tenant: bool,
    single: bool = False,
) -> list[Pending]:
    """Normalise a request's events for `tenant`; raise with every problem found.

    `single`: the body was one JSON object, so pointers start at the event itself."""
    received = now_utc()
    problems: list[FieldProblem] = []
    missing_ids = sum(1 for e in events if e.id is None)
    new_ids = iter(uuid7_strings(missing_ids)) if missing_ids else iter(())
    salts = os.urandom(SALT_BYTES * len(PERSONAL_ACTOR_FIELDS) * len(events))
    out: list[Pending] = []
    for i, ev in enumerate(events):
        at = "" if single else f"/{i}"
        if ev.tenant is not None and ev.tenant != tenant:
            if not may_set_tenant:
                raise ForbiddenError(
                    f"event {i} names tenant {ev.tenant!r}; only an admin token may set `tenant`",
                    problems=[FieldProblem(f"{at}/tenant", "tenant not allowed for this token",
                                           "an admin token", "a tenant-bound token", index=i)],
                )
            problems.append(FieldProblem(
                f"{at}/tenant", "all events of one request must go to one tenant",
                tenant, ev.tenant, index=i))
            continue
        if ev.metadata is not None:
            problems.extend(_at(check_free_form(ev.metadata, f"{at}/metadata"), i))
        if ev.changes:
            for j, ch in enumerate(ev.changes):
                for name in ("before", "after"):
                    problems.extend(_at(check_free_form(
                        getattr(ch, name), f"{at}/changes/{j}/{name}"), i))
        submitted: dict[str, Any] = msgspec.to_builtins(ev)
        if ev.time is not None:
            submitted["time"] = format_time(ev.time)
        try:
            raw = canonical_bytes(submitted)
        except CanonicalizationError as exc:
            problems.append(FieldProblem(at or "/", str(exc), index=i))
            continue
        if len(raw) > MAX_EVENT_BYTES:
            problems.append(FieldProblem(
                at or "/", "event too large", f"<= {MAX_EVENT_BYTES} canonical bytes",
                f"{len(raw)} bytes", index=i))
            continue
        fields = submitted
        explicit = ev.id is not None
        event_id = ev.id if ev.id is not None else next(new_ids)
        fields["id"] = event_id
        fields["time"] = submitted.get("time", received)
        fields["category"] = ev.category
        fields["tenant"] = tenant
        fields["received"] = received
        fields["submitter"] = submitter
        fields["v"] = SCHEMA_VERSION
        personal = _commit_personal(fields["actor"], salts, i)
        out.append(Pending(event_id, explicit, fields, hashlib.sha256(raw).digest(), personal))
    if problems:
        first = problems[0]
        if all(p.detail == "event too large" for p in problems):
            raise PayloadTooLarge(f"event {first.index} is over {MAX_EVENT_BYTES} bytes",
                                  problems=problems)
        raise ValidationError(f"{len(problems)} problem(s) in the request", problems=problems)
    return out


def _commit_personal(actor: dict[str, Any], salts: bytes, i: int) -> dict[str, list[str]] | None:
    personal: dict[str, list[str]] | None = None
    base = i * SALT_BYTES * len(PERSONAL_ACTOR_FIELDS)
    for k, name in enumerate(PERSONAL_ACTOR_FIELDS):
        value = actor.get(name)
        if value is None:
            continue
        salt = salts[base + k * SALT_BYTES : base + (k + 1) * SALT_BYTES]
        actor[name] = {"$c": commitment(salt, value)}
        if personal is None:
            personal = {}
        personal[f"actor.{name}"] = [salt.hex(), value]
    return personal


def _at(problems: Any, index: int) -> list[FieldProblem]:
    return [FieldProblem(p.pointer, p.detail, p.expected, p.actual, index) for p in problems]
