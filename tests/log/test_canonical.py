"""RFC 8785 canonical JSON: the conformance corpora, the fast path against the reference
encoder, ES6 number formatting, and every value that must be refused."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import json
import math
import struct
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.log.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    CanonicalizationError,
    canonical_bytes,
    format_es6_number,
    reference_canonical_bytes,
)

DATA = Path(__file__).parent.parent / "data" / "rfc8785"
CYBERPHONE_INPUTS = sorted((DATA / "cyberphone" / "input").glob("*.json"))
ES6_CASES: list[dict[str, Any]] = json.loads(
    (DATA / "es6_number_cases.json").read_text(encoding="utf-8")
)["cases"]

ENCODERS = [
    pytest.param(canonical_bytes, id="canonical_bytes"),
    pytest.param(reference_canonical_bytes, id="reference"),
]


def _double(hex_ieee754: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_ieee754.rjust(16, "0")))[0]
    return value


def _ijson_int(text: str) -> int | float:
    # I-JSON reads every number as a double; integers beyond 2**53 only arise from floats
    # (1e20 canonicalises as "100000000000000000000"), so read those back as floats.
    n = int(text)
    return n if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER else float(text)


def _load(canonical: bytes) -> Any:
    return json.loads(canonical, parse_int=_ijson_int)


def _as_parsed(value: Any) -> Any:
    """`value` as a JSON parser would give it back: tuples become lists."""
    if isinstance(value, dict):
        return {k: _as_parsed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_parsed(v) for v in value]
    return value


class TestCyberphoneCorpus:
    def test_corpus_is_present(self) -> None:
        assert len(CYBERPHONE_INPUTS) == 6

    @pytest.mark.parametrize("encoder", ENCODERS)
    @pytest.mark.parametrize("source", CYBERPHONE_INPUTS, ids=lambda p: p.stem)
    def test_input_encodes_to_the_published_output(self, encoder: Any, source: Path) -> None:
        value = json.loads(source.read_text(encoding="utf-8"))
        expected = (DATA / "cyberphone" / "output" / source.name).read_bytes()
        assert encoder(value) == expected


class TestES6Numbers:
    @pytest.mark.parametrize(
        "case", ES6_CASES, ids=lambda c: f"{c['ieee754_hex_be']}->{c['expected']}"
    )
    def test_trailofbits_case(self, case: dict[str, Any]) -> None:
        x = _double(case["ieee754_hex_be"])
        if case["expected"] is None:
            for encode in (format_es6_number, canonical_bytes, reference_canonical_bytes):
                with pytest.raises(CanonicalizationError):
                    encode(x)
        else:
            assert format_es6_number(x) == case["expected"]
            assert canonical_bytes(x) == case["expected"].encode()
            assert reference_canonical_bytes(x) == case["expected"].encode()

    def test_first_10000_lines_of_the_cyberphone_number_file(self) -> None:
        lines = (DATA / "es6_numbers_first10000.txt").read_text(encoding="ascii").splitlines()
        assert len(lines) == 10_000
        wrong = []
        for line in lines:
            hex_ieee754, expected = line.split(",")
            got = format_es6_number(_double(hex_ieee754))
            if got != expected:
                wrong.append((hex_ieee754, expected, got))
        assert wrong == []

    @pytest.mark.parametrize(
        ("x", "expected"),
        [
            (1.0, "1"),
            (5.0, "5"),
            (-0.0, "0"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (-1.25e-300, "-1.25e-300"),
            (2.0**53, "9007199254740992"),
            (2.0**53 - 1, "9007199254740991"),
        ],
    )
    def test_layout_follows_number_to_string(self, x: float, expected: str) -> None:
        assert format_es6_number(x) == expected

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_formatted_number_reads_back_as_the_same_double(self, x: float) -> None:
        assert float(format_es6_number(x)) == x


class TestStrings:
    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_only_quote_backslash_and_c0_controls_are_escaped(self, encoder: Any) -> None:
        controls = "".join(chr(c) for c in range(0x20))
        expected = (
            b'"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007'
            b"\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
            b"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
            b'\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\"\\\\'
            b'/\x7f\xc2\x80\xe2\x80\xa8\xe2\x80\xa9</script>\xf0\x9f\x98\x82"'
        )
        assert encoder(controls + '"\\/\x7f\x80\u2028\u2029</script>\U0001f602') == expected

    def test_fast_path_escapes_every_code_point_as_the_reference_does(self) -> None:
        every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
        assert canonical_bytes(every) == reference_canonical_bytes(every)
        assert canonical_bytes({every: every}) == reference_canonical_bytes({every: every})

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_unicode_is_not_normalised(self, encoder: Any) -> None:
        assert encoder("A\u030a") == '"A\u030a"'.encode()


class TestKeyOrder:
    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_keys_sort_by_utf16_code_units_not_code_points(self, encoder: Any) -> None:
        # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+E000 and U+FFFF.
        value = {"\uffff": 3, "\ue000": 2, "\U0001f600": 1, "z": 0}
        assert encoder(value) == '{"z":0,"\U0001f600":1,"\ue000":2,"\uffff":3}'.encode()

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_nested_objects_are_sorted_at_every_level(self, encoder: Any) -> None:
        value = {"b": [{"y": 1, "x": {"q": None, "p": False}}], "a": ()}
        assert encoder(value) == b'{"a":[],"b":[{"x":{"p":false,"q":null},"y":1}]}'


class TestScalars:
    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_bools_are_literals_not_integers(self, encoder: Any) -> None:
        assert encoder({"t": True, "f": False, "one": 1, "zero": 0}) == (
            b'{"f":false,"one":1,"t":true,"zero":0}'
        )

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_integral_floats_encode_as_integers(self, encoder: Any) -> None:
        assert encoder({"n": 5.0, "m": [-2.0, 0.0, -0.0]}) == b'{"m":[-2,0,0],"n":5}'

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_safe_integer_bounds_are_accepted(self, encoder: Any) -> None:
        assert encoder([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
            b"[9007199254740991,-9007199254740991]"
        )

    def test_record_without_floats_matches_plain_sorted_orjson(self) -> None:
        record = {"seq": 7, "actor": {"id": "u-1", "type": "user"}, "tags": ["a", "b"]}
        assert canonical_bytes(record) == orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class TestRejections:
    @pytest.mark.parametrize("encoder", ENCODERS)
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            pytest.param(math.nan, r"float nan at \$ .*NaN", id="nan"),
            pytest.param({"a": [math.inf]}, r"float inf at \$\.a\[0\]", id="inf"),
            pytest.param(-math.inf, r"float -inf", id="-inf"),
            pytest.param(2**53, r"integer 9007199254740992 at \$ .*lose precision", id="2**53"),
            pytest.param(
                {"n": -(2**53)}, r"integer -9007199254740992 at \$\.n .*lose", id="-2**53"
            ),
            pytest.param([2**64], r"integer 18446744073709551616 at \$\[0\]", id="2**64"),
            pytest.param("a\ud800", r"lone surrogate U\+D800 at index 1", id="lone-high"),
            pytest.param({"k": "\udc00"}, r"lone surrogate U\+DC00", id="lone-low"),
            pytest.param({"\ud83d": 1}, r"lone surrogate U\+D83D", id="lone-in-key"),
            pytest.param({1: "x"}, r"keys must be str, got int 1", id="int-key"),
            pytest.param({("a",): 1}, r"keys must be str, got tuple", id="tuple-key"),
        ],
    )
    def test_value_without_a_canonical_form_is_refused(
        self, encoder: Any, value: object, message: str
    ) -> None:
        with pytest.raises(CanonicalizationError, match=message):
            encoder(value)

    class Colour(enum.Enum):
        RED = "red"

    class Tag(str):
        pass

    @pytest.mark.parametrize("encoder", ENCODERS)
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param({1, 2}, id="set"),
            pytest.param(b"bytes", id="bytes"),
            pytest.param(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC), id="datetime"),
            pytest.param(decimal.Decimal("1.5"), id="decimal"),
            pytest.param(uuid.UUID(int=1), id="uuid"),
            pytest.param(Colour.RED, id="enum"),
            pytest.param(Tag("x"), id="str-subclass"),
            pytest.param(collections.OrderedDict(a=1), id="dict-subclass"),
            pytest.param(collections.namedtuple("P", "x")(x=1), id="namedtuple"),
            pytest.param(orjson.Fragment(b"[1.0]"), id="orjson-fragment"),
            pytest.param(object(), id="object"),
        ],
    )
    def test_unsupported_type_is_refused_wherever_it_sits(
        self, encoder: Any, value: object
    ) -> None:
        name = type(value).__qualname__
        with pytest.raises(CanonicalizationError, match=rf"got {name} at \$\.x\[1\]"):
            encoder({"x": [1.5, value]})
        with pytest.raises(CanonicalizationError, match=rf"got {name} at \$\.x\[1\]"):
            encoder({"x": ["no float", value]})

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_nesting_up_to_the_limit_is_accepted_and_beyond_it_refused(self, encoder: Any) -> None:
        deepest: Any = 1
        for _ in range(MAX_DEPTH):
            deepest = [deepest]
        assert encoder(deepest) == b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH
        with pytest.raises(CanonicalizationError, match="nested more than"):
            encoder({"a": deepest})

    @pytest.mark.parametrize("encoder", ENCODERS)
    def test_circular_reference_is_refused(self, encoder: Any) -> None:
        loop: dict[str, Any] = {"f": 0.5}
        loop["self"] = loop
        with pytest.raises(CanonicalizationError, match="circular"):
            encoder(loop)


# Characters that stress escaping and UTF-16 ordering, mixed with any character UTF-8 can
# carry (lone surrogates are the rejection tests' business).
_TRICKY = st.sampled_from(
    [
        "\x00",
        "\x1f",
        "\x7f",
        '"',
        "\\",
        "/",
        "\u2028",
        "\ud7ff",
        "\ue000",
        "\uffff",
        "\U00010000",
        "\U0001f600",
        "\U0010ffff",
        "a",
        "A",
        "é",
    ]
)
_TEXT = st.text(st.one_of(_TRICKY, st.characters(codec="utf-8")), max_size=12)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),  # subnormals included
    st.floats(allow_nan=False, allow_infinity=False).map(math.trunc).map(float),
    _TEXT,
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(_TEXT, children, max_size=6),
    ),
    max_leaves=40,
)


class TestProperties:
    @settings(max_examples=500)
    @given(JSON_VALUES)
    def test_fast_path_agrees_with_the_reference(self, value: Any) -> None:
        assert canonical_bytes(value) == reference_canonical_bytes(value)

    @given(JSON_VALUES)
    def test_reencoding_the_parsed_output_is_stable(self, value: Any) -> None:
        encoded = canonical_bytes(value)
        assert canonical_bytes(_load(encoded)) == encoded

    @given(JSON_VALUES)
    def test_output_is_json_that_parses_back_to_an_equal_value(self, value: Any) -> None:
        assert _load(canonical_bytes(value)) == _as_parsed(value)
