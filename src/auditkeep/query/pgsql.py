"""Query AST -> a SQL condition over the PostgreSQL search index (`query.pgindex`).

The PostgreSQL dialect of `query.sql`, with the same meaning row for row (the agreement
property test runs the same queries through both and through `query.predicate`):

- Text columns are `COLLATE "C"`, so text compares by code point, as SQLite's BINARY.
- A field beyond the columns is a `search_attrs` row holding either `num` (numeric) or
  `txt`: a number never equals, matches or falls in a range of text, which is SQLite's
  "numbers sort before text" for the comparisons a query can make. Numbers are bound as
  exact `Decimal`s, so an integer and a real compare by value, as in SQLite.
- Free text is our own tokens (`query.text`): `tsv` (a tsvector of the distinct tokens,
  GIN-indexed) finds candidate rows, `words` (the tokens joined by single spaces, with
  a space at each end) decides the phrase exactly by `LIKE '% a b %'` (`'% a b%'` for a
  prefix). Tokens are letters and digits only, so neither needs escaping.

Every condition is boolean, never NULL (nullable columns are guarded), so `NOT` means
what it says. Values are always bound parameters (`%s`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Protocol

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
from auditkeep.query.sql import Condition, next_prefix
from auditkeep.query.text import tokens

#: The longest lexeme kept in `tsv`, in characters (PostgreSQL refuses lexemes over
#: 2,047 bytes; four bytes a character at most). Longer tokens are cut to it, and a
#: query token that long looks for the cut one as a prefix, so `tsv` still finds
#: every row `words` would match.
LEXEME_CHARS = 500
#: The most lexeme characters in one `tsv` (PostgreSQL's tsvector holds 1 MB); a row
#: with more gets `EVERY_ROW` instead, which every free-text query also looks for, and
#: `words` alone decides.
TSV_CHARS = 200_000
#: A lexeme our tokenizer never makes (not a letter or digit).
EVERY_ROW = "~all"


class KeyIds(Protocol):
    """The `search_keys` ids of field paths, looked up before a statement is planned: as
    constants the planner reads the statistics of `search_attrs` for that key (a search
    for a value no event has: 520 ms with `key = (SELECT id ...)`, 0.7 ms with the id)."""

    def key_id(self, path: str) -> int:
        """The id of `path`, or -1 (no row has it) if no event has that field."""
        ...

    def keys_under(self, path: str) -> list[int]:
        """The ids of `path` and of every path below it."""
        ...


def compile_where(node: Node, keys: KeyIds, *, rowid: str = "rowid") -> Condition:
    """A condition on one row of `search_events` selecting what `node` matches. `rowid`
    is how the statement names that row's rowid (`e.rowid` when tables are joined)."""
    c = _Compiler(rowid, keys)
    return Condition(c.node(node), c.args)


def window_condition(since_us: int | None, until_us: int | None,
                     cursor: tuple[int, int] | None = None,
                     after: tuple[int, int] | None = None, table: str = "") -> Condition:
    """`query.index.Window.conditions` in this dialect."""
    t, s = f"{table}time_us", f"{table}seq"
    parts: list[str] = []
    args: list[Any] = []
    if since_us is not None:
        parts.append(f"{t} >= %s")
        args.append(since_us)
    if until_us is not None:
        parts.append(f"{t} < %s")
        args.append(until_us)
    if cursor is not None:
        parts.append(f"{t} <= %s AND ({t} < %s OR {s} < %s)")
        args += [cursor[0], cursor[0], cursor[1]]
    if after is not None:
        parts.append(f"{t} >= %s AND ({t} > %s OR {s} > %s)")
        args += [after[0], after[0], after[1]]
    return Condition(" AND ".join(parts) or "TRUE", args)


def like_pattern(pattern: str) -> str:
    """Our wildcard syntax (`*`, `?`, backslash escapes) as a LIKE pattern (escape `\\`)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            lit = pattern[i + 1]
            out.append("\\" + lit if lit in "%_\\" else lit)
            i += 2
            continue
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        else:
            out.append("\\" + c if c in "%_\\" else c)
        i += 1
    return "".join(out)


def number(value: int | float) -> Decimal:
    """A number as the exact numeric it is. A real keeps a fractional digit (`2.0`), so
    reading it back gives a float again, as SQLite gives a REAL."""
    if isinstance(value, int):
        return Decimal(value)
    d = Decimal(value)
    if d.is_finite() and d == d.to_integral_value():
        return Decimal(f"{int(value)}.0")
    return d


def scalar(num: Decimal | None, txt: str | None) -> str | int | float | None:
    """A `search_attrs` value back as `fields.scalar` made it."""
    if txt is not None:
        return txt
    if num is None:
        return None
    exp = num.as_tuple().exponent
    return int(num) if isinstance(exp, int) and exp >= 0 else float(num)


#: Runs that can hold tokens: ASCII letters and digits, and anything beyond ASCII.
_RUN = re.compile("[0-9A-Za-z\x80-\U0010ffff]+")
_ASCII_WORD = re.compile("[0-9a-z]+")


def words_of(text: str) -> list[str]:
    """`text.tokens(text)`, faster: ASCII by a regex, only the rest char by char. Every
    ASCII character but a letter or digit separates tokens there too, so cutting at
    them first changes nothing (a property test holds the two equal). The free text of
    100k events: 1.7 s in `tokens`, 0.9 s here."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    out: list[str] = []
    for run in _RUN.findall(text):
        if run.isascii():
            out.append(run.lower())
        else:
            out += tokens(run)
    return out


