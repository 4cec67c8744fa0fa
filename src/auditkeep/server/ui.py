"""The web UI: its pages and static files, served without a token (every API call the
browser then makes sends one), under a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"

#: Paths the browser-side router draws; each is answered with index.html.
PAGES = ("/", "/signin", "/search", "/events/{id}", "/dashboards", "/dashboards/{name}")

#: No inline script or style, nothing from another origin, no framing. The UI's own
#: modules are the only code that runs, and the API is the only thing they talk to.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # File names carry no version, so browsers revalidate (ETag / Last-Modified, a 304
    # when unchanged) and an upgraded server never runs against stale modules.
    "Cache-Control": "no-cache",
}

_files = StaticFiles(directory=STATIC_DIR, check_dir=False)


async def _serve(path: str, request: Request) -> Response:
    response = await _files.get_response(path, request.scope)
    response.headers.update(SECURITY_HEADERS)
    return response


async def page(request: Request) -> Response:
    """index.html: the browser-side router draws the page the path names."""
    return await _serve("index.html", request)


async def static(request: Request) -> Response:
    return await _serve(request.path_params["path"], request)


class UIRoutes(BaseRoute):
    """Every path of the web UI as one route: the pages and `/static/...`, GET and HEAD.

    They are not part of the HTTP API, so the OpenAPI document leaves them out:
    `include_in_schema` is false and `methods`, the API operations a route offers, is
    empty (tests/server/test_openapi.py checks every route's `path` and `methods`).
    """

    path = "/"
    methods: frozenset[str] = frozenset()
    include_in_schema = False

    def __init__(self) -> None:
        self.routes = [*(Route(p, page, methods=["GET"]) for p in PAGES),
                       Route("/static/{path:path}", static, methods=["GET"])]

    def _match(self, scope: Scope) -> tuple[Match, Scope, Route | None]:
        partial: tuple[Match, Scope, Route | None] = (Match.NONE, {}, None)
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, child, route
            if match is Match.PARTIAL and partial[2] is None:
                partial = (match, child, route)  # right path, wrong method: a 405
        return partial

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child, _ = self._match(scope)
        return match, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, _, route = self._match(scope)
        if route is not None:
            await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


def ui_routes() -> list[BaseRoute]:
    """The UI's routes; put them after the API's, which they never shadow."""
    return [UIRoutes()]
