"""`AuditKeep`: a Flask extension binding the audit context for each request, and optionally
recording every mutating request.

    audit = AuditKeep(actor_resolver=lambda request: session.get("user_id"))
    audit.init_app(app)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flask

from auditkeep import context
from auditkeep.integrations._client import AuditEmitter, resolve_client
from auditkeep.integrations._http import MUTATING_METHODS, mutation_event, request_context

__all__ = ["AuditKeep"]

ActorResolver = Callable[[flask.Request], "dict[str, Any] | str | None"]
ActionResolver = Callable[[flask.Request], str]

# On `flask.g`: one entry per request being served, innermost last. A stack, not one slot,
# because an app context pushed by the caller (tests, CLI) is shared by every request made
# inside it, and a request can be made while serving another.
_G_KEY = "_auditkeep_requests"


class _Served:
    """What teardown needs of a request that `before_request` bound."""

    __slots__ = ("environ", "status", "token")

    def __init__(self, environ: Mapping[str, Any], token: context.Token[Mapping[str, Any]]
                 ) -> None:
        self.environ = environ  # the WSGI environ: one object per request, unlike the proxy
        self.token = token
        self.status: int | None = None


def _http_action(request: flask.Request) -> str:
    return f"http.{request.method.lower()}"


class AuditKeep:
    """Binds `actor`, `request_id`, `trace_id` and `span_id` from before the first
    `before_request` hook to teardown; with `record_mutations=True` also emits one event
    per POST/PUT/PATCH/DELETE at teardown, when the outcome is known.

    `actor_resolver(request)` runs first among the `before_request` hooks, so it must
    authenticate by itself or read something lazy (Flask-Login's `current_user` is)."""

    __slots__ = ("_action_resolver", "_actor_resolver", "_client", "_record_mutations")

    def __init__(self, app: flask.Flask | None = None, *,
                 actor_resolver: ActorResolver | None = None,
                 client: AuditEmitter | None = None, record_mutations: bool = False,
                 action_resolver: ActionResolver | None = None) -> None:
        self._actor_resolver = actor_resolver
        self._action_resolver = action_resolver or _http_action
        self._record_mutations = record_mutations
        self._client = client
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Install the hooks on `app`. The client is looked up here, not at construction,
        so that an app factory can set the default client before calling it."""
        if self._record_mutations:
            self._client = resolve_client(self._client, "AuditKeep(record_mutations=True)")
        app.extensions["auditkeep"] = self
        # First, so that the app's own before_request hooks already see the context.
        app.before_request_funcs.setdefault(None, []).insert(0, self._bind)
        app.after_request(self._note_status)
        app.teardown_request(self._finish)

    def _bind(self) -> None:
        request = flask.request
        fields: dict[str, Any] = request_context(request.headers.get("X-Request-Id"),
                                                 request.headers.get("traceparent"))
        if self._actor_resolver is not None:
            fields["actor"] = self._actor_resolver(request)
        served = _Served(request.environ, context.bind(**fields))
        flask.g.setdefault(_G_KEY, []).append(served)

    def _note_status(self, response: flask.Response) -> flask.Response:
        served = self._current()
        if served is not None:
            served.status = response.status_code
        return response

    def _finish(self, exc: BaseException | None) -> None:
        served = self._current()
        if served is None:  # _bind never ran: an earlier hook (url processor) failed
            return
        flask.g.get(_G_KEY).pop()
        try:
            request = flask.request
            if (self._record_mutations and self._client is not None
                    and request.method in MUTATING_METHODS):
                self._client.emit(**mutation_event(
                    action=self._action_resolver(request), method=request.method,
                    path=request.path, status=served.status, raised=exc is not None,
                    actor=context.current().get("actor")))
        finally:
            context.reset(served.token)

    @staticmethod
    def _current() -> _Served | None:
        """This request's entry, if `_bind` ran for it; never another request's."""
        stack: list[_Served] | None = flask.g.get(_G_KEY)
        if not stack or stack[-1].environ is not flask.request.environ:
            return None
        return stack[-1]
