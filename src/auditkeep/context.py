"""Who is acting and in which request, carried by `contextvars` to every `emit`.

Middleware binds the actor, tenant, request id and trace id once per request; every event
emitted inside that request picks them up unless it names its own. When OpenTelemetry is
installed, the current span's trace and span ids are used where none is bound.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

__all__ = ["FIELDS", "Token", "actor_of", "bind", "bound", "current", "otel_ids", "reset",
           "scope"]

#: The fields a context may carry, as named in schema v1.
FIELDS = ("actor", "tenant", "request_id", "trace_id", "span_id")

_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "auditkeep_context", default=MappingProxyType({}))

Token = contextvars.Token


def actor_of(value: Any) -> dict[str, Any]:
    """An actor object from a mapping or a bare id (taken as a user). A dict is returned
    as it is, not copied."""
    if type(value) is dict:  # the common case first: ABC checks cost ~0.5 µs
        return value
    if isinstance(value, str):
        return {"id": value, "type": "user"}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"actor must be an id string or a mapping, got {type(value).__name__}")


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add fields to the current context (on top of what is bound); undo with `reset`.
    A value of None removes that field."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown context field(s) {sorted(unknown)}; expected {FIELDS}")
    if fields.get("actor") is not None:
        fields["actor"] = actor_of(fields["actor"])
    merged = {**_bound.get(), **fields}
    return _bound.set(MappingProxyType({k: v for k, v in merged.items() if v is not None}))


def reset(token: Token[Mapping[str, Any]]) -> None:
    _bound.reset(token)


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """`with scope(actor="alice", request_id="r1"): ...` binds fields for the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


def current() -> dict[str, Any]:
    """The bound fields, with OpenTelemetry's current trace/span ids where none is bound."""
    out = dict(_bound.get())
    if "trace_id" not in out:
        out.update(otel_ids())
    return out


def bound() -> Mapping[str, Any]:
    """The bound fields only, read-only and without a copy (the SDK's hot path)."""
    return _bound.get()


def otel_ids() -> dict[str, str]:
    """OpenTelemetry's current trace and span ids, when it is installed and a span is on."""
    if _otel_trace is None:
        return {}
    ctx = _otel_trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


_otel_trace: Any
try:  # OpenTelemetry is optional: `pip install auditkeep[otel]`
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on the environment
    _otel_trace = None
