"""`AuditContextMiddleware`: a pure ASGI middleware (Starlette, FastAPI, any ASGI app) that
binds the audit context for each HTTP request and can record every mutating request.

    app = Starlette(routes=..., middleware=[
        Middleware(AuditContextMiddleware, actor_resolver=user_of, record_mutations=True)])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from auditkeep import context
from auditkeep.integrations._client import AuditEmitter, resolve_client
from auditkeep.integrations._http import MUTATING_METHODS, mutation_event, request_context

__all__ = ["AuditContextMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ActorResolver = Callable[[Scope], "dict[str, Any] | str | None"]
ActionResolver = Callable[[Scope], str]


def _http_action(scope: Scope) -> str:
    return f"http.{scope['method'].lower()}"


class AuditContextMiddleware:
    """Binds `actor`, `request_id`, `trace_id` and `span_id` around each HTTP request, so
    every `emit` made while serving it carries them; with `record_mutations=True` also
    emits one event per POST/PUT/PATCH/DELETE once the app has answered.

    The actor is resolved once, before the app runs: place this middleware inside (after)
    whatever authenticates the request if `actor_resolver` reads what that puts in the scope.
    `action_resolver(scope)` runs after the app, when routing has filled the scope in.
    Neither body is touched: `receive` is passed through and `send` is only watched for the
    status, so streaming requests and responses stream as before.
    """

    __slots__ = ("_action_resolver", "_actor_resolver", "_client", "app")

    def __init__(self, app: ASGIApp, *, actor_resolver: ActorResolver | None = None,
                 client: AuditEmitter | None = None, record_mutations: bool = False,
                 action_resolver: ActionResolver | None = None) -> None:
        self.app = app
        self._actor_resolver = actor_resolver
        self._action_resolver = action_resolver or _http_action
        self._client = (resolve_client(client, "AuditContextMiddleware(record_mutations=True)")
                        if record_mutations else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets carry no request to audit
            await self.app(scope, receive, send)
            return
        fields: dict[str, Any] = request_context(_header(scope, b"x-request-id"),
                                                 _header(scope, b"traceparent"))
        if self._actor_resolver is not None:
            fields["actor"] = self._actor_resolver(scope)
        token = context.bind(**fields)
        try:
            if self._client is None or scope["method"] not in MUTATING_METHODS:
                await self.app(scope, receive, send)
            else:
                await self._recorded(self._client, scope, receive, send)
        finally:
            context.reset(token)

    async def _recorded(self, client: AuditEmitter, scope: Scope, receive: Receive,
                        send: Send) -> None:
        # Read now: routers below may rewrite the scope they are handed.
        method, path = scope["method"], scope["path"]
        status: int | None = None

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        def event(raised: bool) -> dict[str, Any]:
            # The action is resolved after the app ran, so the scope holds what routing
            # added (Starlette's "route" and "endpoint").
            return mutation_event(action=self._action_resolver(scope), method=method,
                                  path=path, status=status, raised=raised,
                                  actor=context.current().get("actor"))

        try:
            await self.app(scope, receive, watched_send)
        except BaseException:
            # The change may or may not have happened: record that we cannot tell, then let
            # the server see the exception as if we were not here.
            client.emit(**event(raised=True))
            raise
        client.emit(**event(raised=False))


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header (ASGI gives lower-case names, latin-1 values)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
