"""The indexer's two passes: columns and free text first, every other field after."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event
from auditkeep.query import indexer as indexer_module
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.indexer import Indexer, index_lag
from auditkeep.query.lang import parse


def test_fields_trail_the_columns_then_catch_up(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexer_module, "FIELD_BATCH", 10)
    data = DataDir(tmp_path / "data")
    n = open_node(data, with_index=False)
    n.start()
    events = [Event(action="orders.refund", actor=Actor(id=f"user-{i % 3}", type="user"),
                    outcome="success", metadata={"n": i}) for i in range(25)]
    n.logs.append("default", prepare(events, tenant="default", submitter="t",
                                     may_set_tenant=False)).result()
    n.close()
    store = data.open_backend()
    index = SearchIndex(data.search_db)
    try:
        log = store.get_log("default")
        assert log is not None
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
    finally:
        index.close()
        store.close()
