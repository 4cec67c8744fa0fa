"""The PostgreSQL search index: writes that race, month partitions, long texts, errors, and
the same search and aggregate answers as the SQLite index for the same records."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkeep.errors import StorageError, ValidationError
from auditkeep.query import pgindex
from auditkeep.query.aggregate import aggregator
from auditkeep.query.fields import time_us
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.lang import parse
from auditkeep.query.pgindex import PgSearchIndex
from tests.query.test_rollups import BASE, HOUR, MIN, PATHS, QUERIES, _stamp, record


def event(seq: int, when: str = "2026-11-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "id": f"id-{seq}", "time": when,
            "actor": {"id": "alice", "type": "user"}, "action": "orders.refund",
            "outcome": "success", "category": "data_change", **extra}


@pytest.fixture
def index(pg_url: str) -> Any:
    ix = PgSearchIndex(pg_url)
    yield ix
    ix.close()


def seqs(ix: PgSearchIndex | SearchIndex, q: str, log_id: int = 1, **kw: Any) -> list[int]:
    return [s for _, s in ix.search(log_id, parse(q), Window(**kw), limit=100)]


class TestWrites:
    def test_add_moves_the_cursor_and_the_rows_are_searchable(self, index: PgSearchIndex
                                                             ) -> None:
        assert index.add(1, [event(0), event(1, reason="disk full")], 2)
        assert index.cursor(1) == 2 and index.cursors() == {1: 2}
        assert index.field_cursors() == {1: 2}
        assert seqs(index, '"disk full"') == [1]
        assert seqs(index, "actor:alice") == [1, 0]

    def test_a_batch_not_at_the_cursor_writes_nothing(self, index: PgSearchIndex) -> None:
        assert index.add(1, [event(0)], 1)
        assert not index.add(1, [event(0)], 1)  # again: the cursor is at 1
        assert not index.add(1, [event(5)], 6)  # a gap
        assert seqs(index, "") == [0]
        assert index.cursor(1) == 1

    def test_fields_follow_in_a_second_pass(self, index: PgSearchIndex) -> None:
        recs = [event(0, metadata={"n": 1}), event(1, metadata={"n": 2})]
        assert index.add(1, recs, 2, fields=False)
        assert index.field_cursors() == {}
        assert seqs(index, "metadata.n:2") == []
        assert not index.add_fields(1, recs[1:], 2)  # not from the field cursor
        assert index.add_fields(1, recs, 2)
        assert not index.add_fields(1, recs, 2)
        assert seqs(index, "metadata.n:2") == [1]
        assert index.field_cursors() == {1: 2}

    def test_fields_wait_for_the_columns(self, index: PgSearchIndex) -> None:
        assert not index.add_fields(1, [event(0)], 1)  # the columns are not there yet

    def test_two_indexers_racing_write_each_batch_once(self, pg_url: str) -> None:
        a, b = PgSearchIndex(pg_url), PgSearchIndex(pg_url)
        try:
            recs = [event(i, metadata={"i": i}) for i in range(200)]
            wins: list[bool] = []
            go = threading.Barrier(2)

            def run(ix: PgSearchIndex) -> None:
                go.wait()
                for first in range(0, 200, 20):
                    start = ix.cursor(1)
                    if start == first:
                        wins.append(ix.add(1, recs[first:first + 20], first + 20))
            threads = [threading.Thread(target=run, args=(ix,)) for ix in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert a.cursor(1) == 200
            total = a.execute("SELECT count(*), count(DISTINCT seq) FROM search_events", [])
            assert total == [(200, 200)]
            assert sum(wins) == 10
            assert b.execute("SELECT count(*) FROM search_attrs", []) == [(200,)]
        finally:
            a.close()
            b.close()

    def test_a_failed_batch_leaves_nothing_and_the_next_one_works(
            self, index: PgSearchIndex, monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*_: Any) -> None:
            raise psycopg.errors.QueryCanceled("cancelled")
        monkeypatch.setattr(pgindex, "_move", broken)
        with pytest.raises(StorageError, match="writing the search index"):
            index.add(1, [event(0, metadata={"new": "key"})], 1)
        monkeypatch.undo()
        assert index.execute("SELECT count(*) FROM search_events", []) == [(0,)]
        assert index.add(1, [event(0, metadata={"new": "key"})], 1)
        assert seqs(index, "metadata.new:key") == [0]


class TestPartitions:
    def test_each_month_gets_a_partition_and_stray_times_the_default(
            self, index: PgSearchIndex) -> None:
        recs = [event(0, "2026-11-30T23:59:59.999999Z"), event(1, "2026-12-01T00:00:00Z"),
                event(2, "1969-07-20T20:17:00Z"), event(3, "2301-01-01T00:00:00Z"),
                event(4, "2027-02-14T12:00:00Z")]
        assert index.add(1, recs, 5)
        rows = index.execute(
            "SELECT c.relname, count(e.*) FROM search_events e JOIN pg_class c "
            "ON c.oid = e.tableoid GROUP BY 1 ORDER BY 1", [])
        assert [tuple(r) for r in rows] == [
            ("search_events_default", 2), ("search_events_m202611", 1),
            ("search_events_m202612", 1), ("search_events_m202702", 1)]
        dec = time_us("2026-12-01T00:00:00Z")
        assert seqs(index, "", since_us=dec) == [3, 4, 1]
        assert seqs(index, "", until_us=dec) == [0, 2]
        assert seqs(index, "time:2026-11-30") == [0]

    def test_a_reopened_index_knows_its_partitions(self, pg_url: str) -> None:
        with_first = PgSearchIndex(pg_url)
        with_first.add(1, [event(0)], 1)
        with_first.close()
        again = PgSearchIndex(pg_url)
        try:
            assert (2026, 11) in again._months
            assert again.add(1, [event(1)], 2)
            assert seqs(again, "") == [1, 0]
        finally:
            again.close()


class TestSchema:
    def test_an_index_of_another_schema_version_is_rebuilt(
            self, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        ix = PgSearchIndex(pg_url)
        ix.add(1, [event(0)], 1)
        ix.close()
        monkeypatch.setattr(pgindex, "SCHEMA_VERSION", pgindex.SCHEMA_VERSION + 1)
        ix = PgSearchIndex(pg_url)
        try:
            assert ix.cursors() == {} and seqs(ix, "") == []
        finally:
            ix.close()

    def test_an_unreachable_database_is_a_storage_error(self) -> None:
        with pytest.raises(StorageError, match="opening the search index"):
            PgSearchIndex("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


class TestText:
    def test_long_tokens_and_long_texts_still_match_exactly(self, index: PgSearchIndex) -> None:
        long_word = "x" * 3000
        huge = " ".join(f"w{i}" for i in range(40_000))  # past the tsvector's size
        recs = [event(0, reason=long_word), event(1, reason="x" * 600),
                event(2, reason=huge), event(3, reason="w1 w2")]
        assert index.add(1, recs, 4)
        assert seqs(index, long_word) == [0]
        assert seqs(index, "x" * 600) == [1]
        assert seqs(index, "x" * 550 + "*") == [1, 0]
        assert seqs(index, '"w39998 w39999"') == [2]
        assert seqs(index, '"w1 w2"') == [3, 2]
        assert seqs(index, '"w2 w1"') == []

    def test_a_nul_character_is_stored_as_a_replacement(self, index: PgSearchIndex) -> None:
        assert index.add(1, [event(0, metadata={"note": "a\x00b"}, reason="a\x00b")], 1)
        assert seqs(index, "metadata.note:a\ufffdb") == [0]
        assert seqs(index, '"a b"') == [0]


# -- the same answers as SQLite ----------------------------------------------------------

SEARCHES = [*QUERIES, "metadata.tags:a", "metadata.tags:>1", "metadata.n:[10 TO 20]",
            "metadata.region:7", "alice", "ali*", "(actor:alice OR actor:bob) -outcome:success",
            "_exists_:severity", "-_exists_:source", "metadata.tags:(b OR 2.5)"]


_LOGS = itertools.count(1)


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(1, 50))
def test_search_and_aggregates_answer_as_on_sqlite(index: PgSearchIndex,
                                                    tmp_path_factory: pytest.TempPathFactory,
                                                    data: Any, n: int) -> None:
    log_id = next(_LOGS)  # a fresh log per example, in the one schema of the test
    recs = [data.draw(record(seq)) for seq in range(n)]
    lite = SearchIndex(Path(tmp_path_factory.mktemp("ix")) / "search.db")
    try:
        done = 0
        while done < n:  # batches, some in two passes, as the indexer writes them
            k = data.draw(st.integers(1, 20))
            batch = recs[done:done + k]
            two = data.draw(st.booleans())
            for ix, log in ((lite, 1), (index, log_id)):
                assert ix.add(log, batch, done + len(batch), fields=not two)
                if two:
                    assert ix.add_fields(log, batch, done + len(batch))
            done += len(batch)
        edges = st.one_of(st.none(), st.integers(-HOUR, 6 * HOUR).map(lambda d: BASE + d),
                          st.integers(-2, 7).map(lambda h: BASE + h * HOUR))
        for _ in range(4):
            q = parse(data.draw(st.sampled_from(SEARCHES)))
            window = Window(data.draw(edges), data.draw(edges))
            at = (BASE + data.draw(st.integers(0, 5 * HOUR)), data.draw(st.integers(0, n)))
            for w in (window, Window(cursor=at), Window(after=at)):
                for oldest in (False, True):
                    limit = data.draw(st.sampled_from([1, 5, 100]))
                    assert index.search(log_id, q, w, limit=limit, oldest_first=oldest) == \
                        lite.search(1, q, w, limit=limit, oldest_first=oldest), (q, w)
            pg, sq = aggregator(index, log_id, q, window), aggregator(lite, 1, q, window)
            assert pg.total() == sq.total(), (q, window)
            paths = [data.draw(st.sampled_from(PATHS))]
            if data.draw(st.booleans()):
                paths.append(data.draw(st.sampled_from(PATHS)))
            top = data.draw(st.sampled_from([1, 3, 100]))
            assert pg.groups(paths, top) == sq.groups(paths, top), (q, window, paths)
            assert pg.distinct(paths[0]) == sq.distinct(paths[0]), (q, window, paths)
            for interval in ("auto", "1h", "15m"):
                try:
                    want = sq.histogram(interval, BASE + 6 * HOUR)
                except ValidationError:
                    with pytest.raises(ValidationError):
                        pg.histogram(interval, BASE + 6 * HOUR)
                    continue
                assert pg.histogram(interval, BASE + 6 * HOUR) == want, (q, window, interval)
    finally:
        lite.close()


def test_group_values_keep_their_types(index: PgSearchIndex) -> None:
    recs = [event(i, _stamp(BASE + i * MIN), metadata={"v": v})
            for i, v in enumerate([2, 2, 2.5, 1e20, 3.0, "2", "b", 9007199254740993])]
    index.add(1, recs, len(recs))
    got = aggregator(index, 1, parse(""), Window()).groups(["metadata.v"], 10)
    assert got == [([2], 2), ([2.5], 1), ([3.0], 1), ([9007199254740993], 1), ([1e20], 1),
                   (["2"], 1), (["b"], 1)]
    assert [type(v[0]) for v, _ in got] == [int, float, float, int, float, str, str]
    assert seqs(index, "metadata.v:9007199254740993") == [7]
    assert seqs(index, "metadata.v:[3 TO 3]") == [4]
