"""RFC 8785 (JSON Canonicalization Scheme): the one deterministic encoding of every value
auditkeep hashes or signs, with an orjson fast path checked against a pure-Python reference.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "CanonicalizationError",
    "canonical_bytes",
    "format_es6_number",
    "reference_canonical_bytes",
]

#: Largest integer an IEEE 754 double holds exactly; I-JSON (RFC 7493) and RFC 8785 stop here.
MAX_SAFE_INTEGER = 2**53 - 1

#: Most containers nested inside one another. Far beyond any audit record, well inside
#: orjson's own limit (254) and Python's recursion limit, and it turns a circular
#: reference into an error instead of a crash.
MAX_DEPTH = 128

_TWO_53 = 2.0**53
_EXPECTED_TYPES = "dict, list, tuple, str, int, float, bool or None"

# OPT_STRICT_INTEGER makes orjson refuse integers beyond ±(2**53 - 1) instead of writing
# them; the reference encoder then raises the error that names the value and its place.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER

# RFC 8785 section 3.2.2.2: escape `"`, `\` and U+0000..U+001F only, with the short
# forms where JSON has them and lowercase \u00xx otherwise.
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_ESCAPES: dict[int, str] = {
    **{c: _SHORT_ESCAPES.get(c, f"\\u{c:04x}") for c in range(0x20)},
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


class CanonicalizationError(ValueError):
    """A value has no RFC 8785 encoding (NaN, unsafe integer, lone surrogate, bad type...)."""


class _NeedsReference(Exception):
    """The fast path met something it does not handle; the reference encoder decides."""


def canonical_bytes(value: object) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value.

    Accepts dict (str keys), list, tuple, str, int, float, bool and None, by exact type.
    Raises `CanonicalizationError` for anything RFC 8785 cannot encode.
    """
    try:
        # orjson writes NaN and Infinity as `null` and floats in its own notation, so the
        # floats must be found in the value itself: nothing in the output tells them apart.
        out = orjson.dumps(_with_es6_floats(value, 1), option=_ORJSON_OPTIONS)
    except (_NeedsReference, orjson.JSONEncodeError):
        # Unsafe integers, non-str keys, lone surrogates, unsupported types: the reference
        # encoder raises the error that says what and where.
        return reference_canonical_bytes(value)
    if not out.isascii() and _may_sort_differently(out):
        return reference_canonical_bytes(value)
    return out


def _may_sort_differently(out: bytes) -> bool:
    # orjson sorts keys by code point, RFC 8785 by UTF-16 code unit. The orders differ only
    # between a character above U+FFFF (a surrogate pair, D800.. in UTF-16) and one in
    # U+E000..U+FFFF, so output holding both a 4-byte UTF-8 lead byte (F0..F4) and a lead
    # byte of U+E000..U+FFFF (EE, EF) goes to the reference encoder. Values count as well
    # as keys: over-cautious, but rare, and byte searches are cheaper than a regex here.
    return (b"\xee" in out or b"\xef" in out) and (
        b"\xf0" in out or b"\xf1" in out or b"\xf2" in out or b"\xf3" in out or b"\xf4" in out
    )


def _with_es6_floats(x: Any, depth: int) -> Any:
    # The hot path's only Python-level work, one pass comparing exact types: `x` with each
    # float replaced by its ES6 text as a fragment orjson writes verbatim, and `x` itself
    # (no copy) when it holds no float. Containers are copied only on the way to a float.
    # Subclasses, NaN/Infinity and over-deep nesting go to the reference encoder.
    t = type(x)
    if t is dict:
        if depth > MAX_DEPTH:
            raise _NeedsReference
        changed: dict[str, Any] | None = None
        for k, v in x.items():
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            if (new := _with_es6_floats(v, depth + 1)) is not v:
                if changed is None:
                    changed = dict(x)
                changed[k] = new
        return x if changed is None else changed
    if t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise _NeedsReference
        items: list[Any] | None = None
        for i, v in enumerate(x):
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            if (new := _with_es6_floats(v, depth + 1)) is not v:
                if items is None:
                    items = list(x)
                items[i] = new
        return x if items is None else items
    if t is float and math.isfinite(x):
        return orjson.Fragment(format_es6_number(x))
    if t is str or t is int or t is bool or x is None:
        return x
    raise _NeedsReference


