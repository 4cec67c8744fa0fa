"""Every search plan gives the answer of the plain one: the newest (or oldest) `limit`
matches in (time, seq) order, also when event times are out of log order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkeep.query import plans
from auditkeep.query.fields import time_us
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.lang import parse
from auditkeep.query.predicate import matches
from tests.query.test_agreement import queries, records

SHAPED = ["alice", "ali*", '"disk full"', "rotate", "orders", "alice rotate",
          "alice -outcome:failure", "(actor:alice OR actor:bob) outcome:success",
          "actor:alice OR actor:Zoë", "(actor:bob OR actor:svc-1) -category:auth",
          "(action:orders.refund OR action:iam) alice", "zoe AND severity:critical"]


def expected(recs: list[dict[str, Any]], q: str, window: Window, limit: int,
             oldest_first: bool = False) -> list[tuple[int, int]]:
    node = parse(q)
    rows = []
    for r in recs:
        t = time_us(r["time"])
        if window.since_us is not None and t < window.since_us:
            continue
        if window.until_us is not None and t >= window.until_us:
            continue
        if window.cursor is not None and (t, r["seq"]) >= window.cursor:
            continue
        if matches(node, r):
            rows.append((t, r["seq"]))
    rows.sort(reverse=not oldest_first)
    return rows[:limit]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of two rows and rowid ranges of two, so a few dozen events span many
    ranges and the free-text plan's stopping bound is exercised."""
    monkeypatch.setattr(plans, "BLOCK_BITS", 1)
    monkeypatch.setattr(plans, "_MIN_SPAN", 2)
    monkeypatch.setattr(plans, "_FIRST_SPAN", 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data(), qs=st.lists(st.one_of(queries, st.sampled_from(SHAPED)), min_size=1,
                                   max_size=6))
def test_plans_return_the_newest_matches_in_order(tmp_path_factory: Any, small_blocks: None,
                                                  data: Any, qs: list[str]) -> None:
    # times drawn independently of seq: a log's event times are the producers'
    recs = [data.draw(records(seq)) for seq in range(40)]
    index = SearchIndex(Path(tmp_path_factory.mktemp("ix")) / "search.db")
    try:
        for first in range(0, 40, 13):  # several batches, as the indexer writes them
            index.add(1, recs[first:first + 13], min(40, first + 13))
        day = time_us("2026-11-02T00:00:00Z")
        for q in qs:
            limit = data.draw(st.sampled_from([1, 3, 10]))
            window = data.draw(st.sampled_from([
                Window(), Window(since_us=day), Window(until_us=day + 86_400_000_000),
                Window(cursor=(day + 43_200_000_000, 20))]))
            got = index.search(1, parse(q), window, limit=limit)
            assert got == expected(recs, q, window, limit), (q, window, limit)
            got = index.search(1, parse(q), window, limit=limit, oldest_first=True)
            assert got == expected(recs, q, window, limit, oldest_first=True), (q, window)
    finally:
        index.close()


def test_free_text_reads_far_enough_when_an_old_row_is_newest(tmp_path: Path,
                                                              small_blocks: None) -> None:
    """The first row of the log has the newest time of all: the free-text plan must not
    stop at the newest rowids, however many matches it found there."""
    recs = [{"seq": i, "id": f"id-{i}", "time": f"2026-11-01T{i % 24:02d}:00:00Z",
             "actor": {"id": "alice", "type": "user"}, "action": "orders.refund",
             "outcome": "success", "category": "data_change", "reason": "rotate keys"}
            for i in range(30)]
    recs[0]["time"] = "2026-12-01T00:00:00Z"
    index = SearchIndex(tmp_path / "search.db")
    try:
        index.add(1, recs, 30)
        got = index.search(1, parse("rotate"), Window(), limit=3)
        assert got[0] == (time_us("2026-12-01T00:00:00Z"), 0)
        assert got == expected(recs, "rotate", Window(), 3)
    finally:
        index.close()


def test_the_shaped_queries_take_the_plans_they_are_meant_for() -> None:
    assert plans._text_driver(parse("alice rotate")) is not None
    assert plans._text_driver(parse("actor:alice rotate")) is None  # the index leads
    assert plans._value_arms(parse("(actor:alice OR actor:bob) outcome:success")) is not None
    assert plans._value_arms(parse("(outcome:failure OR outcome:denied)")) is None
