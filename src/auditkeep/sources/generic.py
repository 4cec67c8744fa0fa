"""Declarative mappings for any JSON producer: schema v1 fields read by JSON pointer.

A mapping is configuration (`sources.generic[].map` in the server's YAML file, see
docs/pipeline.md): each schema v1 field, named by its dotted path, takes either the value
at a JSON pointer (RFC 6901) in the producer's object or a constant. `GenericMapping`
is the runtime object built from it; calling it maps one decoded object to one event
dict, or raises `ValidationError` naming every pointer that was missing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec.inspect as mi
import orjson

from auditkeep.errors import ConfigError, FieldProblem, ValidationError
from auditkeep.pipeline.schema import Event

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
#: Set by the server from the caller's token, never from a producer's payload.
EXCLUDED_TARGETS = frozenset({"tenant"})
SPEC_KEYS = ("pointer", "const", "optional", "default")


@dataclass(frozen=True, slots=True)
class _Targets:
    """What schema v1 lets a map set, read from the schema itself."""

    every: frozenset[str]  # each field, dotted: "action", "actor", "actor.id", ...
    strings: frozenset[str]  # the string-typed ones (an integer read there becomes text)
    free: frozenset[str]  # objects whose sub-fields are free-form: "metadata"
    required: dict[str, tuple[str, ...]]  # object ("" for the event) -> its required fields


def _targets() -> _Targets:
    every: set[str] = set()
    strings: set[str] = set()
    free: set[str] = set()
    required: dict[str, tuple[str, ...]] = {}

    def walk(info: mi.StructType, prefix: str) -> None:
        required[prefix.rstrip(".")] = tuple(
            prefix + f.name for f in info.fields if f.required)
        for field in info.fields:
            name = prefix + field.name
            if name in EXCLUDED_TARGETS:
                continue
            every.add(name)
            kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
            for kind in kinds:
                if isinstance(kind, mi.StructType):
                    walk(kind, name + ".")
                elif isinstance(kind, mi.StrType):
                    strings.add(name)
                elif isinstance(kind, mi.DictType):
                    free.add(name)

    info = mi.type_info(Event)
    if not isinstance(info, mi.StructType):  # pragma: no cover - a fact about our schema
        raise TypeError("schema v1 Event is not a struct")
    walk(info, "")
    return _Targets(frozenset(every), frozenset(strings), frozenset(free), required)


_SCHEMA = _targets()
#: Every schema v1 field a map may set (dotted), besides `metadata.<key>`.
TARGETS = _SCHEMA.every
STRING_TARGETS = _SCHEMA.strings


def missing_targets(given: set[str]) -> list[str]:
    """The fields schema v1 requires that `given` (dotted targets) leaves unset: the
    event's own (action, actor.id, actor.type, outcome), and those of each object a
    target starts (resource.type with resource.id)."""
    out: list[str] = []

    def need(obj: str) -> None:
        for f in _SCHEMA.required.get(obj, ()):
            if f in given:
                continue
            if f in _SCHEMA.required:
                need(f)
            elif f not in out:
                out.append(f)

    need("")
    for obj in _SCHEMA.required:
        if obj and obj not in given and any(g.startswith(obj + ".") for g in given):
            need(obj)
    return out


#: What every map must give for its events to be valid schema v1 (`id` is derived).
REQUIRED_TARGETS = tuple(missing_targets(set()))
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one event field is filled: from `pointer` (required unless `optional`, or
    `default` when absent) or a constant."""

    target: str  # dotted schema v1 path, e.g. "actor.id"
    pointer: str | None = None  # RFC 6901; None for a constant
    const: Any = None
    optional: bool = False
    default: Any = _MISSING

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.target.split("."))


#: A problem in a map's configuration: (path under the map, message).
MapProblem = tuple[tuple[str | int, ...], str]


