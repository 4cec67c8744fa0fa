"""Decode a request body into schema v1 events, reporting every invalid event at once.

The fast path decodes the whole body in one msgspec call. Only when that fails do we
decode event by event, so a bad batch costs more than a good one, never the reverse.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import orjson

from auditkeep.errors import FieldProblem, PayloadTooLarge, ValidationError
from auditkeep.log.canonical import format_es6_number
from auditkeep.pipeline.schema import Event

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_EVENTS = 10_000
MAX_EVENT_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 8
MAX_METADATA_KEYS = 100
MAX_SAFE_INT = 2**53 - 1

_one = msgspec.json.Decoder(Event)
_many = msgspec.json.Decoder(list[Event])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_EXPECTED = re.compile(r"Expected `(?P<exp>[^`]*)`, got `(?P<got>[^`]*)`")


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def problem_from_msgspec(err: Exception, index: int | None, prefix: str = "") -> FieldProblem:
    """Turn msgspec's "Expected `str`, got `int` - at `$.actor.id`" into a FieldProblem."""
    text = str(err)
    m = _AT.match(text)
    msg, path = (m.group("msg"), m.group("path") or "") if m else (text, "")
    pointer = prefix + "".join(
        "/" + _pointer_escape(name or idx)  # findall gives "" for the group that missed
        for name, idx in _PATH_PART.findall(path)
    )
    expected = actual = None
    if u := _UNKNOWN.search(msg):
        pointer += "/" + _pointer_escape(u.group("field"))
        expected, actual = "a schema v1 field (free-form data belongs in metadata)", "unknown field"
    elif mi := _MISSING.search(msg):  # point at the missing field, not at its parent
        pointer += "/" + _pointer_escape(mi.group("field"))
        expected, actual = "a value (the field is required)", "missing"
    elif e := _EXPECTED.search(msg):
        expected, actual = e.group("exp"), e.group("got")
    return FieldProblem(pointer or "/", msg, expected=expected, actual=actual, index=index)


def split_ndjson(body: bytes) -> list[bytes]:
    """Non-blank lines of an NDJSON body."""
    return [line for line in body.split(b"\n") if line.strip()]


def check_utf8(body: bytes) -> None:
    """Raise a 400 naming the first byte that is not UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"request body is not valid UTF-8 (byte {exc.start})",
            problems=[FieldProblem("/", "invalid UTF-8", "UTF-8 text", f"byte {exc.start}")],
        ) from None


def decode_events(body: bytes, *, ndjson: bool) -> list[Event]:
    """Decode a JSON object, JSON array or NDJSON body into events, or raise with all problems."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
            problems=[FieldProblem("/", "body too large", f"<= {MAX_BODY_BYTES} bytes",
                                   f"{len(body)} bytes")],
        )
    check_utf8(body)
    if ndjson:
        lines = split_ndjson(body)
        _check_count(len(lines))
        try:
            events = _many.decode(b"[" + b",".join(lines) + b"]")
            if len(events) == len(lines):  # a line holding "{..},{..}" must not pass as two
                return events
        except msgspec.DecodeError:
            pass
        return _decode_each(lines)
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            events = _many.decode(body)
        except msgspec.DecodeError:
            try:
                raws = _raw_list.decode(body)
            except msgspec.DecodeError as exc:
                raise ValidationError(
                    f"malformed JSON: {exc}", problems=[problem_from_msgspec(exc, None)]
                ) from None
            _check_count(len(raws))
            return _decode_each(raws)
        _check_count(len(events))
        return events
    try:
        return [_one.decode(body)]
    except msgspec.DecodeError as exc:
        raise ValidationError(
            f"invalid event: {exc}", problems=[problem_from_msgspec(exc, 0 if stripped.startswith(
                b"{") else None)]
        ) from None


def _check_count(n: int) -> None:
    if n > MAX_EVENTS:
        raise PayloadTooLarge(
            f"{n} events in one request; the limit is {MAX_EVENTS}",
            problems=[FieldProblem("/", "too many events", f"<= {MAX_EVENTS}", str(n))],
        )
    if n == 0:
        raise ValidationError(
            "the request holds no events", problems=[FieldProblem("/", "no events", ">= 1", "0")]
        )


