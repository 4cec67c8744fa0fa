"""Pieces every part of the OpenAPI document uses."""

from __future__ import annotations

from typing import Any


def _q(name: str, desc: str, schema: dict[str, Any] | None = None,
       required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": desc,
            "schema": schema or {"type": "string"}}


_PROBLEM = {"description": "RFC 9457 problem", "content": {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_ERRORS = {"400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM, "404": _PROBLEM}
_TENANT = {"name": "tenant", "in": "path", "required": True,
           "description": "tenant name, or `T._access` for its access log",
           "schema": {"type": "string", "pattern": r"^[a-z0-9-]{1,63}(\._access)?$"}}
_B64 = {"type": "string", "contentEncoding": "base64"}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
