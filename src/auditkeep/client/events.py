"""Turning `emit(...)` arguments into one schema v1 event, checked as the server would."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep import context
from auditkeep.errors import EventError, ValidationError
from auditkeep.pipeline.prepare import uuid7_strings
from auditkeep.pipeline.validate import decode_events

_FROM_CONTEXT = ("tenant", "request_id", "trace_id", "span_id")


def build_event(action: str, actor: Any, outcome: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The event `emit` records: the arguments, then the bound context, then an id
    (UUIDv7) and the time of the call, so retries are deduplicated by the server and
    events keep the order in which they were emitted."""
    ev: dict[str, Any] = {"action": action, "outcome": outcome, **fields}
    bound = context.current()
    if actor is None:
        actor = bound.get("actor")
        if actor is None:
            raise EventError("an event needs an actor: pass actor=... or bind one with "
                             "auditkeep.context.bind(actor=...)")
    ev["actor"] = context.actor_of(actor)
    for name in _FROM_CONTEXT:
        if name not in ev and name in bound:
            ev[name] = bound[name]
    resource = ev.get("resource")
    if isinstance(resource, tuple):
        ev["resource"] = resource_of(resource)
    if "targets" in ev:
        ev["targets"] = [resource_of(t) if isinstance(t, tuple) else t for t in ev["targets"]]
    if "id" not in ev:
        ev["id"] = uuid7_strings(1)[0]
    if "time" not in ev:
        ev["time"] = now()
    return ev


def resource_of(value: tuple[Any, ...] | Mapping[str, Any]) -> dict[str, Any]:
    """`("order", 42)` or `("order", 42, "Order #42")` as a resource object."""
    if isinstance(value, Mapping):
        return dict(value)
    keys = ("type", "id", "name")
    if not 2 <= len(value) <= 3:
        raise EventError(f"a resource tuple is (type, id[, name]), got {value!r}")
    return {k: str(v) for k, v in zip(keys, value, strict=False)}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event's JSON, after the checks the server makes on one event (so a batch is
    not refused for it later); raises EventError naming every bad field."""
    try:
        payload = orjson.dumps(event)
    except TypeError as exc:
        raise EventError(f"the event is not JSON: {exc}") from None
    try:
        decode_events(payload, ndjson=False)
    except ValidationError as exc:
        detail = "; ".join(f"{p.pointer or '/'}: {p.detail}"
                           + (f" (expected {p.expected}, got {p.actual})" if p.expected else "")
                           for p in exc.problems) or exc.detail
        raise EventError(f"invalid audit event: {detail}", problems=exc.problems) from None
    return payload
