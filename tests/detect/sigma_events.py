"""Events made from a Sigma rule itself: one its condition accepts, and near misses.

Walks the rule's parsed condition (after our pipeline) and assigns each field a value
that satisfies it, independently of detect/sigma.py's evaluator."""

from __future__ import annotations

import re
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from auditkeep.detect.sigma import PIPELINE

Assign = dict[str, Any]
ABSENT = object()


def satisfy(node: Any, want: bool = True) -> Assign:
    if isinstance(node, ConditionNOT):
        return satisfy(node.args[0], not want)
    if isinstance(node, ConditionAND | ConditionOR):
        every = isinstance(node, ConditionAND) == want  # AND true / OR false: all parts
        if not every:
            return satisfy(node.args[0], want)
        out: Assign = {}
        for a in node.args:
            for k, v in satisfy(a, want).items():
                out.setdefault(k, v)
        return out
    assert isinstance(node, ConditionFieldEqualsValueExpression)
    return {node.field: value_for(node.value) if want else counter(node.value)}


def value_for(v: Any) -> Any:
    if isinstance(v, SigmaString):
        return "".join("" if p == SpecialChars.WILDCARD_MULTI else "x"
                       if p == SpecialChars.WILDCARD_SINGLE else p for p in v.s)
    if isinstance(v, SigmaBool):
        return v.boolean
    if isinstance(v, SigmaNumber):
        return v.number
    if isinstance(v, SigmaCompareExpression):
        op = v.op.name
        return v.number.number + (1 if op.startswith("GT") else -1)
    if isinstance(v, SigmaRegularExpression):
        return re.sub(r"\\(.)", r"\1", re.sub(r"\.[+*]", "x", str(v.regexp)).strip("^$"))
    if isinstance(v, SigmaCIDRExpression):
        return str(next(iter(__import__("ipaddress").ip_network(str(v.cidr)).hosts())))
    if isinstance(v, SigmaExists):
        return "present" if v.exists else ABSENT
    if isinstance(v, SigmaNull):
        return ABSENT
    raise TypeError(type(v).__name__)


def counter(v: Any) -> Any:
    if isinstance(v, SigmaExists):
        return ABSENT if v.exists else "present"
    if isinstance(v, SigmaNull):
        return "present"
    return ABSENT  # an absent field equals nothing


def raw_object(assign: Assign) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in assign.items():
        if value is ABSENT:
            continue
        parts = path.removeprefix("raw.").split(".")
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return root


def assignments(rule: SigmaRule) -> Assign:
    PIPELINE.apply(rule)
    return satisfy(rule.detection.parsed_condition[0].parse())
