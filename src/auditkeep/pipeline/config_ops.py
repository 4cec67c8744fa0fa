"""The configuration file's sections for running auditkeep: `slos` (objectives and
their burn-rate alerts), `canary` (the synthetic end-to-end event) and `self_audit`
(scheduled integrity checks of the stored log).

pipeline/config.py calls these parsers with its checker `c` (`c.fail`, `c.keys`,
`c.mapping`, `c.text`, `c.number`, `c.boolean`, `c.choice`), so every problem is
reported with its path and line like the rest of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditkeep.detect.rules import parse_duration

if TYPE_CHECKING:
    from auditkeep.pipeline.config import _Check

_SLO_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


SLIS = ("ingest_success", "searchable", "alerted", "query", "canary")
_TIMED = ("searchable", "alerted", "query")  # SLIs counted against a latency `within`
_SLO_KEYS = ("name", "objective", "sli", "within", "period")


@dataclass(frozen=True, slots=True)
class SloConfig:
    """One entry of `slos:` (docs/slos.md): `objective` percent of the SLI's events
    good (within `within` seconds, for the timed SLIs) over `period` seconds."""

    name: str
    objective: float  # percent, e.g. 99.9
    sli: str
    within: float | None = None
    period: float = 30 * 86400.0


# When the file has no `slos:` section (docs/slos.md).
DEFAULT_SLOS = (SloConfig("ingest", 99.95, "ingest_success"),
                SloConfig("searchable", 99.9, "searchable", 5.0))


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """`canary:` (docs/operations.md). Off unless `every` is set: a canary event lands
    in a tenant's audit log, so it gets a tenant of its own (default `canary`)."""

    every: float | None = None
    tenant: str = "canary"
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class SelfAuditConfig:
    """`self_audit:` (docs/operations.md). On by default: a pass an hour, a full verify
    a day; `every: off` turns it off."""

    every: float | None = 3600.0
    spot_checks: int = 64
    full_verify: float | None = 86_400.0


@dataclass(frozen=True, slots=True)
class ReadinessConfig:
    """`readiness:` (docs/operations.md "Readiness"): when `/readyz` says not ready."""

    storage_timeout: float = 2.0  # a store read slower than this: not ready
    max_lag_events: int = 10_000  # the search index this far behind a log: not ready
    max_lag_seconds: float = 60.0  # ... or behind for longer than this
    bus_timeout: float = 2.0  # the bus's stream not answering within this: not ready
    retry_after: int = 5  # the 503's Retry-After (s)


_TENANT = re.compile(r"^[a-z0-9-]{1,63}$")


def _every(c: _Check, at: tuple[str, ...], raw: Any, default: float | None,
           least: float) -> float | None:
    if raw is None:
        return default
    if raw is False or (isinstance(raw, str) and raw.strip().lower() == "off"):
        return None
    seconds = parse_duration(raw)
    if seconds is None or seconds < least:
        c.fail(at, f"expected a duration of at least {least:g}s (30s, 1m, 1h) or off, "
                   f"got {raw!r}")
        return default
    return seconds