def parse_pointer(text: str) -> tuple[str, ...] | None:
    """The reference tokens of an RFC 6901 JSON pointer, or None when it is malformed."""
    if text == "":
        return ()
    if not text.startswith("/") or re.search(r"~(?![01])", text):
        return None
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/"))


def parse_map(spec: Any) -> tuple[tuple[FieldRule, ...], list[MapProblem]]:
    """Check a `map` from configuration and turn it into rules; every problem is
    reported (its path relative to the map), never only the first."""
    problems: list[MapProblem] = []
    if not isinstance(spec, Mapping) or not spec:
        got = "an empty mapping" if isinstance(spec, Mapping) else _show(spec)
        problems.append(((), f"expected a mapping of event fields (at least "
                             f"{', '.join(REQUIRED_TARGETS)}) to JSON pointers or "
                             f"{{const: ...}}, got {got}"))
        return (), problems
    rules: list[FieldRule] = []
    for target, value in spec.items():
        at: tuple[str | int, ...] = (str(target),)
        if not isinstance(target, str) or not _is_target(target):
            problems.append((at, f"not a schema v1 field a map may set (e.g. action, "
                                 f"actor.id, resource.type, metadata.<key>), got {target!r}"))
            continue
        rule = _rule(target, value, at, problems)
        if rule is not None:
            rules.append(rule)
    given = {r.target for r in rules}
    for rule in rules:
        parts = rule.path
        for n in range(1, len(parts)):
            parent = ".".join(parts[:n])
            if parent in given:
                problems.append(((rule.target,), f"conflicts with {parent!r}, which sets the "
                                                 "whole object"))
    bad = {str(p[0][0]) for p in problems if p[0]}
    missing = [t for t in missing_targets(given) if t not in bad]
    if missing:
        problems.append(((), f"missing {', '.join(missing)} (required by schema v1; use "
                             "{const: ...} for a fixed value)"))
    return tuple(rules), problems


def _is_target(target: str) -> bool:
    if target in TARGETS:
        return True
    head, _, rest = target.partition(".")
    return head in _SCHEMA.free and bool(rest) and all(rest.split("."))


def _rule(target: str, value: Any, at: tuple[str | int, ...], problems: list[MapProblem]
          ) -> FieldRule | None:
    if isinstance(value, str):
        if parse_pointer(value) is None:
            problems.append((at, _bad_pointer(value)))
            return None
        return FieldRule(target, pointer=value)
    if not isinstance(value, Mapping):
        problems.append((at, f"expected a JSON pointer such as \"/sender/login\" or a mapping "
                             f"with pointer or const, got {_show(value)}"))
        return None
    before = len(problems)
    for key in value:
        if key not in SPEC_KEYS:
            problems.append(((*at, str(key)),
                             f"unknown key (expected one of {', '.join(SPEC_KEYS)})"))
    if ("pointer" in value) == ("const" in value):
        problems.append((at, "give exactly one of pointer or const"))
        return None
    if "const" in value:
        for key in ("optional", "default"):
            if key in value:
                problems.append(((*at, key), "only with pointer"))
        if not _is_json(value["const"]):
            problems.append(((*at, "const"), f"expected a JSON value, got {_show(value['const'])}"))
        if value["const"] is None:
            problems.append(((*at, "const"), "expected a value, got null (leave the field out)"))
        return None if len(problems) > before else FieldRule(target, const=value["const"])
    pointer = value["pointer"]
    if not isinstance(pointer, str) or parse_pointer(pointer) is None:
        problems.append(((*at, "pointer"), _bad_pointer(pointer)))
    optional = value.get("optional", False)
    if not isinstance(optional, bool):
        problems.append(((*at, "optional"), f"expected true or false, got {_show(optional)}"))
    default = value.get("default", _MISSING)
    if default is not _MISSING and (default is None or not _is_json(default)):
        problems.append(((*at, "default"), f"expected a JSON value, got {_show(default)}"))
    if default is not _MISSING and optional is True:
        problems.append(((*at, "default"), "give optional or default, not both"))
    if len(problems) > before:
        return None
    return FieldRule(target, pointer=pointer, optional=optional, default=default)


