"""`@audited(...)` and `with audit_action(...)`: one event for one action, whatever happens.

Success is recorded when the block returns, failure (with the exception type as `reason`)
when it raises; `PermissionError` counts as `denied`. The exception always propagates.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from auditkeep.client.core import AuditClient, get_default_client
from auditkeep.client.events import resource_of

F = TypeVar("F", bound=Callable[..., Any])
ResourceSpec = tuple[Any, ...] | dict[str, Any] | Callable[..., Any] | None


@dataclass(slots=True)
class AuditAction:
    """The event being built inside `audit_action`; set fields on it before the block ends."""

    action: str
    fields: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None  # None: success, or failure/denied from an exception

    def set(self, **fields: Any) -> None:
        self.fields.update(fields)


@contextmanager
def audit_action(action: str, *, resource: Any = None, client: AuditClient | None = None,
                 **fields: Any) -> Iterator[AuditAction]:
    """`with audit_action("orders.refund", resource=("order", oid)) as a: ...`"""
    act = AuditAction(action, dict(fields))
    if resource is not None:
        act.fields["resource"] = resource
    try:
        yield act
    except BaseException as exc:
        _record(client, act, exc)
        raise
    _record(client, act, None)


def audited(action: str, *, resource: ResourceSpec = None, client: AuditClient | None = None,
            **fields: Any) -> Callable[[F], F]:
    """Record each call of the decorated function (sync or async) as `action`.

    `resource` is a (type, id[, name]) tuple, a resource dict, or a callable given the
    call's arguments by name: `resource=lambda order_id, **_: ("order", order_id)`."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AuditAction:
            act = AuditAction(action, dict(fields))
            if callable(resource):
                bound = sig.bind_partial(*args, **kwargs)
                bound.apply_defaults()
                act.fields["resource"] = resource(**bound.arguments)
            elif resource is not None:
                act.fields["resource"] = resource
            return act

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                act = start(args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    _record(client, act, exc)
                    raise
                _record(client, act, None)
                return result
            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            act = start(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                _record(client, act, exc)
                raise
            _record(client, act, None)
            return result
        return cast(F, run)

    return decorate


def _record(client: AuditClient | None, act: AuditAction, exc: BaseException | None) -> None:
    target = client or get_default_client()
    if target is None:
        raise RuntimeError("no audit client: pass client=... or call "
                           "auditkeep.client.configure(url, token) first")
    out = dict(act.fields)
    resource = out.get("resource")
    if resource is not None and not isinstance(resource, dict):
        out["resource"] = resource_of(resource)
    outcome = act.outcome
    if exc is not None:
        outcome = outcome or ("denied" if isinstance(exc, PermissionError) else "failure")
        out.setdefault("reason", type(exc).__qualname__)
    target.emit(act.action, outcome=outcome or "success", **out)
