"""The indexer's two passes: columns and free text first, every other field after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event
from auditkeep.query import indexer as indexer_module
from auditkeep.query.aggregate import Aggregator
from auditkeep.query.ast import Eq, Literal_
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.indexer import Indexer, index_lag
from auditkeep.query.lang import parse
from auditkeep.query.predicate import Doc
from auditkeep.storage.base import LogInfo
from auditkeep.storage.sqlite import SQLiteBackend


@contextmanager
def unindexed_log(tmp_path: Path, commits: list[list[Event]]
                  ) -> Iterator[tuple[SQLiteBackend, SearchIndex, LogInfo]]:
    """A data directory whose `default` log holds `commits` (one append each) and an
    empty search index beside it, for an indexer the test drives itself."""
    data = DataDir(tmp_path / "data")
    n = open_node(data, with_index=False)
    n.start()
    for events in commits:
        n.logs.append("default", prepare(events, tenant="default", submitter="t",
                                         may_set_tenant=False)).result()
    n.close()
    store = data.open_backend()
    index = SearchIndex(data.search_db)
    try:
        log = store.get_log("default")
        assert log is not None
        yield store, index, log
    finally:
        index.close()
        store.close()


def test_fields_trail_the_columns_then_catch_up(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexer_module, "FIELD_BATCH", 10)
    events = [Event(action="orders.refund", actor=Actor(id=f"user-{i % 3}", type="user"),
                    outcome="success", metadata={"n": i}) for i in range(25)]
    with unindexed_log(tmp_path, [events]) as (store, index, log):
        ix = Indexer(store, index)

        def hits(q: str) -> list[int]:
            return sorted(s for _, s in index.search(log.id, parse(q), Window(), limit=100))

        assert ix.run_once()
        assert index_lag(store, index)["default"] == {
            "size": 25, "indexed": 25, "fields_indexed": 10, "lag": 15}
        assert hits("actor:user-1") == [i for i in range(25) if i % 3 == 1]  # columns: all
        assert hits("metadata.n:>=0") == list(range(10))  # fields: the first pass only
        while ix.run_once():
            pass
        assert index_lag(store, index)["default"]["lag"] == 0
        assert hits("metadata.n:>=0") == list(range(25))
        # a second indexer that finds the field cursor moved writes nothing
        assert not index.add_fields(log.id, [{"seq": 24}], 25)


def test_a_burst_is_indexed_completely_every_event_by_every_field(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst far beyond one batch, indexed in interleaved small passes (the second pass
    reusing what the first parsed, or reading again when it let go): afterwards each
    event is found by each value of each field it has, and counted by the rollups."""
    monkeypatch.setattr(indexer_module, "BATCH", 70)
    monkeypatch.setattr(indexer_module, "FIELD_BATCH", 30)
    monkeypatch.setattr(indexer_module, "PARSED_KEPT", 100)
    events = [Event(action=["orders.refund", "iam.role.grant", "auth.login"][i % 3],
                    actor=Actor(id=f"user-{i % 7}", type="user", email=f"u{i}@example.com"),
                    outcome=["success", "failure"][i % 2], reason=f"burst item {i}",
                    metadata={"n": i, "region": ["eu", "us"][i % 2], "tags": [f"t{i % 5}"]})
              for i in range(400)]
    burst = [events[k:k + 100] for k in range(0, 400, 100)]  # several commits
    with unindexed_log(tmp_path, burst) as (store, index, log):
        ix = Indexer(store, index)
        while ix.run_once():
            pass
        assert index_lag(store, index)["default"] == {
            "size": 400, "indexed": 400, "fields_indexed": 400, "lag": 0}
        records = [orjson.loads(e) for b in store.read_bundles(log.id, 0, 400)
                   for e in b.entries]
        for rec in records:
            doc = Doc.of(rec)
            terms = [(p, v) for p, v in doc.columns.items() if v is not None and p != "time"]
            terms += [(k, v) for k, vs in doc.attrs.items() for v in vs]
            assert len(terms) >= 12
            for path, value in terms:
                lit = Literal_(str(value), value if isinstance(value, int | float) else None)
                hits = index.search(log.id, Eq(path, lit), Window(), limit=1000)
                assert rec["seq"] in {s for _, s in hits}, (path, value)
        agg = Aggregator(index, log.id, parse(""), Window())
        assert agg.total() == 400
        assert agg.groups(["metadata.region"], 5) == [(["eu"], 200), (["us"], 200)]
        assert agg.groups(["actor.id"], 1) == [(["user-0"], 58)]