def _bad_pointer(value: Any) -> str:
    return (f"expected a JSON pointer (RFC 6901: \"\" or \"/a/b\", ~0 for ~ and ~1 for /), "
            f"got {_show(value)}")


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class GenericMapping:
    """One producer's JSON object in, one schema v1 event dict out.

    Rules are resolved once here; per object the work is a pointer walk per field.
    A required pointer with nothing (or null) at it is a problem naming that pointer;
    every problem of an object is raised at once. Integers read into string fields
    (ids, names) become their decimal text. Without an `id` rule the id is derived from
    the object's content, so a producer's retry of the same object is stored once."""

    __slots__ = ("_rules", "name", "raw_format")

    def __init__(self, name: str, rules: tuple[FieldRule, ...]) -> None:
        self.name = name
        self.raw_format = f"generic.{name}"
        compiled = []
        for rule in rules:
            tokens = None if rule.pointer is None else parse_pointer(rule.pointer)
            compiled.append((rule, rule.path, tokens, rule.target in STRING_TARGETS))
        self._rules = tuple(compiled)

    @classmethod
    def from_config(cls, name: str, spec: Any) -> GenericMapping:
        """Build from a `map` as written in configuration; raises ConfigError listing
        every problem."""
        rules, problems = parse_map(spec)
        if not _NAME.match(name):
            problems.insert(0, ((), f"name must match {NAME_PATTERN}, got {name!r}"))
        if problems:
            shown = "; ".join(f"map{''.join(f'.{p}' for p in at)}: {m}" for at, m in problems)
            raise ConfigError(f"generic source {name!r}: {shown}", problems=[
                FieldProblem("/map" + "".join(f"/{p}" for p in at), m) for at, m in problems])
        return cls(name, rules)

    def __call__(self, obj: Any, pointer: str = "") -> dict[str, Any]:
        event: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        for rule, path, tokens, stringify in self._rules:
            if tokens is None:
                value = rule.const
                if isinstance(value, dict | list):  # stages may change events in place
                    value = copy.deepcopy(value)
            else:
                value = _resolve(obj, tokens)
                if value is _MISSING or value is None:
                    if rule.default is not _MISSING:
                        value = copy.deepcopy(rule.default)
                    elif rule.optional:
                        continue
                    else:
                        what = "null" if value is None else "missing"
                        problems.append(FieldProblem(
                            pointer + (rule.pointer or ""),
                            f"{rule.pointer or '(the whole object)'} is {what}: "
                            f"map {rule.target} needs it",
                            "a value", what))
                        continue
                if stringify and type(value) is int:
                    value = str(value)
            _place(event, path, value)
        if problems:
            detail = "; ".join(p.detail for p in problems)
            raise ValidationError(f"cannot map object to an event ({self.name}): {detail}",
                                  problems=problems)
        if "id" not in event:
            event["id"] = f"{self.name}:sha256:{_content_digest(obj)}"
        return event


def _resolve(obj: Any, steps: tuple[str, ...]) -> Any:
    for step in steps:
        if isinstance(obj, Mapping):
            if step not in obj:
                return _MISSING
            obj = obj[step]
        elif isinstance(obj, list):
            if not (step.isascii() and step.isdigit()) or (step != "0" and step.startswith("0")):
                return _MISSING
            i = int(step)
            if i >= len(obj):
                return _MISSING
            obj = obj[i]
        else:
            return _MISSING
    return obj


def _place(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = event
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _content_digest(obj: Any) -> str:
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


__all__ = [
    "NAME_PATTERN",
    "REQUIRED_TARGETS",
    "STRING_TARGETS",
    "TARGETS",
    "FieldRule",
    "GenericMapping",
    "MapProblem",
    "missing_targets",
    "parse_map",
    "parse_pointer",
]
