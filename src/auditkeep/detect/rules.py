"""A loaded rule: what the engine evaluates, whether it came from Sigma or our YAML.

Both formats load into `Rule`. Single-event logic is a `Matcher` (a compiled predicate
over an `EventView`); the kind says what the engine does with matches: alert on each
(`match`), count them in a window (`threshold`, Sigma `event_count`), count distinct
values (`value_count`), see every member rule within a window (`temporal`, in order for
`temporal_ordered`), alert on a first-seen value tuple (`new_value`), alert when
matching events stop (`silence`), or when a producer's own sequence numbers skip
(`sequence_gap`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from auditkeep.detect.view import EventView

Matcher = Callable[[EventView], bool]
Kind = Literal["match", "threshold", "value_count", "temporal", "temporal_ordered",
               "new_value", "silence", "sequence_gap"]
KINDS: tuple[str, ...] = ("match", "threshold", "value_count", "temporal", "temporal_ordered",
                          "new_value", "silence", "sequence_gap")
LEVELS = ("informational", "low", "medium", "high", "critical")
CORRELATIONS = frozenset({"threshold", "value_count", "temporal", "temporal_ordered"})
Op = Literal["gt", "gte", "lt", "lte", "eq"]


@dataclass(frozen=True, slots=True)
class Discriminator:
    """A necessary condition of a matcher: it can only match an event whose `path`
    has one of `values` (compared casefolded when `casefold`). The engine indexes rules
    by it, so an event is only tried against rules that might match it."""

    path: str
    values: frozenset[str]
    casefold: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """`count <op> n` of a threshold or value_count window."""

    op: Op
    n: int

    def holds(self, count: int) -> bool:
        match self.op:
            case "gt":
                return count > self.n
            case "gte":
                return count >= self.n
            case "lt":
                return count < self.n
            case "lte":
                return count <= self.n
        return count == self.n


@dataclass(slots=True)
class Rule:
    id: str
    title: str
    kind: Kind
    matcher: Matcher  # the single-event part; for temporal kinds, the OR of the members
    level: str = "medium"
    tags: tuple[str, ...] = ()
    description: str = ""
    origin: Literal["native", "sigma"] = "native"
    file: str = ""
    query: str = ""  # native rules: the query language text; Sigma: "" (see `sigma_id`)
    discriminator: Discriminator | None = None
    group_by: tuple[str, ...] = ()
    window: float = 0.0  # seconds: the correlation timespan, or a silence's period
    condition: Condition | None = None  # threshold / value_count
    value_field: tuple[str, ...] = ()  # value_count: the field; new_value: the tuple
    members: tuple[Rule, ...] = ()  # temporal kinds: the rules that must all be seen
    generate: bool = True  # False: a Sigma base rule only a correlation uses
    tenants: tuple[str, ...] = ()  # () = every tenant
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # kind-specific extras

    def applies_to(self, tenant: str) -> bool:
        return not self.tenants or tenant in self.tenants


class RuleError(Exception):
    """A rule the engine cannot express or a file that does not load: `where` names the
    file (and rule), `reason` says why. Loading refuses it; nothing is silently dropped."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_text(text: str) -> float | None:
    """`30s`, `10m`, `2h`, `1d`, `0.5s`, `250ms` as seconds (0 allowed); None if not one."""
    m = _DURATION.match(text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_duration(text: object) -> float | None:
    """A rule's window or period: a duration text or a number of seconds, above 0."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text) if text > 0 else None
    seconds = duration_text(text) if isinstance(text, str) else None
    return seconds if seconds else None
