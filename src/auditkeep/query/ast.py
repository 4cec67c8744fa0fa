"""The query AST: what a parsed query means, independent of where it runs.

One tree, two back ends: `query.sql` compiles it to SQL over the search index and
`query.predicate` to a Python function over stored records; detection rules reuse it.
Field paths are schema v1 dotted paths, already checked by `query.fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Number = int | float


@dataclass(frozen=True, slots=True)
class Literal_:
    """A value as typed. `number` is set when the text reads as a JSON-style number, so
    `amount:1000` matches the number 1000 and the string "1000" alike."""

    text: str
    number: Number | None = None


@dataclass(frozen=True, slots=True)
class Eq:
    field: str
    value: Literal_


@dataclass(frozen=True, slots=True)
class Wildcard:
    """`field:pat*tern`: `*` is any run of characters, `?` exactly one; text values only."""

    field: str
    pattern: str  # our syntax: `*`, `?` wild; `\*`, `\?`, `\\` literal

    def prefix(self) -> str | None:
        """The literal prefix when the only wildcard is one trailing `*`, else None."""
        body = self.pattern[:-1]
        if not self.pattern.endswith("*") or self.pattern.endswith("\\*"):
            return None
        out: list[str] = []
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                out.append(body[i + 1])
                i += 2
                continue
            if c in "*?":
                return None
            out.append(c)
            i += 1
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Range:
    """`field:[lo TO hi]`, `{lo TO hi}`, `field:>x` and friends. An open end is None.
    Bounds are both numbers or both text (checked at parse time)."""

    field: str
    lo: Literal_ | None
    hi: Literal_ | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    field: str


@dataclass(frozen=True, slots=True)
class Text:
    """Free text (no field): every token must occur, in order and adjacent when more
    than one (a phrase); `prefix` makes the last token a prefix (`alic*`)."""

    text: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class All:
    """The empty query: every event."""


Node = Eq | Wildcard | Range | Exists | Text | And | Or | Not | All
Op = Literal["<", "<=", ">", ">="]
