"""Sigma rules, parsed by pySigma, compiled into the engine's matchers.

pySigma parses the YAML, the condition and the modifiers; a processing pipeline
(`PIPELINE`) maps field names by logsource: Kubernetes audit and CloudTrail fields
read the raw object the source kept (`raw.<field>`), and the rule also requires that
raw format, so public SigmaHQ rules match the events those sources took in, unchanged.
`product: auditkeep` rules name our own fields. Our code is the evaluator: each
condition node becomes a closure over an `EventView`, compiled once at load (pySigma has
no Python-evaluating backend). Anything it cannot evaluate is refused with the reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType
from sigma.exceptions import SigmaError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddFieldnamePrefixTransformation
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from auditkeep.detect.rules import LEVELS, Condition, Discriminator, Matcher, Rule, RuleError
from auditkeep.detect.view import EventView

#: logsource (product, service) -> the raw format its events carry
RAW_FORMATS = {("kubernetes", "audit"): "k8s.audit", ("aws", "cloudtrail"): "aws.cloudtrail"}

PIPELINE = ProcessingPipeline(name="auditkeep", priority=20, items=[
    ProcessingItem(identifier=f"auditkeep-{fmt}", transformation=AddFieldnamePrefixTransformation(
        "raw."), rule_conditions=[LogsourceCondition(product=p, service=s)])
    for (p, s), fmt in RAW_FORMATS.items()])

_CORRELATION_KINDS = {
    SigmaCorrelationType.EVENT_COUNT: "threshold",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
}
Test = Callable[[Any], bool]


def load_sigma(text: str, file: str) -> list[Rule]:
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
        collection.resolve_rule_references()
    except SigmaError as exc:
        raise RuleError(file, f"Sigma: {exc}") from None
    found_errors = list(getattr(collection, "errors", []) or [])
    for item in collection.rules:
        found_errors += list(getattr(item, "errors", []) or [])
    if found_errors:  # every problem pySigma found, not just the first
        raise RuleError(file, "Sigma: " + "; ".join(str(e) for e in found_errors))
    base: dict[str, Rule] = {}
    out: list[Rule] = []
    correlations = []
    for item in collection.rules:
        if isinstance(item, SigmaCorrelationRule):
            correlations.append(item)
            continue
        assert isinstance(item, SigmaRule)
        rule = _rule(item, file)
        for key in (str(item.id), item.name):
            if key and key != "None":
                base[key] = rule
        out.append(rule)
    for corr in correlations:
        out.append(_correlation(corr, base, file))
    return out


def _common(item: Any, file: str) -> dict[str, Any]:
    level = item.level.name.lower() if item.level is not None else "medium"
    if level not in LEVELS:
        level = "medium"
    rid = str(item.id) if item.id is not None else (item.name or "")
    if not rid:
        raise RuleError(file, f"Sigma rule {item.title!r} has neither id nor name")
    return {"id": rid, "title": item.title or rid, "level": level,
            "tags": tuple(str(t) for t in (item.tags or ())),
            "description": item.description or "", "origin": "sigma", "file": file}


def _rule(item: SigmaRule, file: str) -> Rule:
    where = f"{file}: Sigma rule {item.title!r}"
    ls = item.logsource
    key = (ls.product, ls.service)
    if key not in RAW_FORMATS and ls.product != "auditkeep":
        raise RuleError(where, f"logsource product={ls.product} service={ls.service} is "
                               "not one auditkeep receives (kubernetes/audit, "
                               "aws/cloudtrail, auditkeep)")
    _check_modifiers(item, where)
    PIPELINE.apply(item)
    fmt = RAW_FORMATS.get(key)  # type: ignore[arg-type]
    try:
        conditions = [c.parse() for c in item.detection.parsed_condition]
    except SigmaError as exc:
        raise RuleError(where, f"Sigma condition: {exc}") from None
    tests = [_node(c, where) for c in conditions]
    if fmt is None:
        def matcher(v: EventView) -> bool:
            return any(t(v) for t in tests)
    else:
        def matcher(v: EventView) -> bool:
            return v.raw_format == fmt and any(t(v) for t in tests)
    disc = _discriminator(conditions[0]) if len(conditions) == 1 else None
    return Rule(kind="match", matcher=matcher, discriminator=disc, generate=True,
                options={"raw_format": fmt}, **_common(item, file))


def _correlation(corr: SigmaCorrelationRule, base: dict[str, Rule], file: str) -> Rule:
    where = f"{file}: Sigma correlation {corr.title!r}"
    members = []
    for ref in corr.rules or ():
        target = getattr(ref, "rule", None)
        key = str(target.id) if target is not None and target.id else str(ref.reference)
        found = base.get(key) or base.get(str(ref.reference))
        if found is None:
            raise RuleError(where, f"refers to rule {ref.reference!r}, which is not in this "
                                   "file")
        members.append(found)
        found.generate = bool(getattr(target, "_generate", False) or
                              getattr(corr, "generate", False))
    if getattr(corr, "aliases", None) and corr.aliases.aliases:
        raise RuleError(where, "field aliases in correlations are not supported")
    kind = _CORRELATION_KINDS.get(corr.type)
    if kind is None:
        raise RuleError(where, f"correlation type {corr.type} is not supported")
    # Group-by and value fields are the members' field names, mapped as they were.
    formats = {m.options.get("raw_format") for m in members}
    if len(formats) != 1:
        raise RuleError(where, "its rules come from different logsources; group-by fields "
                               "would need aliases, which are not supported")
    raw = formats != {None}
    group = tuple(("raw." if raw else "") + g for g in (corr.group_by or ()))
    cond = None
    value_field: tuple[str, ...] = ()
    if kind in ("threshold", "value_count"):
        c: Any = corr.condition
        if not hasattr(c, "op"):
            raise RuleError(where, "extended (and/or) correlation conditions are not supported")
        op = c.op.name.lower() if hasattr(c.op, "name") else str(c.op)
        op = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "eq": "eq"}.get(op, op)
        if op not in ("gt", "gte", "eq", "lt", "lte"):
            raise RuleError(where, f"correlation condition {op!r} is not supported")
        if op in ("lt", "lte"):
            raise RuleError(where, "a count below a threshold is only known when the window "
                                   "ends: not supported (use a native silence rule)")
        cond = Condition(op, int(c.count))  # type: ignore[arg-type]
        if kind == "value_count":
            if not c.fieldref:
                raise RuleError(where, "value_count needs condition.field")
            field_ref = str(c.fieldref if isinstance(c.fieldref, str) else c.fieldref[0])
            value_field = (("raw." if raw else "") + field_ref,)
    tests = [m.matcher for m in members]

    def matcher(v: EventView) -> bool:
        return any(t(v) for t in tests)
    return Rule(kind=kind, matcher=matcher, group_by=group,  # type: ignore[arg-type]
                window=float(corr.timespan.seconds), condition=cond, value_field=value_field,
                members=tuple(members), **_common(corr, file))


#: Value modifiers the evaluator implements (pySigma folds contains/startswith/endswith
#: and base64 into the value; the others are tested here). Any other is refused.
SUPPORTED_MODIFIERS = frozenset({
    "SigmaAllModifier", "SigmaBase64Modifier", "SigmaCIDRModifier",
    "SigmaCaseSensitiveModifier", "SigmaContainsModifier", "SigmaEndswithModifier",
    "SigmaStartswithModifier", "SigmaExistsModifier", "SigmaFieldReferenceModifier",
    "SigmaGreaterThanModifier", "SigmaGreaterThanEqualModifier", "SigmaLessThanModifier",
    "SigmaLessThanEqualModifier", "SigmaRegularExpressionModifier",
    "SigmaRegularExpressionIgnoreCaseFlagModifier",
    "SigmaRegularExpressionMultilineFlagModifier",
    "SigmaRegularExpressionDotAllFlagModifier"})


def _check_modifiers(item: SigmaRule, where: str) -> None:
    def walk(node: Any) -> None:
        for d in getattr(node, "detection_items", ()) or ():
            walk(d)
        for m in getattr(node, "modifiers", ()) or ():
            if m.__name__ not in SUPPORTED_MODIFIERS:
                name = m.__name__.removeprefix("Sigma").removesuffix("Modifier")
                raise RuleError(where, f"value modifier {name!r} is not supported")
    for detection in item.detection.detections.values():
        walk(detection)


# conditions ----------------------------------------------------------------------


def _node(n: Any, where: str) -> Matcher:
    if isinstance(n, ConditionAND):
        parts = [_node(a, where) for a in n.args]
        return lambda v: all(p(v) for p in parts)
    if isinstance(n, ConditionOR):
        parts = [_node(a, where) for a in n.args]
        return lambda v: any(p(v) for p in parts)
    if isinstance(n, ConditionNOT):
        inner = _node(n.args[0], where)
        return lambda v: not inner(v)
    if isinstance(n, ConditionFieldEqualsValueExpression):
        return _field(n.field, n.value, where)
    if isinstance(n, ConditionValueExpression):
        raise RuleError(where, "keyword (field-less) searches are not supported: name the "
                               "field")
    raise RuleError(where, f"condition {type(n).__name__} is not supported")


def _field(path: str, value: Any, where: str) -> Matcher:
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return lambda v: bool(v.values(path)) == want
    if isinstance(value, SigmaNull):
        return lambda v: not v.values(path)
    if isinstance(value, SigmaFieldReference):
        other = value.field

        def same(v: EventView) -> bool:
            mine = {_text(x) for x in v.values(path)}
            return any(_text(x) in mine for x in v.values(other))
        return same
    test = _value_test(value, where)
    return lambda v: any(test(x) for x in v.values(path))


def _value_test(value: Any, where: str) -> Test:
    if isinstance(value, SigmaString):
        rx = _string_regex(value)
        return lambda x: not isinstance(x, dict | list) and rx.fullmatch(_text(x)) is not None
    if isinstance(value, SigmaBool):
        want = bool(value.boolean)
        return lambda x: x is want or _text(x) == ("true" if want else "false")
    if isinstance(value, SigmaNumber):
        num = value.number
        return lambda x: _number(x) == num
    if isinstance(value, SigmaCompareExpression):
        num, op = value.number.number, value.op
        ops: dict[str, Callable[[float], bool]] = {
            "LT": lambda a: a < num, "LTE": lambda a: a <= num,
            "GT": lambda a: a > num, "GTE": lambda a: a >= num}
        cmp = ops[op.name]
        return lambda x: (n := _number(x)) is not None and cmp(n)
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for f in getattr(value, "flags", ()) or ():
            flags |= {"i": re.I, "m": re.M, "s": re.S}.get(
                getattr(f, "name", str(f))[:1].lower(), 0)
        pattern = str(value.regexp)
        try:
            rx = re.compile(pattern, flags)
        except re.error as exc:
            raise RuleError(where, f"regular expression {pattern!r}: {exc}") from None
        return lambda x: not isinstance(x, dict | list) and rx.search(_text(x)) is not None
    if isinstance(value, SigmaCIDRExpression):
        net = ipaddress.ip_network(str(value.cidr), strict=False)

        def in_net(x: Any) -> bool:
            try:
                return ipaddress.ip_address(str(x)) in net
            except ValueError:
                return False
        return in_net
    raise RuleError(where, f"value type {type(value).__name__} is not supported")


def _string_regex(value: SigmaString) -> re.Pattern[str]:
    out = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(part, str):
            out.append(re.escape(part))
        else:
            raise RuleError("Sigma", f"placeholder {part} is not supported")
    cased = isinstance(value, SigmaCasedString)
    return re.compile("".join(out), re.S if cased else re.S | re.I)


def _text(x: Any) -> str:
    if x is True:
        return "true"
    if x is False:
        return "false"
    return str(x)


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return x
    try:
        return float(str(x))
    except ValueError:
        return None


def _discriminator(n: Any) -> Discriminator | None:
    """Plain (wildcard-free) string equalities on one field that the condition requires."""
    items = n.args if isinstance(n, ConditionAND) else [n]
    for item in items:
        arms = item.args if isinstance(item, ConditionOR) else [item]
        path, values = None, set()
        for arm in arms:
            if not isinstance(arm, ConditionFieldEqualsValueExpression) or \
                    not isinstance(arm.value, SigmaString) or arm.value.contains_special() or \
                    (path is not None and arm.field != path) or \
                    isinstance(arm.value, SigmaCasedString):
                path = None
                break
            plain = arm.value.to_plain()
            if plain.casefold() in ("true", "false") or _number(plain) is not None:
                path = None  # the event may hold it as a number or boolean: not indexable
                break
            path = arm.field
            values.add(plain.casefold())
        if path is not None and values:
            return Discriminator(path, frozenset(values), casefold=True)
    return None
