"""Small helpers every source mapping shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditkeep.errors import FieldProblem


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


def scalars(obj: Any, limit: int, max_text: int) -> dict[str, Any]:
    """The small scalar members of a free-form object, at most `limit` of them: request
    bodies are kept only this far, since whole ones can be large (the raw keeps them)."""
    if not isinstance(obj, Mapping):
        return {}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if len(out) >= limit:
            break
        if not isinstance(k, str) or not k or len(k) > 64:
            continue
        if (isinstance(v, str) and len(v) <= max_text) or isinstance(v, bool) or (
                isinstance(v, int) and -(2**53 - 1) <= v <= 2**53 - 1) or isinstance(v, float):
            out[k] = v
    return out


class Reader:
    """Typed access to a decoded object that collects a problem for each wrong type
    (every problem of the input, not the first), each named by JSON pointer under `base`."""

    __slots__ = ("base", "problems")

    def __init__(self, base: str) -> None:
        self.base = base
        self.problems: list[FieldProblem] = []

    def bad(self, at: str, expected: str, value: Any, actual: str | None = None) -> None:
        self.problems.append(FieldProblem(self.base + at, f"expected {expected}", expected,
                                          actual or type_name(value)))

    def text(self, obj: Mapping[str, Any], key: str, at: str = "") -> str | None:
        v = obj.get(key)
        if v is None or (isinstance(v, str) and v):
            return v
        if v != "":
            self.bad(f"{at}/{key}", "a string", v)
        return None

    def mapping(self, obj: Mapping[str, Any], key: str, at: str = "") -> Mapping[str, Any] | None:
        v = obj.get(key)
        if v is None or isinstance(v, Mapping):
            return v
        self.bad(f"{at}/{key}", "an object", v)
        return None