def parse_slos(c: _Check, value: Any) -> tuple[SloConfig, ...]:
    """`slos:` as SloConfigs; absent: DEFAULT_SLOS; an empty list: none."""
    from auditkeep.detect.rules import parse_duration
    from auditkeep.pipeline.config import _show

    if value is None:
        return DEFAULT_SLOS
    if not isinstance(value, list):
        c.fail(("slos",), f"expected a list of SLOs, got {_show(value)}")
        return ()
    out: list[SloConfig] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        at = ("slos", i)
        m = c.mapping(at, item, "a mapping with name, objective, sli, within and period")
        c.keys(at, m, _SLO_KEYS)
        before = len(c.problems)
        name = c.text((*at, "name"), m.get("name"), required=True)
        if name is not None and not _SLO_NAME.match(name):
            c.fail((*at, "name"), f"expected a name of a-z, 0-9, _ and - (up to 63), "
                                  f"got {name!r}")
        elif name is not None and name in names:
            c.fail((*at, "name"), f"{name!r} names an earlier SLO too")
        names.add(name or "")
        objective = c.number((*at, "objective"), m.get("objective"), 0, 100)
        if objective is not None and not 0 < objective < 100:
            c.fail((*at, "objective"), f"expected a percentage above 0 and below 100 "
                                       f"(100 leaves no error budget), got {objective:g}")
        sli = c.choice((*at, "sli"), m.get("sli"), SLIS, "")
        if m.get("sli") is None:
            c.fail((*at, "sli"), f"required: one of {', '.join(SLIS)}")
        within: float | None = None
        if m.get("within") is not None:
            within = parse_duration(m.get("within"))
            if within is None:
                c.fail((*at, "within"), f"expected a duration such as 500ms, 5s or 1m, "
                                        f"got {_show(m.get('within'))}")
            elif sli and sli not in _TIMED:
                c.fail((*at, "within"), f"only {', '.join(_TIMED)} are timed; "
                                        f"{sli} takes no within")
        elif sli in _TIMED:
            c.fail((*at, "within"), f"required for {sli}: a duration such as 5s")
        period = parse_duration(m.get("period", "30d"))
        if period is None or period < 3 * 86400:
            c.fail((*at, "period"), f"expected a duration of at least 3d (the longest "
                                    f"burn window), got {_show(m.get('period'))}")
        if len(c.problems) == before and name and objective is not None and sli:
            out.append(SloConfig(name, objective, sli, within, period or 30 * 86400.0))
    return tuple(out)


def parse_canary(c: _Check, value: Any) -> CanaryConfig:
    if value is None:
        return CanaryConfig()
    at = ("canary",)
    obj = c.mapping(at, value, "a mapping (every, tenant, timeout)")
    c.keys(at, obj, ("every", "tenant", "timeout"))
    every = _every(c, (*at, "every"), obj.get("every"), None, 1.0)
    tenant = obj.get("tenant", "canary")
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        c.fail((*at, "tenant"), f"not a tenant name (1 to 63 of a-z, 0-9 and -), got "
                                f"{tenant!r}")
        tenant = "canary"
    timeout = _every(c, (*at, "timeout"), obj.get("timeout"), 30.0, 0.1) or 30.0
    return CanaryConfig(every, tenant, timeout)


def parse_self_audit(c: _Check, value: Any) -> SelfAuditConfig:
    if value is None:
        return SelfAuditConfig()
    at = ("self_audit",)
    obj = c.mapping(at, value, "a mapping (every, spot_checks, full_verify)")
    c.keys(at, obj, ("every", "spot_checks", "full_verify"))
    every = _every(c, (*at, "every"), obj.get("every"), 3600.0, 1.0)
    full = _every(c, (*at, "full_verify"), obj.get("full_verify"), 86_400.0, 1.0)
    spots = 64
    if "spot_checks" in obj:
        got = c.number((*at, "spot_checks"), obj["spot_checks"], 0, 100_000)
        spots = 64 if got is None else int(got)
    return SelfAuditConfig(every, spots, full)


_READINESS_SECONDS = {"storage_timeout": (0.1, 2.0), "max_lag_seconds": (1.0, 60.0),
                      "bus_timeout": (0.1, 2.0)}


def parse_readiness(c: _Check, value: Any) -> ReadinessConfig:
    if value is None:
        return ReadinessConfig()
    at = ("readiness",)
    obj = c.mapping(at, value, "a mapping (storage_timeout, max_lag_events, "
                               "max_lag_seconds, bus_timeout, retry_after)")
    c.keys(at, obj, ("storage_timeout", "max_lag_events", "max_lag_seconds", "bus_timeout",
                     "retry_after"))
    seconds: dict[str, float] = {}
    for key, (least, default) in _READINESS_SECONDS.items():
        raw = obj.get(key)
        got = parse_duration(raw) if raw is not None else default
        if got is None or got < least:
            c.fail((*at, key), f"expected a duration of at least {least:g}s (2s, 1m), "
                               f"got {raw!r}")
            got = default
        seconds[key] = got
    lag = c.number((*at, "max_lag_events"), obj.get("max_lag_events"), 0, 10**12) \
        if "max_lag_events" in obj else None
    retry = c.number((*at, "retry_after"), obj.get("retry_after"), 1, 3600) \
        if "retry_after" in obj else None
    return ReadinessConfig(seconds["storage_timeout"],
                           10_000 if lag is None else int(lag),
                           seconds["max_lag_seconds"], seconds["bus_timeout"],
                           5 if retry is None else int(retry))
