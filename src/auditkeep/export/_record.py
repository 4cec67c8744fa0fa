"""Reading stored records safely: every mapping goes through these helpers, so none of
them can trip over a field that is absent, a commitment, or of an unexpected shape.

A stored record is what `GET /v1/events` returns: a schema v1 event plus `seq`,
`received`, `submitter`, `v` and maybe `raw`. Personal actor fields are plain strings
for readers with the `personal` scope and `{"$c": "<hex>"}` commitments for the rest.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: optional parts read the same
    whether they are missing or not."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """`value` if it is a non-empty string, else None. A personal field that is a
    commitment is an object, so this is also how a mapping leaves commitments out:
    a commitment proves a value without revealing it, and no target field can hold it."""
    return value if isinstance(value, str) and value else None


def ip_text(value: Any) -> str | None:
    """`text(value)` if it is an IPv4 or IPv6 address, else None. OCSF and ECS type
    their address fields, and Elasticsearch refuses a whole document whose `ip` field
    does not parse (`075.050.255.67`, as some anonymised CloudTrail samples have)."""
    found = text(value)
    if found is None:
        return None
    try:
        ipaddress.ip_address(found)
    except ValueError:
        return None
    return found


def integer(value: Any) -> int | None:
    """`value` if it is an integer (and not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without None values and empty objects or lists: mapped output names only
    what the record says, so an absent field stays absent rather than becoming null."""
    return {k: v for k, v in obj.items() if v is not None and v != {} and v != []}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string as an aware datetime, or None if it is not one. The server
    stores `time` and `received` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`; anything else is
    read if Python can, never raised on."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def epoch_us(value: Any) -> int | None:
    """Microseconds since the Unix epoch of an RFC 3339 string, or None."""
    parsed = parse_time(value)
    if parsed is None:
        return None
    return (parsed - _EPOCH) // _MICROSECOND


def epoch_ms(value: Any) -> int | None:
    """Milliseconds since the Unix epoch of an RFC 3339 string, or None (floor, so a
    time never moves past the millisecond it happened in)."""
    us = epoch_us(value)
    return None if us is None else us // 1000

