"""`AuditContextMiddleware`: binds the audit context around each Django request, in sync
and async deployments alike. Place it after `AuthenticationMiddleware`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from auditkeep import context
from auditkeep.integrations._http import request_context

__all__ = ["AuditContextMiddleware", "actor_of_user"]


def actor_of_user(user: Any) -> dict[str, Any] | None:
    """The actor for `request.user`: None for an anonymous user (no actor is bound, so
    events name their own or fall back), else the user's primary key and username."""
    if user is None or not user.is_authenticated:
        return None
    return {"id": str(user.pk), "type": "user", "name": str(user.get_username())}


class AuditContextMiddleware:
    """Binds `actor`, `request_id`, `trace_id` and `span_id` while the view runs, so model
    changes and explicit `emit` calls made for the request carry them.

    No `__slots__`: Django marks an async-capable middleware instance as a coroutine
    function by setting an attribute on it (`markcoroutinefunction`)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        token = context.bind(**_fields(request, actor_of_user(getattr(request, "user", None))))
        try:
            return self.get_response(request)
        finally:
            context.reset(token)

    async def _acall(self, request: Any) -> Any:
        # request.user would query the database from the event loop, which Django forbids.
        auser: Callable[[], Awaitable[Any]] | None = getattr(request, "auser", None)
        user = await auser() if auser is not None else None
        token = context.bind(**_fields(request, actor_of_user(user)))
        try:
            return await self.get_response(request)
        finally:
            context.reset(token)


def _fields(request: Any, actor: dict[str, Any] | None) -> dict[str, Any]:
    fields: dict[str, Any] = request_context(request.headers.get("X-Request-Id"),
                                             request.headers.get("traceparent"))
    if actor is not None:
        fields["actor"] = actor
    return fields
