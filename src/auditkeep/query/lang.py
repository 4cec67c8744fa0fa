"""The query language: a Lucene/KQL-shaped grammar parsed by Lark into `query.ast`.

    alice action:iam.* AND outcome:(failure OR denied)
    time:[2026-11-01 TO 2026-11-02] metadata.amount:>1000 -actor.type:service
    _exists_:actor.impersonator "disk full" raw.verb:delete

See docs/query.md for the whole language. `parse()` returns a checked tree: every
field is a real schema v1 path, times are microseconds, and a mistake raises a
`ValidationError` whose problem names the column and what was expected there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.exceptions import VisitError

from auditkeep.errors import FieldProblem, ValidationError
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
from auditkeep.query.text import tokens

GRAMMAR = r"""
start: expr?

?expr: and_expr
     | expr _OR and_expr            -> or_
?and_expr: unary
         | and_expr _AND? unary     -> and_
?unary: _NOT unary                  -> not_
      | MINUS unary                 -> not_
      | atom
?atom: "(" expr ")"
     | FIELD value                  -> field
     | WORD                         -> word
     | PHRASE                       -> phrase

?value: VALUE                       -> v_value
      | PHRASE                      -> v_phrase
      | CMP bound                   -> v_compare
      | OPEN bound _TO bound CLOSE  -> v_range
      | "(" alternative (_OR? alternative)* ")" -> v_group
?alternative: VALUE                 -> v_value
            | PHRASE                -> v_phrase
?bound: VALUE | PHRASE

