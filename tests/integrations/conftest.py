"""A recording stand-in for `AuditClient`: integrations only ever call `emit`, so the tests
check what reaches it, merged with the bound context and checked against schema v1 as the
real client would."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import orjson
import pytest

from auditkeep import context
from auditkeep.errors import EventError, ValidationError
from auditkeep.pipeline.validate import decode_events

# Starlette's TestClient asks for httpx2 and warns when it falls back to httpx, which the
# project already depends on; the fallback works, so only that one warning is let through.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

__all__ = ["RecordingClient", "TestClient"]

_FROM_CONTEXT = ("tenant", "request_id", "trace_id", "span_id")


class RecordingClient:
    """`emit(**fields) -> str` that keeps each event, refusing what the server would."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, action: str, actor: Any = None, outcome: str = "success",
             **fields: Any) -> str:
        bound = context.current()
        actor = actor if actor is not None else bound.get("actor")
        if actor is None:
            raise EventError("an event needs an actor")
        event: dict[str, Any] = {"action": action, "outcome": outcome, **fields,
                                 "actor": context.actor_of(actor), "id": uuid.uuid4().hex}
        for name in _FROM_CONTEXT:
            if name not in event and name in bound:
                event[name] = bound[name]
        try:
            decode_events(orjson.dumps(event), ndjson=False)
        except (TypeError, ValidationError) as exc:
            raise EventError(f"invalid audit event: {exc}") from None
        self.events.append(event)
        return str(event["id"])

    def actions(self) -> list[str]:
        return [e["action"] for e in self.events]


@pytest.fixture
def recorder() -> RecordingClient:
    return RecordingClient()
