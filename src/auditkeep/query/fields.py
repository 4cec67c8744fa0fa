"""Which schema v1 paths a query may name, and how a stored record becomes searchable values.

Fifteen hot fields live in columns of the index's `events` table; every other leaf of
the record (and of a source's raw object, under `raw.`) is a `(key, value)` row of the
`attrs` table. Both the indexer and the in-memory predicate flatten with `leaves()`, so
the SQL and the Python back ends see the same values by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditkeep.pipeline.schema import PERSONAL_ACTOR_FIELDS


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # "text", "int" or "time" (microseconds since the epoch)
    nullable: bool


#: Query path -> index column. Order matters only for documentation.
COLUMNS: dict[str, Column] = {
    "time": Column("time_us", "time", False),
    "seq": Column("seq", "int", False),
    "actor.id": Column("actor", "text", False),
    "actor.type": Column("actor_type", "text", False),
    "action": Column("action", "text", False),
    "outcome": Column("outcome", "text", False),
    "category": Column("category", "text", False),
    "severity": Column("severity", "text", True),
    "resource.type": Column("rtype", "text", True),
    "resource.id": Column("rid", "text", True),
    "source.service": Column("service", "text", True),
    "trace_id": Column("trace_id", "text", True),
    "request_id": Column("request_id", "text", True),
    # Columns rather than `attrs` rows: every record has them and each is unique-ish, so
    # as rows they were two of seven per event (measured: +15% indexer throughput).
    "id": Column("id", "text", True),
    "received": Column("received", "text", True),
}

#: Short names people type: `actor:alice` means `actor.id:alice`.
ALIASES = {"actor": "actor.id", "resource": "resource.id", "service": "source.service"}

PERSONAL = frozenset(f"actor.{f}" for f in PERSONAL_ACTOR_FIELDS)
#: Record fields that are the same for every event of a log: not indexed.
NOT_SEARCHABLE = {"tenant": "a search runs in one tenant's log: choose it with the tenant "
                            "parameter (or the UI's tenant switcher)",
                  "v": "v is the schema version, the same for every event"}

_PRINCIPAL = {"id": None, "type": None}
_RESOURCE = {"type": None, "id": None, "name": None}
#: The shape of a stored record; None is a leaf, "*" is free-form below.
SHAPE: dict[str, Any] = {
    "id": None, "time": None, "action": None, "outcome": None, "category": None,
    "severity": None, "reason": None, "trace_id": None, "span_id": None,
    "request_id": None, "seq": None, "received": None,
    "submitter": "*",
    "actor": {"id": None, "type": None, "name": None, "email": None, "ip": None,
              "user_agent": None, "session_id": None, "impersonator": _PRINCIPAL},
    "resource": _RESOURCE, "targets": _RESOURCE,
    "source": {"service": None, "version": None, "host": None, "region": None,
               "environment": None},
    "changes": {"field": None, "before": "*", "after": "*"},
    "metadata": "*",
    "raw": "*",  # the record's {format, sha256, size} and the source's raw object
}

#: What `leaves()` keeps at most, so one huge raw object cannot bloat the index.
MAX_LEAVES = 400
MAX_DEPTH = 12
MAX_VALUE_CHARS = 1024
_INT64 = 2**63
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def time_us(stamp: str) -> int:
    """Microseconds since the epoch of a stored `time` (always UTC, `...Z`)."""
    delta = datetime.fromisoformat(stamp) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def check_path(path: str) -> str | None:
    """None if `path` names something a record can hold, else why not."""
    if path in NOT_SEARCHABLE:
        return NOT_SEARCHABLE[path]
    if path in PERSONAL:
        return (f"{path} is personal data: it is stored only as a salted commitment "
                "and cannot be searched")
    node: Any = SHAPE
    walked: list[str] = []
    for part in path.split("."):
        if node == "*":
            return None if part else f"{path} has an empty segment"
        if not isinstance(node, dict):
            return f"{'.'.join(walked)} has no fields below it"
        if part not in node:
            where = ".".join(walked) or "an event"
            return f"{where} has no field {part!r}; expected one of {', '.join(sorted(node))}"
        walked.append(part)
        node = node[part]
    return None


def scalar(value: Any) -> str | int | float | None:
    """How a JSON leaf is stored and compared: text, integer or real (SQLite's types).
    Booleans become "true"/"false", integers beyond 64 bits reals, null nothing."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else float(value)
    if isinstance(value, float):
        return value
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else None


def sqlite_order(value: Any) -> tuple[int, Any]:
    """A sort key giving SQLite's order of values: NULL, numbers (by value), text (by code
    point), blobs. The in-memory predicate and the rollup merge both compare by it."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def column_values(rec: dict[str, Any]) -> dict[str, Any]:
    """Query path -> the value its column holds (None for an absent nullable field)."""
    res = rec.get("resource") or {}
    src = rec.get("source") or {}
    actor = rec["actor"]
    return {
        "time": time_us(rec["time"]),
        "seq": rec["seq"], "actor.id": actor["id"], "actor.type": actor["type"],
        "action": rec["action"], "outcome": rec["outcome"], "category": rec["category"],
        "severity": rec.get("severity"), "resource.type": res.get("type"),
        "resource.id": res.get("id"), "source.service": src.get("service"),
        "trace_id": rec.get("trace_id"), "request_id": rec.get("request_id"),
        "id": rec.get("id"), "received": rec.get("received"),
    }


def free_text(rec: dict[str, Any]) -> str:
    """What free-text search sees: action, actor id, resources, reason, metadata values.
    Personal values are never indexed: erasure stays complete and non-personal scopes
    cannot probe them."""
    parts: list[str] = [rec["action"], rec["actor"]["id"]]
    for r in [rec.get("resource"), *(rec.get("targets") or [])]:
        if r:
            parts.extend(str(v) for v in r.values())
    if "reason" in rec:
        parts.append(rec["reason"])
    src = rec.get("source")
    if src:
        parts.extend(str(v) for v in src.values())
    md = rec.get("metadata")
    if md:
        stack: list[Any] = [md]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif node is not None:
                parts.append(str(node))
    return " ".join(parts)


def leaves(rec: dict[str, Any], raw: Any = None) -> list[tuple[str, str | int | float]]:
    """Every (path, value) of the record not held in a column, then those of the raw
    source object under `raw.` (JSON raws only), at most MAX_LEAVES. Duplicates may
    occur (the index ignores them). Hand-unrolled: this runs once per indexed event and
    a generator-based walk cost 30 us for ten leaves (measured; now ~8 us)."""
    out: list[tuple[str, str | int | float]] = []
    skip = _SKIP
    for k, v in rec.items():
        if k in skip:
            if k in _WALKED:
                _collect(v, k + ".", 1, out, skip)
            continue
        _collect(v, k + ".", 1, out, skip)
    del out[MAX_LEAVES:]
    if raw is not None and len(out) < MAX_LEAVES:
        _collect(raw, "raw.", 0, out, frozenset())
        del out[MAX_LEAVES:]
    return out


_WALKED = frozenset({"actor", "resource", "source"})  # some leaves in columns, some not
#: Top-level keys held in columns (or holding some): their subtrees are walked with care.
#: `tenant` (the log itself) and `v` (the schema version) say nothing within one log.
_SKIP = frozenset({*(p for p in COLUMNS if "." not in p), "actor", "resource", "source",
                   *NOT_SEARCHABLE})


def _collect(node: Any, prefix: str, depth: int, out: list[tuple[str, str | int | float]],
             skip: frozenset[str]) -> None:
    if len(out) >= MAX_LEAVES or depth > MAX_DEPTH:
        return
    t = type(node)
    if t is dict:
        if "$c" in node and len(node) == 1:
            return  # a personal commitment
        for k, v in node.items():
            key = prefix + k
            if key in COLUMNS or key in PERSONAL:
                continue
            _collect(v, key + ".", depth + 1, out, skip)
    elif t is list:
        for v in node:
            _collect(v, prefix, depth + 1, out, skip)
    elif t is str:
        if len(node) <= MAX_VALUE_CHARS:
            out.append((prefix[:-1], node))
    else:
        value = scalar(node)
        if value is not None:
            out.append((prefix[:-1], value))