def format_es6_number(x: float) -> str:
    """ECMAScript Number::toString of a finite double (ECMA-262 7.1.12.1), as RFC 8785 wants.

    Raises `CanonicalizationError` for NaN and the infinities.
    """
    if not math.isfinite(x):
        raise CanonicalizationError(
            f"float {x!r} has no JSON encoding; RFC 8785 rejects NaN and Infinity"
        )
    # repr() gives the shortest digits that round-trip (the "k as small as possible" of
    # the spec); only their layout can differ from ECMAScript's.
    if x.is_integer():
        if -_TWO_53 < x < _TWO_53:
            # Below 2**53 every integer is a double and its shortest digits are its own;
            # int() also turns -0.0 into "0" as ECMAScript does.
            return str(int(x))
        text = repr(x)
    else:
        text = repr(x)
        if "e" not in text:
            # repr() writes 1e-4 <= |x| < 1e16 in plain decimals, a range inside
            # ECMAScript's (1e-7 <= |x| < 1e21), and a non-integer then looks the same.
            return text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    # With digits d1..dk, x = 0.d1..dk * 10**n: the spec's k and n.
    n = len(whole) + (int(exp) if exp else 0)
    significant = digits.lstrip("0")
    n -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    exponent = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + digits + exponent
    return sign + digits[0] + "." + digits[1:] + exponent


def reference_canonical_bytes(value: object) -> bytes:
    """RFC 8785 canonical bytes by a plain recursive walk: the oracle and the fallback."""
    out: list[str] = []
    _encode(value, out, "$", 1)
    return "".join(out).encode("utf-8")


def _encode(value: object, out: list[str], path: str, depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif type(value) is str:
        out.append(_quote(value, path))
    elif type(value) is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(
                f"integer {value} at {path} is outside ±(2**53-1): as an IEEE 754 double it "
                "would silently lose precision; send it as a string"
            )
        out.append(str(value))
    elif type(value) is float:
        if not math.isfinite(value):
            raise CanonicalizationError(
                f"float {value!r} at {path} has no JSON encoding; RFC 8785 rejects NaN and Infinity"
            )
        out.append(format_es6_number(value))
    elif type(value) is dict or type(value) is list or type(value) is tuple:
        if depth > MAX_DEPTH:
            raise CanonicalizationError(
                f"containers nested more than {MAX_DEPTH} deep at {path} (a circular reference?)"
            )
        if type(value) is dict:
            _encode_object(value, out, path, depth)
        else:
            out.append("[")
            for i, item in enumerate(value):
                if i:
                    out.append(",")
                _encode(item, out, f"{path}[{i}]", depth + 1)
            out.append("]")
    else:
        raise CanonicalizationError(
            f"expected {_EXPECTED_TYPES}, got {type(value).__qualname__} at {path}"
        )


def _encode_object(value: dict[Any, Any], out: list[str], path: str, depth: int) -> None:
    members: list[tuple[bytes, str, object, str]] = []
    for key, item in value.items():
        if type(key) is not str:
            raise CanonicalizationError(
                f"object keys must be str, got {type(key).__qualname__} {key!r} at {path}"
            )
        member_path = f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"
        quoted = _quote(key, member_path)
        # Big-endian UTF-16 bytes compare exactly as RFC 8785's UTF-16 code units do.
        members.append((key.encode("utf-16-be"), quoted, item, member_path))
    members.sort(key=lambda m: m[0])
    out.append("{")
    for i, (_, quoted, item, member_path) in enumerate(members):
        if i:
            out.append(",")
        out.append(quoted)
        out.append(":")
        _encode(item, out, member_path, depth + 1)
    out.append("}")


def _quote(s: str, path: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(
            f"string at {path} holds a lone surrogate U+{ord(s[exc.start]):04X} at index "
            f"{exc.start}; it has no UTF-8 encoding"
        ) from None
    return '"' + s.translate(_ESCAPES) + '"'
