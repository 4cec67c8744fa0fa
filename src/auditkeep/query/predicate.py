"""Query AST -> a Python predicate over stored records.

For places with a record in hand and no index: live tail filters, detection rules,
tests. It sees a record exactly as the indexer does (`Doc.of` uses the same flattening
and free-text tokens) and compares values with SQLite's rules (numbers sort before
text, text by code point), so it agrees with `query.sql` row for row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditkeep.query import fields
from auditkeep.query.ast import (
    All,
    And,
    Eq,
    Exists,
    Literal_,
    Node,
    Not,
    Or,
    Range,
    Text,
    Wildcard,
)
from auditkeep.query.text import contains_phrase, tokens

Scalar = str | int | float


@dataclass(slots=True)
class Doc:
    """One record as the index holds it."""

    columns: dict[str, Any]
    attrs: dict[str, list[Scalar]]
    words: list[str]

    @classmethod
    def of(cls, rec: dict[str, Any], raw: Any = None) -> Doc:
        attrs: dict[str, list[Scalar]] = {}
        for k, v in fields.leaves(rec, raw):
            attrs.setdefault(k, []).append(v)
        return cls(fields.column_values(rec), attrs, tokens(fields.free_text(rec)))


Predicate = Callable[[Doc], bool]


def compile_predicate(node: Node) -> Predicate:
    return _compile(node)


def matches(node: Node, rec: dict[str, Any], raw: Any = None) -> bool:
    return _compile(node)(Doc.of(rec, raw))


def _compile(n: Node) -> Predicate:
    if isinstance(n, All):
        return lambda d: True
    if isinstance(n, And):
        parts = [_compile(i) for i in n.items]
        return lambda d: all(p(d) for p in parts)
    if isinstance(n, Or):
        parts = [_compile(i) for i in n.items]
        return lambda d: any(p(d) for p in parts)
    if isinstance(n, Not):
        inner = _compile(n.item)
        return lambda d: not inner(d)
    if isinstance(n, Text):
        phrase, prefix = tokens(n.text), n.prefix
        return lambda d: contains_phrase(d.words, phrase, prefix)
    if isinstance(n, Exists):
        return _exists(n.field)
    test = _value_test(n, fields.COLUMNS.get(n.field))
    path = n.field
    if path in fields.COLUMNS:
        def on_column(d: Doc) -> bool:
            v = d.columns[path]
            return v is not None and test(v)
        return on_column
    return lambda d: any(test(v) for v in d.attrs.get(path, ()))


def _value_test(n: Eq | Wildcard | Range, col: fields.Column | None) -> Callable[[Scalar], bool]:
    if isinstance(n, Eq):
        if col is not None and col.kind != "text":
            num = n.value.number
            return lambda v: v == num
        text, num = n.value.text, n.value.number
        if col is None and num is not None:
            return lambda v: (v == num) if _is_num(v) else v == text
        return lambda v: isinstance(v, str) and v == text
    if isinstance(n, Wildcard):
        rx = wildcard_regex(n.pattern)
        return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None
    bound = n.lo if n.lo is not None else n.hi
    numeric = (col.kind != "text") if col is not None else \
        (bound is not None and bound.number is not None)
    lo, hi = _key(n.lo, numeric), _key(n.hi, numeric)
    lo_in, hi_in = n.lo_inclusive, n.hi_inclusive

    def in_range(v: Scalar) -> bool:
        k = fields.sqlite_order(v)
        if lo is not None and (k < lo or (k == lo and not lo_in)):
            return False
        if hi is not None and (k > hi or (k == hi and not hi_in)):
            return False
        return _is_num(v) == numeric  # the other type is bounded out, as in SQL
    return in_range


def _exists(path: str) -> Predicate:
    cols = [p for p in fields.COLUMNS if p == path or p.startswith(path + ".")]
    below = path + "."

    def test(d: Doc) -> bool:
        if any(d.columns[p] is not None for p in cols):
            return True
        return any(k == path or k.startswith(below) for k in d.attrs)
    return test


def _is_num(v: Scalar) -> bool:
    return not isinstance(v, str)


def _key(bound: Literal_ | None, numeric: bool) -> tuple[int, Any] | None:
    if bound is None:
        return None
    return fields.sqlite_order(bound.number if numeric else bound.text)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)
