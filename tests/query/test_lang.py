"""The query grammar: what each form parses to, and where a mistake is reported."""

from __future__ import annotations

import pytest

from auditkeep.query.ast import (
    All,
    And,
    Eq,
    Exists,
    Literal_,
    Node,
    Not,
    Or,
    Range,
    Text,
    Wildcard,
)
from auditkeep.query.lang import QueryError, parse, parse_time_us

DAY1 = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z in microseconds
HOUR = 3_600_000_000


def eq(field: str, text: str, number: float | None = None) -> Eq:
    return Eq(field, Literal_(text, number))


TABLE: list[tuple[str, Node]] = [
    ("", All()),
    ("   ", All()),
    ("alice", Text("alice")),
    ("alic*", Text("alic", prefix=True)),
    ('"disk full"', Text("disk full")),
    ("action:orders.refund", eq("action", "orders.refund")),
    ("actor:alice", eq("actor.id", "alice")),  # alias
    ("service:shop", eq("source.service", "shop")),
    ("resource:orders/7", eq("resource.id", "orders/7")),
    ("action:iam.*", Wildcard("action", "iam.*")),
    ("resource.id:ord?rs/*", Wildcard("resource.id", "ord?rs/*")),
    ("metadata.note:a\\*b", eq("metadata.note", "a*b")),  # escaped: no wildcard
    ('metadata.note:"a*b"', eq("metadata.note", "a*b")),
    ("metadata.amount:1000", eq("metadata.amount", "1000", 1000)),
    ("metadata.amount:-2.5", eq("metadata.amount", "-2.5", -2.5)),
    ('metadata.amount:"1000"', eq("metadata.amount", "1000")),  # quoted: text only
    ("outcome:5", eq("outcome", "5")),  # a text column compares text
    ("seq:42", eq("seq", "42", 42)),
    ("metadata.amount:>1000", Range("metadata.amount", Literal_("1000", 1000), None, False)),
    ("metadata.amount:<=7", Range("metadata.amount", None, Literal_("7", 7), True, True)),
    ("metadata.amount:[1 TO 5}", Range("metadata.amount", Literal_("1", 1), Literal_("5", 5),
                                       True, False)),
    ("metadata.amount:{* TO 5]", Range("metadata.amount", None, Literal_("5", 5), False, True)),
    ("metadata.amount:[* TO *]", Exists("metadata.amount")),
    ("resource.id:[a TO m]", Range("resource.id", Literal_("a"), Literal_("m"))),
    ("time:2026-11-01", Range("time", Literal_("2026-11-01", DAY1),
                              Literal_("2026-11-01", DAY1 + 24 * HOUR), True, False)),
    ("time:[2026-11-01 TO 2026-11-02]",  # an inclusive bare date covers its whole day
     Range("time", Literal_("2026-11-01", DAY1), Literal_("2026-11-02", DAY1 + 48 * HOUR),
           True, False)),
    ("time:>=2026-11-01T02:00:00Z", Range("time", Literal_("2026-11-01T02:00:00Z",
                                                           DAY1 + 2 * HOUR), None)),
    ("time:[2026-11-01T03:00:00+01:00 TO *]",
     Range("time", Literal_("2026-11-01T03:00:00+01:00", DAY1 + 2 * HOUR), None)),
    ("_exists_:actor.impersonator", Exists("actor.impersonator")),
    ("metadata.tags:*", Exists("metadata.tags")),
    ("raw.verb:delete", eq("raw.verb", "delete")),
    ("a b", And((Text("a"), Text("b")))),
    ("a AND b AND c", And((Text("a"), Text("b"), Text("c")))),
    ("a OR b c", Or((Text("a"), And((Text("b"), Text("c")))))),
    ("NOT a OR b", Or((Not(Text("a")), Text("b")))),
    ("-a b", And((Not(Text("a")), Text("b")))),
    ("(a OR b) c", And((Or((Text("a"), Text("b"))), Text("c")))),
    ("outcome:(failure OR denied)", Or((eq("outcome", "failure"), eq("outcome", "denied")))),
    ("outcome:(failure denied)", Or((eq("outcome", "failure"), eq("outcome", "denied")))),
    ("ANDROID OR ORCA", Or((Text("ANDROID"), Text("ORCA")))),  # keywords need boundaries
    ("and or", And((Text("and"), Text("or")))),  # lower case is text
    ("a-b", Text("a-b")),
    ("changes.before.status:open", eq("changes.before.status", "open")),
]


@pytest.mark.parametrize(("query", "tree"), TABLE, ids=[q or "(empty)" for q, _ in TABLE])
def test_parses_to(query: str, tree: Node) -> None:
    assert parse(query) == tree


ERRORS = [
    # query, column, words in the detail, words in "expected"
    ("action:", 8, "ends too early", "a value"),
    ("(a OR b", 8, "ends too early", '")"'),
    ("a AND", 6, "ends too early", "a search term"),
    ("a ]", 3, "unexpected ']'", "a search term"),
    ("metadata.x:[1 TO ]", 18, "unexpected ']'", "a value"),
    ("metadata.x:[1 TO b]", 13, "both be numbers or both text", "two numbers"),
    ("acter.id:x", 1, "an event has no field 'acter'", "schema v1 field"),
    ("actor.nme:x", 1, "actor has no field 'nme'; expected one of", "schema v1 field"),
    ("actor.id.x:y", 1, "actor.id has no fields below it", "schema v1 field"),
    ("actor.email:a@b.c", 1, "personal data", "schema v1 field"),
    ("tenant:acme", 1, "choose it with the tenant parameter", "schema v1 field"),
    ("time:yesterday", 6, "is not a time", "now-15m"),
    ("time:a*", 6, "takes no wildcards", "a range"),
    ("seq:1.5", 5, "not a whole number", "whole number"),
    ("a*b", 1, "only a trailing *", "field:pattern"),
    ("x AND /", 7, "no letters or digits", "a word"),
    ("_exists_:nosuch", 10, "an event has no field 'nosuch'", "schema v1 field"),
    ('_exists_:"x"', 10, "_exists_ takes a field name", "a field name"),
]


@pytest.mark.parametrize(("query", "column", "detail", "expected"), ERRORS,
                         ids=[e[0] for e in ERRORS])
def test_errors_name_the_column_and_what_was_expected(query: str, column: int, detail: str,
                                                      expected: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    problem = info.value.problems[0]
    assert problem.pointer == "/query/query"
    assert problem.column == column
    assert detail in problem.detail
    assert expected in (problem.expected or "")
    assert f"column {column}" in str(info.value)


def test_relative_times_count_back_from_now() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert parse_time_us("now", now=now) == DAY1 + 2 * HOUR
    assert parse_time_us("now-90m", now=now) == DAY1 + HOUR // 2
    assert parse_time_us("now-1d", now=now) == DAY1 + 2 * HOUR - 24 * HOUR
    assert parse_time_us("2026-11-01T02:00") == DAY1 + 2 * HOUR  # no offset: UTC
    assert parse_time_us("now-5y") is None
