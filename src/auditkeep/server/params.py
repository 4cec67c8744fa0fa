"""Query-string parsing that names the offending parameter in a problem."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from auditkeep.errors import FieldProblem, ValidationError

_RELATIVE = re.compile(r"^-?(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def bad(name: str, detail: str, expected: str, actual: str) -> ValidationError:
    return ValidationError(f"query parameter {name!r}: {detail}",
                           problems=[FieldProblem(f"/query/{name}", detail, expected, actual)])


def only(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown query parameter(s): {', '.join(unknown)}",
            problems=[FieldProblem(f"/query/{u}", "unknown parameter",
                                   ", ".join(sorted(allowed)), u) for u in unknown])


def integer(request: Request, name: str, *, default: int | None = None, lo: int = 0,
            hi: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d+", raw):
        raise bad(name, "not an integer", "integer", raw)
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise bad(name, f"out of range ({rng})", rng, raw)
    return value


def integer_or(request: Request, name: str, default: int, *, lo: int = 0,
               hi: int | None = None) -> int:
    value = integer(request, name, default=default, lo=lo, hi=hi)
    return default if value is None else value


def required_int(request: Request, name: str, *, lo: int = 0) -> int:
    value = integer(request, name, lo=lo)
    if value is None:
        raise bad(name, "required", "integer", "missing")
    return value


def timestamp_us(request: Request, name: str, now: datetime | None = None) -> int | None:
    """RFC 3339 with offset, or a relative age such as 15m, 24h, 7d or -15m (before now)."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    return parse_time_us(raw, name, now)


def parse_time_us(raw: str, name: str, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(raw)
    if m:
        when = now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise bad(name, "not a time", "RFC 3339 with offset, or 15m/24h/7d",
                      raw) from None
        if when.tzinfo is None:
            raise bad(name, "time has no UTC offset", "RFC 3339 with offset (e.g. Z)", raw)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta = when - epoch
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
