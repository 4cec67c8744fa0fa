"""The web UI: its pages and static files, served without a token (every API call the
browser then makes sends one), under a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"

#: Paths the browser-side router draws; each is answered with index.html.
PAGES = ("/", "/signin", "/search", "/events/{id}", "/dashboards", "/dashboards/{name}",
         "/alerts", "/alerts/{id}")

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


def ui_routes() -> list[BaseRoute]:
    """The UI's pages and `/static/...` (GET and HEAD). They are not part of the HTTP API,
    so the OpenAPI document leaves them out; put them after the API's routes."""
    return [*(Route(p, page, methods=["GET"], include_in_schema=False) for p in PAGES),
            Route("/static/{path:path}", static, methods=["GET"], include_in_schema=False)]
