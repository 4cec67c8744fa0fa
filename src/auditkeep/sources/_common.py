"""Small helpers every source mapping shares."""

from __future__ import annotations

from typing import Any


def clip(value: str, limit: int, where: str, truncated: list[str]) -> str:
    """`value` cut to `limit` characters; a cut is recorded in `truncated` as `where`."""
    if len(value) <= limit:
        return value
    truncated.append(where)
    return value[:limit]


def type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for "expected X, got Y" problems."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {str: "str", int: "int", float: "float", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)
