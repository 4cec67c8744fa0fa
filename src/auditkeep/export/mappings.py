"""The registry of mappings: a mapping turns one stored record into one dict in a
standard schema. Each is a pure function of the record, so an export of the same
records is the same bytes every time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.export.cadf import to_cadf
from auditkeep.export.ecs import to_ecs
from auditkeep.export.ocsf import to_ocsf

Mapper = Callable[[dict[str, Any]], dict[str, Any]]

MAPPINGS = ("auditkeep", "ocsf", "ecs", "cadf")


def as_stored(record: dict[str, Any]) -> dict[str, Any]:
    """The `auditkeep` mapping: the stored record as it is."""
    return record


_MAPPERS: dict[str, Mapper] = {"auditkeep": as_stored, "ocsf": to_ocsf, "ecs": to_ecs,
                               "cadf": to_cadf}


def mapping_problem(mapping: object) -> FieldProblem | None:
    """The problem with a `mapping` query value, or None if it names a mapping."""
    if mapping in _MAPPERS:
        return None
    return FieldProblem("/query/mapping", "unknown mapping", " or ".join(MAPPINGS),
                        repr(mapping))


def mapper(mapping: str) -> Mapper:
    """The function that maps a stored record under `mapping` (one of `MAPPINGS`);
    `ValidationError` for any other name."""
    problem = mapping_problem(mapping)
    if problem is not None:
        raise ValidationError(f"unknown export mapping {mapping!r}", problems=[problem])
    return _MAPPERS[mapping]
