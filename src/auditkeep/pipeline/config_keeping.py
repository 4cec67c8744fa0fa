"""The configuration file's sections for keeping the record over years: `retention`
(policies per tenant and category), `archive` (the cold tier) and `witnesses`.

pipeline/config.py calls these parsers with its checker `c` (`c.fail`, `c.keys`,
`c.mapping`, `c.text`, `c.number`, `c.boolean`, `c.choice`), so every problem is
reported with its path and line like the rest of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditkeep.pipeline.config import _Check


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """`retention:` (docs/retention.md)."""


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """`archive:` (docs/archive.md)."""


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """One entry of `witnesses:` (docs/witnesses.md)."""


def parse_retention(c: _Check, value: Any) -> RetentionConfig:
    return RetentionConfig()


def parse_archive(c: _Check, value: Any) -> ArchiveConfig | None:
    return None


def parse_witnesses(c: _Check, value: Any) -> tuple[WitnessConfig, ...]:
    return ()
