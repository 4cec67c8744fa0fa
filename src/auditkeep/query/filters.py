"""The filter parameters of `GET /v1/events` (`actor=`, `action=iam.*`, `q=`) as a query AST,
so both search endpoints run through one compiler."""

from __future__ import annotations

from collections.abc import Mapping

from auditkeep.query.ast import All, And, Eq, Literal_, Node, Text, Wildcard
from auditkeep.query.lang import error
from auditkeep.query.text import tokens

#: Parameter -> query field path.
FILTER_FIELDS = {
    "actor": "actor.id", "action": "action", "resource_type": "resource.type",
    "resource_id": "resource.id", "outcome": "outcome", "category": "category",
    "source_service": "source.service",
}


def filters_query(params: Mapping[str, str]) -> Node:
    parts: list[Node] = []
    for param, path in FILTER_FIELDS.items():
        value = params.get(param)
        if value is None:
            continue
        if param == "action" and value.endswith(".*"):
            parts.append(Wildcard(path, value.replace("\\", "\\\\")[:-1]
                                  .replace("*", "\\*").replace("?", "\\?") + "*"))
        else:
            parts.append(Eq(path, Literal_(value)))
    q = params.get("q")
    if q:
        for term in q.split():
            if not tokens(term):
                raise error(q, q.index(term) + 1, f"{term!r} has no letters or digits",
                            "a word", "q")
            parts.append(Text(term))
    if not parts:
        return All()
    return parts[0] if len(parts) == 1 else And(tuple(parts))