def tsv_text(words: list[str]) -> str:
    """The tsvector input for a row whose tokens are `words` (distinct, cut, quoted)."""
    distinct = {w[:LEXEME_CHARS] for w in words}
    if sum(len(w) for w in distinct) > TSV_CHARS:
        return f"'{EVERY_ROW}'"
    return " ".join(f"'{w}'" for w in distinct)


def words_text(words: list[str]) -> str:
    return " " + " ".join(words) + " " if words else " "


def text_condition(phrase: list[str], prefix: bool, table: str = "") -> Condition:
    """Free text: every token as a lexeme (the last a prefix when `prefix`), then the
    phrase exactly."""
    if not phrase:
        return Condition("FALSE", [])
    lexemes = []
    for i, w in enumerate(phrase):
        star = (prefix and i == len(phrase) - 1) or len(w) >= LEXEME_CHARS
        lexemes.append(f"'{w[:LEXEME_CHARS]}'" + (":*" if star else ""))
    query = f"({' & '.join(lexemes)}) | '{EVERY_ROW}'"
    like = "% " + " ".join(phrase) + ("%" if prefix else " %")
    return Condition(f"({table}tsv @@ %s::tsquery AND {table}words LIKE %s)", [query, like])


class _Compiler:
    def __init__(self, rowid: str, keys: KeyIds) -> None:
        self.args: list[Any] = []
        self.rowid = rowid
        self.keys = keys
        self.table = rowid[:rowid.index(".") + 1] if "." in rowid else ""

    def _attr(self, cond: str) -> str:
        return f"{self.rowid} IN (SELECT ev FROM search_attrs WHERE {cond})"  # noqa: S608 -- fixed fragments

    def node(self, n: Node) -> str:
        if isinstance(n, All):
            return "TRUE"
        if isinstance(n, And):
            return "(" + " AND ".join(self.node(i) for i in n.items) + ")" if n.items \
                else "TRUE"
        if isinstance(n, Or):
            return "(" + " OR ".join(self.node(i) for i in n.items) + ")" if n.items \
                else "FALSE"
        if isinstance(n, Not):
            return f"NOT ({self.node(n.item)})"
        if isinstance(n, Text):
            cond = text_condition(tokens(n.text), n.prefix, self.table)
            self.args += cond.args
            return cond.sql
        if isinstance(n, Exists):
            return self.exists(n.field)
        col = fields.COLUMNS.get(n.field)
        if col is not None:
            name = self.table + col.name
            body = self.column(name, col, n)
            return f"({name} IS NOT NULL AND {body})" if col.nullable else f"({body})"
        return self.attr(n)

    def column(self, name: str, col: fields.Column, n: Eq | Wildcard | Range) -> str:
        if isinstance(n, Eq):
            self.args.append(n.value.number if col.kind != "text" else n.value.text)
            return f"{name} = %s"
        if isinstance(n, Wildcard):
            prefix = n.prefix()
            if prefix is not None:
                return self._between(name, prefix)
            self.args.append(like_pattern(n.pattern))
            return f"{name} LIKE %s"
        return self._range(name, n, numeric=col.kind != "text", exact=False)

    def attr(self, n: Eq | Wildcard | Range) -> str:
        self.args.append(self.keys.key_id(n.field))
        if isinstance(n, Eq):
            if n.value.number is not None:
                self.args += [number(n.value.number), n.value.text]
                return self._attr("key = %s AND (num = %s OR txt = %s)")
            self.args.append(n.value.text)
            return self._attr("key = %s AND txt = %s")
        if isinstance(n, Wildcard):
            prefix = n.prefix()
            if prefix is not None:
                return self._attr("key = %s AND " + self._between("txt", prefix))
            self.args.append(like_pattern(n.pattern))
            return self._attr("key = %s AND txt LIKE %s")
        bound = n.lo if n.lo is not None else n.hi
        numeric = bound is not None and bound.number is not None
        return self._attr("key = %s AND " + self._range(
            "num" if numeric else "txt", n, numeric=numeric, exact=True))

    def _between(self, name: str, prefix: str) -> str:
        self.args.append(prefix)
        upper = next_prefix(prefix)
        if upper is None:
            return f"{name} >= %s"
        self.args.append(upper)
        return f"{name} >= %s AND {name} < %s"

    def _range(self, name: str, n: Range, *, numeric: bool, exact: bool) -> str:
        """`exact`: bind numbers as Decimal (the `num` column is numeric)."""
        parts: list[str] = []
        for bound, inclusive, op in ((n.lo, n.lo_inclusive, ">"), (n.hi, n.hi_inclusive, "<")):
            if bound is None:
                continue
            parts.append(f"{name} {op}{'=' if inclusive else ''} %s")
            self.args.append(_value(bound, numeric, exact))
        return " AND ".join(parts) if parts else f"{name} IS NOT NULL"

    def exists(self, path: str) -> str:
        under = [p for p in fields.COLUMNS if p == path or p.startswith(path + ".")]
        if under and not any(fields.COLUMNS[p].nullable for p in under):
            return "TRUE"  # every record has it
        parts = [f"{self.table}{fields.COLUMNS[p].name} IS NOT NULL" for p in under]
        ids = self.keys.keys_under(path)
        if ids:
            self.args.append(ids)
            parts.append(self._attr("key = ANY(%s)"))
        return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def _value(bound: Literal_, numeric: bool, exact: bool) -> Any:
    if not numeric:
        return bound.text
    if exact and bound.number is not None:
        return number(bound.number)
    return bound.number
