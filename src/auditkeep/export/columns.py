"""Columns of tabular exports (CSV, Parquet): which fields become columns, how a
dotted path finds its value in a mapped record, and what type each column has.

A column is a dotted path into the mapped record (`actor.id`, `metadata.amount`,
`resources.0.uid`). A value that is an object or a list is written as compact JSON
text, so nothing is lost when a column holds a nested part.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from auditkeep.errors import FieldProblem

#: The columns of each mapping when none are asked for.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "auditkeep": (
        "time", "id", "seq", "tenant", "actor.id", "actor.type", "action", "outcome",
        "category", "severity", "resource.type", "resource.id", "source.service",
        "request_id", "trace_id", "reason", "metadata",
    ),
    "ocsf": (
        "time", "metadata.uid", "metadata.sequence", "metadata.log_name", "class_uid",
        "activity_id", "type_uid", "severity_id", "status_id", "actor.user.uid",
        "actor.user.type", "src_endpoint.ip", "api.operation", "api.service.name",
        "resources", "message",
    ),
    "ecs": (
        "@timestamp", "event.id", "event.sequence", "organization.id", "user.id",
        "user.name", "source.ip", "event.action", "event.outcome", "event.category",
        "event.type", "service.name", "event.reason", "trace.id", "auditkeep.resource",
        "auditkeep.metadata",
    ),
    "cadf": (
        "eventTime", "id", "initiator.id", "initiator.typeURI", "initiator.name",
        "initiator.host.address", "action", "outcome", "target.id", "target.typeURI",
        "reason.reasonCode", "severity", "attachments",
    ),
}

ColumnKind = Literal["string", "int", "timestamp", "epoch_ms"]

#: Columns that are not strings, per mapping. `timestamp`: an RFC 3339 string;
#: `epoch_ms`: OCSF's integer milliseconds. Both become Parquet timestamps.
_KINDS: dict[str, dict[str, ColumnKind]] = {
    "auditkeep": {"time": "timestamp", "received": "timestamp", "seq": "int", "v": "int",
                  "raw.size": "int"},
    "ocsf": {"time": "epoch_ms", "metadata.logged_time": "epoch_ms",
             "metadata.original_time": "timestamp", "metadata.sequence": "int",
             **dict.fromkeys(("class_uid", "category_uid", "activity_id", "type_uid",
                              "severity_id", "status_id", "actor.user.type_id",
                              "user.type_id"), "int")},
    "ecs": {"@timestamp": "timestamp", "event.created": "timestamp", "event.sequence": "int",
            "event.severity": "int", "auditkeep.seq": "int", "auditkeep.v": "int"},
    "cadf": {"eventTime": "timestamp"},
}

MAX_COLUMNS = 200
MAX_PATH = 256


def column_kind(mapping: str, path: str) -> ColumnKind:
    """The type of column `path` under `mapping`: string unless listed in `_KINDS`."""
    return _KINDS.get(mapping, {}).get(path, "string")


def column_problems(columns: object) -> list[FieldProblem]:
    """Every problem with a requested column list (empty when it is usable)."""
    where = "/query/columns"
    if not isinstance(columns, list | tuple):
        return [FieldProblem(where, "columns must be a list of dotted paths",
                             "a list of strings", type(columns).__name__)]
    if not columns or len(columns) > MAX_COLUMNS:
        return [FieldProblem(where, "wrong number of columns", f"1 to {MAX_COLUMNS} columns",
                             str(len(columns)))]
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for i, col in enumerate(columns):
        if not isinstance(col, str) or not col or len(col) > MAX_PATH or "" in col.split("."):
            problems.append(FieldProblem(
                where, f"column {i} is not a dotted path",
                f"names joined by dots, at most {MAX_PATH} characters", repr(col)))
        elif col in seen:
            problems.append(FieldProblem(where, f"column {col!r} is asked for twice",
                                         "each column once", repr(col)))
        else:
            seen.add(col)
    return problems


def lookup(obj: Any, path: str) -> Any:
    """The value at dotted `path` in `obj`, or None. A key that itself contains dots
    (`@timestamp` does not, but metadata keys may) is matched whole before the path
    is split; a numeric segment indexes a list (`resources.0.uid`)."""
    while True:
        if isinstance(obj, dict):
            if path in obj:
                return obj[path]
            head, dot, path = path.partition(".")
            if not dot or head not in obj:
                return None
            obj = obj[head]
        elif isinstance(obj, list):
            head, dot, path = path.partition(".")
            if not (head.isascii() and head.isdigit()) or int(head) >= len(obj):
                return None
            obj = obj[int(head)]
            if not dot:
                return obj
        else:
            return None


def cell_text(value: Any) -> str | None:
    """A value as the text of one cell: strings as they are, everything else (numbers,
    booleans, objects, lists) as compact JSON; None stays None (an empty cell)."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