def _decode_each(items: list[bytes] | list[msgspec.Raw]) -> list[Event]:
    events: list[Event] = []
    problems: list[FieldProblem] = []
    for i, raw in enumerate(items):
        try:
            events.append(_one.decode(raw))
        except msgspec.DecodeError as exc:
            problems.append(problem_from_msgspec(exc, i, prefix=f"/{i}"))
    if problems:
        raise ValidationError(f"{len(problems)} of {len(items)} events are invalid",
                              problems=problems)
    return events


def scan_free_form(value: Any, pointer: str, *, canonicalize: bool = True
                   ) -> tuple[list[FieldProblem], bool]:
    """Check free-form JSON (metadata, change values) and make it ready for the fast
    canonical encoder: finite floats become their RFC 8785 (ES6) text as orjson
    fragments, in place. Returns the problems and whether the value is *plain*, i.e.
    orjson with sorted keys now writes its RFC 8785 form (False when a key holds a
    character above U+FFFF, where UTF-16 and code-point key order differ).
    `canonicalize=False` only checks (the SDK: the server canonicalises)."""
    if type(value) is dict and len(value) <= MAX_METADATA_KEYS:
        # Fast path: a flat object of strings, safe integers, booleans and nulls.
        for k, v in value.items():
            t = type(v)
            if not (k.isascii() and (t is str or v is None or t is bool or (
                    t is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT))):
                break
        else:
            return [], True
    problems: list[FieldProblem] = []
    plain = True
    floats: list[tuple[Any, Any, float]] = []
    keys = 0
    stack: list[tuple[Any, str, int]] = [(value, pointer, 1)]
    while stack:
        node, at, depth = stack.pop()
        if type(node) is dict:
            items: Any = node.items()
            keys += len(node)
        elif type(node) is list:
            items = enumerate(node)
        else:
            continue
        if depth > MAX_METADATA_DEPTH:
            problems.append(FieldProblem(at, "nested too deeply", f"depth <= {MAX_METADATA_DEPTH}",
                                         f"depth {depth}"))
            continue
        for k, v in list(items):
            if type(k) is str and not k.isascii() and max(k) > "\uffff":
                plain = False
            t = type(v)
            if t is dict or t is list:
                stack.append((v, f"{at}/{_pointer_escape(str(k))}", depth + 1))
            elif t is int and not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                problems.append(_unsafe_int(f"{at}/{_pointer_escape(str(k))}", v))
            elif t is float:
                if math.isfinite(v):
                    floats.append((node, k, v))
                else:
                    problems.append(FieldProblem(f"{at}/{_pointer_escape(str(k))}",
                                                 "number too large for a double",
                                                 "a finite number", str(v)))
    if keys > MAX_METADATA_KEYS:
        problems.append(FieldProblem(pointer, "too many keys",
                                     f"<= {MAX_METADATA_KEYS} keys in total", f"{keys} keys"))
    if plain and canonicalize:  # otherwise the general encoder formats the floats itself
        for node, k, v in floats:
            node[k] = orjson.Fragment(format_es6_number(v))
    return problems, plain


def scan_change_value(change: dict[str, Any], name: str, pointer: str
                      ) -> tuple[list[FieldProblem], bool]:
    """`scan_free_form` for `change[name]`, which unlike metadata may be a bare number:
    a float there is replaced by its RFC 8785 text in `change` itself (orjson would
    otherwise write 0.0 as `0.0` and 1e21 as `1e21`, where RFC 8785 has `0` and `1e+21`)."""
    value = change[name]
    if type(value) is float:
        if not math.isfinite(value):
            return [FieldProblem(pointer, "number too large for a double", "a finite number",
                                 str(value))], True
        change[name] = orjson.Fragment(format_es6_number(value))
        return [], True
    return scan_free_form(value, pointer)


def _unsafe_int(at: str, v: int) -> FieldProblem:
    return FieldProblem(at, "integer outside the IEEE-754 safe range (RFC 8785 would lose it)",
                        f"|n| <= {MAX_SAFE_INT}", str(v))
