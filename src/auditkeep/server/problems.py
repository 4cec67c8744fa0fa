"""RFC 9457 problem+json: every error the API returns, with each bad field by JSON pointer."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.errors import AuditkeepError, FieldProblem, Pushback, StorageFull

PROBLEM_TYPE = "urn:auditkeep:problem:"
MEDIA_TYPE = "application/problem+json"


def problem(status: int, slug: str, title: str, detail: str, instance: str,
            problems: list[FieldProblem] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_TYPE + slug, "title": title, "status": status,
                            "detail": detail, "instance": instance}
    if problems:
        body["errors"] = [p.to_json() for p in problems]
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE,
                    headers=headers)


def from_error(request: Request, exc: AuditkeepError) -> Response:
    headers = None
    if isinstance(exc, (Pushback, StorageFull)):
        headers = {"Retry-After": str(exc.retry_after)}
    elif exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="auditkeep"'}
    return problem(exc.status, exc.slug, exc.title, exc.detail, request.url.path,
                   exc.problems, headers)


async def handle_auditkeep_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AuditkeepError):  # pragma: no cover - registered for that type only
        raise exc
    return from_error(request, exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
    return problem(exc.status_code, slug, str(exc.detail), f"{request.method} "
                   f"{request.url.path}: {exc.detail}", request.url.path)
