"""The PostgreSQL dialect's pieces that must equal their SQLite or Python counterparts."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from auditkeep.query.pgsql import like_pattern, number, scalar, words_of
from auditkeep.query.text import tokens

texts = st.text(st.one_of(st.characters(), st.sampled_from(" -_./Zoëäß1aA\u00a0\u2014")))


@given(texts)
def test_the_fast_tokenizer_cuts_as_tokens_does(text: str) -> None:
    assert words_of(text) == tokens(text)


@given(st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False)))
def test_numbers_read_back_as_the_type_and_value_stored(value: int | float) -> None:
    back = scalar(number(value), None)
    assert back == value and type(back) is type(value)


def test_numbers_compare_exactly() -> None:
    assert number(0.1) != Decimal("0.1")  # the double nearest 0.1, as SQLite holds it
    assert number(2**53 + 1) > number(float(2**53))


def test_wildcards_become_like_patterns() -> None:
    assert like_pattern("a*b?c") == "a%b_c"
    assert like_pattern("100%_x\\*\\?\\\\") == "100\\%\\_x*?\\\\"

