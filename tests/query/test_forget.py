"""Forgetting purged events (retention/purge.py) in both search indexes: searches,
free text, fields and every aggregate answer as if the events had never been indexed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditkeep.query.aggregate import aggregator
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.lang import parse
from auditkeep.query.pgindex import PgSearchIndex

QUERIES = ("", "category:auth", "actor.id:bob", "metadata.region:eu", "disk", "raw.who:x")
GROUPS = (["category"], ["actor.id"], ["metadata.region"], ["action", "outcome"])


def rec(seq: int) -> dict[str, Any]:
    return {"seq": seq, "id": f"id-{seq}", "time": f"2026-11-01T0{seq % 3}:1{seq % 6}:00Z",
            "actor": {"id": ("alice", "bob")[seq % 2], "type": "user"},
            "action": ("orders.view", "users.login")[seq % 2], "outcome": "success",
            "category": ("data_access", "auth", "data_change")[seq % 3],
            "reason": "disk full" if seq % 4 == 0 else "ok",
            "metadata": {"region": ("eu", "us")[seq % 5 == 0], "n": seq}}


RAWS = {s: {"who": "x"} for s in range(0, 40, 7)}


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        ix: Any = SearchIndex(tmp_path / "search.db")
    else:
        ix = PgSearchIndex(request.getfixturevalue("pg_url"))
    yield ix
    ix.close()


def answers(ix: Any, log_id: int) -> list[Any]:
    out: list[Any] = []
    for q in QUERIES:
        out.append(sorted(s for _, s in ix.search(log_id, parse(q), Window(), limit=1000)))
        agg = aggregator(ix, log_id, parse(q), Window())
        out.append(agg.total())
        out += [sorted(map(repr, agg.groups(g, 50))) for g in GROUPS]
        out.append(agg.distinct("actor.id"))
    return out


def test_a_forgotten_event_is_as_if_never_indexed(index: Any) -> None:
    """Log 1 indexes every event and forgets some; log 2 never indexes those."""
    a = b = index
    records = [rec(s) for s in range(40)]
    gone = {s for s in range(40) if s % 3 == 0 or s in (7, 8)}
    # log 1 indexes everything, fields of the first 30 only (the rest are not yet fielded)
    assert a.add(1, records, 40, RAWS, fields=False)
    assert a.add_fields(1, records[:30], 30, RAWS)
    forgotten = a.forget(1, [r for r in records if r["seq"] in gone], RAWS)
    assert forgotten == len(gone)
    assert a.add_fields(1, [r for r in records[30:] if r["seq"] not in gone], 40, RAWS,
                        first=30)
    kept = [r for r in records if r["seq"] not in gone]
    assert b.add(2, kept, 40, RAWS, first=0)
    assert answers(a, 1) == answers(b, 2)
    assert answers(a, 1) != answers(b, 3)  # the comparison can fail
    assert a.forget(1, [rec(0)], RAWS) == 0  # again: nothing left to forget
