"""Our own rule format: YAML whose conditions are the query language (docs/rules.md).

    rules:
      - id: bulk-export
        title: Bulk export by one actor
        kind: threshold            # match (default) | threshold | new_value | silence
        query: 'action:*.export outcome:success'   #  | sequence_gap
        group_by: [actor.id]
        window: 10m
        count: "> 20"
        level: high
        tags: [exfiltration]
    tests: [...]                   # detect/testing.py

A condition matches exactly what the same query finds in search: the rule evaluates the
query's predicate (query.predicate) over the record flattened as the index holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auditkeep.detect.rules import (
    KINDS,
    LEVELS,
    Condition,
    Discriminator,
    Matcher,
    Rule,
    RuleError,
    parse_duration,
)
from auditkeep.detect.view import EventView
from auditkeep.errors import ValidationError
from auditkeep.query import fields
from auditkeep.query.ast import And, Eq, Node, Or
from auditkeep.query.lang import parse
from auditkeep.query.predicate import compile_predicate

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_COUNT = re.compile(r"\s*(>=|<=|==|=|>|<)\s*(\d+)\s*")
_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "eq", "==": "eq"}
_NATIVE_KINDS = ("match", "threshold", "new_value", "silence", "sequence_gap")
_KEYS = {"id", "title", "description", "kind", "query", "level", "tags", "group_by",
         "window", "count", "fields", "period", "field", "tenants", "enabled"}


def load_native(doc: Mapping[str, Any], file: str) -> list[Rule]:
    items = doc.get("rules")
    if not isinstance(items, list) or not items:
        raise RuleError(file, "`rules` must be a non-empty list of rules")
    out = []
    for i, item in enumerate(items):
        out.append(native_rule(item, f"{file}: rules[{i}]", file))
    return out


def native_rule(item: Any, where: str, file: str) -> Rule:
    if not isinstance(item, Mapping):
        raise RuleError(where, "a rule is a mapping with at least `id` and `query`")
    unknown = sorted(set(map(str, item)) - _KEYS)
    if unknown:
        raise RuleError(where, f"unknown key {unknown[0]!r}; a rule has {', '.join(sorted(_KEYS))}")
    rid = item.get("id")
    if not isinstance(rid, str) or not ID.fullmatch(rid):
        raise RuleError(where, "`id` must be 1-100 of A-Z a-z 0-9 . _ - starting with a "
                               "letter or digit")
    where = f"{file}: rule {rid}"
    kind = item.get("kind", "match")
    if kind not in _NATIVE_KINDS:
        extra = " (those are Sigma correlations)" if kind in KINDS else ""
        raise RuleError(where, f"kind {kind!r} is not one of {', '.join(_NATIVE_KINDS)}{extra}")
    query = item.get("query", "")
    if not isinstance(query, str):
        raise RuleError(where, "`query` must be a query-language string")
    try:
        node = parse(query, param="query")
    except ValidationError as exc:
        raise RuleError(where, str(exc)) from None
    level = item.get("level", "medium")
    if level not in LEVELS:
        raise RuleError(where, f"level {level!r} is not one of {', '.join(LEVELS)}")
    rule = Rule(
        id=rid, title=_text(item, "title", where) or rid, kind=kind,
        matcher=query_matcher(node), level=level, tags=_strings(item, "tags", where),
        description=_text(item, "description", where), origin="native", file=file,
        query=query, discriminator=discriminator(node),
        group_by=_paths(item, "group_by", where), tenants=_strings(item, "tenants", where),
        enabled=bool(item.get("enabled", True)))
    _kind_options(rule, item, where)
    return rule


def _kind_options(rule: Rule, item: Mapping[str, Any], where: str) -> None:
    kind = rule.kind
    if kind == "threshold":
        rule.window = _duration(item, "window", where)
        rule.condition = _count(item.get("count"), where)
    elif kind == "new_value":
        rule.value_field = _paths(item, "fields", where)
        if not rule.value_field:
            raise RuleError(where, "a new_value rule needs `fields`: the values whose "
                                   "first appearance alerts, e.g. [actor.id, action]")
    elif kind == "silence":
        rule.window = _duration(item, "period", where)
    elif kind == "sequence_gap":
        field = item.get("field", "metadata.sequence")
        rule.value_field = _paths({"field": [field]}, "field", where)
    for key, kinds in (("window", {"threshold"}), ("count", {"threshold"}),
                       ("fields", {"new_value"}), ("period", {"silence"}),
                       ("field", {"sequence_gap"})):
        if key in item and kind not in kinds:
            raise RuleError(where, f"`{key}` is for {' and '.join(sorted(kinds))} rules, "
                                   f"not {kind}")


def query_matcher(node: Node) -> Matcher:
    pred = compile_predicate(node)

    def match(view: EventView) -> bool:
        return pred(view.doc)
    return match


def discriminator(node: Node) -> Discriminator | None:
    """A text column the query requires to hold one of a few values, if there is one:
    `action:iam.policy.update`, `(action:a OR action:b) outcome:failure`."""
    items = node.items if isinstance(node, And) else (node,)
    best: Discriminator | None = None
    for item in items:
        found = _values(item)
        if found is not None and (best is None or _rank(found[0]) < _rank(best.path)):
            best = Discriminator(found[0], frozenset(found[1]))
    return best


#: Which field to index a rule by when it tests several: the one with the most distinct
#: values in practice, so the fewest events reach the rule.
_SELECTIVE = ("id", "request_id", "trace_id", "resource.id", "action", "actor.id",
              "source.service", "resource.type", "actor.type", "severity", "category",
              "outcome")


def _rank(path: str) -> int:
    return _SELECTIVE.index(path) if path in _SELECTIVE else len(_SELECTIVE)


def _values(node: Node) -> tuple[str, set[str]] | None:
    arms = node.items if isinstance(node, Or) else (node,)
    path: str | None = None
    values: set[str] = set()
    for arm in arms:
        col = fields.COLUMNS.get(arm.field) if isinstance(arm, Eq) else None
        if not isinstance(arm, Eq) or col is None or col.kind != "text" or \
                (path is not None and arm.field != path):
            return None
        path = arm.field
        values.add(arm.value.text)
    return (path, values) if path is not None else None


def _count(value: Any, where: str) -> Condition:
    m = _COUNT.fullmatch(str(value)) if isinstance(value, str | int) else None
    if m is None:
        raise RuleError(where, "`count` must be a comparison such as \"> 20\" or \">= 5\"")
    op = _OPS[m.group(1)]
    if op in ("lt", "lte"):
        raise RuleError(where, "a count below a threshold is never known until the window "
                               "ends: write it as a silence rule")
    return Condition(op, int(m.group(2)))  # type: ignore[arg-type]


def _duration(item: Mapping[str, Any], key: str, where: str) -> float:
    seconds = parse_duration(item.get(key))
    if seconds is None:
        raise RuleError(where, f"`{key}` must be a duration such as 30s, 10m, 2h or 1d")
    return seconds


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    v = item.get(key, "")
    if not isinstance(v, str):
        raise RuleError(where, f"`{key}` must be text")
    return v


def _strings(item: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = item.get(key, [])
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise RuleError(where, f"`{key}` must be a list of strings")
    return tuple(v)


def _paths(item: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    out = []
    for p in _strings(item, key, where):
        p = fields.ALIASES.get(p, p)
        if (why := fields.check_path(p)) is not None and not p.startswith("raw."):
            raise RuleError(where, f"`{key}`: {why}")
        out.append(p)
    return tuple(out)