_AND.3: /AND(?![^\s()"\[\]{}:])/
_OR.3: /OR(?![^\s()"\[\]{}:])/
_NOT.3: /NOT(?![^\s()"\[\]{}:])/
_TO.3: /TO(?![^\s()"\[\]{}])/
CMP.2: />=|<=|>|</
MINUS: /-(?=[^\s])/
FIELD.2: /[A-Za-z_@][A-Za-z0-9_.@\-]*:/
WORD: /(\\.|[^\s()"\[\]{}:\\\-])(\\.|[^\s()"\[\]{}:\\])*/
VALUE: /(\\.|[^\s()"\[\]{}\\<>])(\\.|[^\s()"\[\]{}\\])*/
PHRASE: /"(\\.|[^"\\])*"/
OPEN: "[" | "{"
CLOSE: "]" | "}"

%import common.WS
%ignore WS
"""

_EXPECTED = {
    "VALUE": "a value", "PHRASE": 'a "quoted phrase"', "FIELD": "a field:",
    "WORD": "a search term", "CMP": "a comparison (> >= < <=)", "OPEN": '"[" or "{"',
    "CLOSE": '"]" or "}"', "_TO": '"TO"', "RPAR": '")"', "LPAR": '"("', "_AND": "AND",
    "_OR": "OR", "_NOT": "NOT", "MINUS": '"-"', "$END": "the end of the query",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=False)


class QueryError(ValidationError):
    """A query that does not parse or names something that cannot be searched."""


def error(query: str, column: int, detail: str, expected: str | None = None,
          param: str = "query") -> QueryError:
    near = query[column - 1:column + 19] if column <= len(query) else ""
    return QueryError(
        f"{param}: column {column}: {detail}",
        problems=[FieldProblem(f"/query/{param}", detail, expected, near or None,
                               column=column)])


def parse(query: str, *, param: str = "query") -> Node:
    """Parse and check `query`. The empty query is `All()`."""
    if not query.strip():
        return All()
    try:
        tree = _parser().parse(query)
    except UnexpectedEOF as exc:
        raise error(query, len(query) + 1, "the query ends too early",
                    _describe(exc.expected), param) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream if exc.pos_in_stream is not None else exc.column - 1
        raise error(query, exc.column, f"unexpected {query[pos]!r}",
                    _describe(exc.allowed), param) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise error(query, len(query) + 1, "the query ends too early",
                        _describe(exc.expected), param) from None
        col = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
        raise error(query, col, f"unexpected {str(exc.token)!r}", _describe(exc.expected),
                    param) from None
    try:
        node: Node = _Build(query, param).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    return node


def _describe(names: Any) -> str:
    wanted = sorted({_EXPECTED.get(n, n.lower().strip("_")) for n in names or ()})
    return " or ".join(wanted) if wanted else "something else"


_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_UNESCAPE = re.compile(r"\\(.)", re.S)
_RELATIVE = re.compile(r"now(?:-(\d+)([smhdw]))?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _number(text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    return float(text) if any(c in text for c in ".eE") else int(text)


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def _unquote(phrase: str) -> str:
    return _unescape(phrase[1:-1])


def _has_wild(raw: str) -> bool:
    return bool(re.search(r"(?<!\\)(?:\\\\)*[*?]", raw))


class _Build(Transformer[Token, Node]):
    """Lark tree -> checked AST."""

    def __init__(self, query: str, param: str) -> None:
        super().__init__()
        self.query = query
        self.param = param

    def _fail(self, token: Token | None, detail: str, expected: str | None = None) -> QueryError:
        col = token.column if token is not None and isinstance(token.column, int) else 1
        return error(self.query, col, detail, expected, self.param)

    # -- structure
    def start(self, items: list[Node]) -> Node:
        return items[0] if items else All()

    def or_(self, items: list[Node]) -> Node:
        return Or(tuple(_flatten(Or, items)))

    def and_(self, items: list[Node]) -> Node:
        return And(tuple(_flatten(And, items)))

    def not_(self, items: list[Any]) -> Node:
        return Not(items[-1])

    # -- free text
    def word(self, items: list[Token]) -> Node:
        tok = items[0]
        raw = str(tok)
        prefix = raw.endswith("*") and not raw.endswith("\\*")
        body = raw[:-1] if prefix else raw
        if _has_wild(body):
            raise self._fail(tok, "free text takes only a trailing *",
                              "field:pattern for other wildcards")
        return self._text(tok, _unescape(body), prefix)

    def phrase(self, items: list[Token]) -> Node:
        return self._text(items[0], _unquote(str(items[0])), False)

    def _text(self, tok: Token, text: str, prefix: bool) -> Node:
        if not tokens(text):
            raise self._fail(tok, f"{text!r} has no letters or digits to search for",
                              "a word, or field:value")
        return Text(text, prefix)

    # -- field terms: the value rules return a closure awaiting the field
    def field(self, items: list[Any]) -> Node:
        tok, make = items
        name = str(tok)[:-1]
        if name == "_exists_":
            return make(None, tok, exists=True)  # type: ignore[no-any-return]
        path = fields.ALIASES.get(name, name)
        why = fields.check_path(path)
        if why is not None:
            raise self._fail(tok, why, "a schema v1 field (see docs/query.md)")
        return make(path, tok)  # type: ignore[no-any-return]

    def v_value(self, items: list[Token]) -> Any:
        vt = items[0]
        raw = str(vt)

        def make(path: str | None, ft: Token, exists: bool = False) -> Node:
            if exists:
                target = fields.ALIASES.get(raw, raw)
                why = fields.check_path(target)
                if why is not None:
                    raise self._fail(vt, why, "a schema v1 field")
                return Exists(target)
            assert path is not None
            if raw == "*":
                return Exists(path)
            if _has_wild(raw):
                if path in ("time", "seq"):
                    raise self._fail(vt, f"{path} takes no wildcards", "a value or a range")
                return Wildcard(path, raw)
            return self._eq(path, vt, _unescape(raw), quoted=False)
        return make

    def v_phrase(self, items: list[Token]) -> Any:
        vt = items[0]

        def make(path: str | None, ft: Token, exists: bool = False) -> Node:
            if exists or path is None:
                raise self._fail(vt, "_exists_ takes a field name", "a field name")
            return self._eq(path, vt, _unquote(str(vt)), quoted=True)
        return make

    def v_compare(self, items: list[Token]) -> Any:
        op, bt = items

        def make(path: str | None, ft: Token, exists: bool = False) -> Node:
            if exists or path is None:
                raise self._fail(op, "_exists_ takes a field name", "a field name")
            b = self._bound(path, bt, upper=str(op).startswith("<"))
            assert b is not None
            inclusive = str(op).endswith("=")
            if str(op).startswith(">"):
                return Range(path, b, None, lo_inclusive=inclusive)
            return Range(path, None, b, hi_inclusive=inclusive)
        return make

    def v_range(self, items: list[Token]) -> Any:
        open_, lo_t, hi_t, close = items

        def make(path: str | None, ft: Token, exists: bool = False) -> Node:
            if exists or path is None:
                raise self._fail(open_, "_exists_ takes a field name", "a field name")
            hi_incl = str(close) == "]"
            lo = self._bound(path, lo_t, upper=False)
            hi = self._bound(path, hi_t, upper=hi_incl)
            if path == "time" and hi is not None and hi_incl and _DATE.fullmatch(str(hi_t)):
                hi_incl = False  # a whole day: `hi` is already the next midnight
            if lo is None and hi is None:
                return Exists(path)
            if lo is not None and hi is not None and \
                    (lo.number is None) != (hi.number is None):
                raise self._fail(lo_t, "a range's bounds must both be numbers or both text",
                                  "two numbers or two texts")
            return Range(path, lo, hi, str(open_) == "[", hi_incl)
        return make

    def v_group(self, items: list[Any]) -> Any:
        def make(path: str | None, ft: Token, exists: bool = False) -> Node:
            nodes = [m(path, ft, exists) for m in items]
            return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))
        return make

    # -- values by field kind
    def _eq(self, path: str, vt: Token, text: str, *, quoted: bool) -> Node:
        col = fields.COLUMNS.get(path)
        if col is not None and col.kind == "time":
            start, end = self._time(vt, text, upper=False), None
            if _DATE.fullmatch(text):  # a whole day
                end = self._time(vt, text, upper=True)
                return Range(path, start, end, True, False)
            return Eq(path, start)
        if col is not None and col.kind == "int":
            return Eq(path, self._int(vt, text))
        if col is not None or quoted:
            return Eq(path, Literal_(text))
        return Eq(path, Literal_(text, _number(text)))

    def _bound(self, path: str, bt: Token, *, upper: bool) -> Literal_ | None:
        raw = str(bt)
        if raw == "*":
            return None
        quoted = raw.startswith('"')
        text = _unquote(raw) if quoted else _unescape(raw)
        col = fields.COLUMNS.get(path)
        if col is not None and col.kind == "time":
            return self._time(bt, text, upper=upper)
        if col is not None and col.kind == "int":
            return self._int(bt, text)
        if col is not None or quoted:
            return Literal_(text)
        return Literal_(text, _number(text))

    def _int(self, tok: Token, text: str) -> Literal_:
        n = _number(text)
        if not isinstance(n, int):
            raise self._fail(tok, f"{text!r} is not a whole number", "a whole number")
        return Literal_(text, n)

    def _time(self, tok: Token, text: str, *, upper: bool) -> Literal_:
        us = parse_time_us(text, upper=upper)
        if us is None:
            raise self._fail(tok, f"{text!r} is not a time",
                              "2026-11-01, 2026-11-01T02:00:00Z or now-15m")
        return Literal_(text, us)


def parse_time_us(text: str, *, upper: bool = False, now: datetime | None = None) -> int | None:
    """Microseconds since the epoch of an ISO 8601 date or time (UTC unless it says
    otherwise) or `now`/`now-15m`. A bare date is its midnight, or the next midnight
    when `upper` (so an inclusive upper bound covers the whole day)."""
    rel = _RELATIVE.fullmatch(text)
    if rel:
        t = now or datetime.now(UTC)
        if rel.group(1):
            t -= timedelta(seconds=int(rel.group(1)) * _UNITS[rel.group(2)])
        return _us(t)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if upper and _DATE.fullmatch(text):
        t += timedelta(days=1)
    return _us(t)


def _us(t: datetime) -> int:
    return fields.time_us(t.astimezone(UTC).isoformat())


def _flatten(kind: type[And] | type[Or], items: list[Node]) -> list[Node]:
    out: list[Node] = []
    for it in items:
        if isinstance(it, kind):
            out.extend(it.items)
        else:
            out.append(it)
    return out
