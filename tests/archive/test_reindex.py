"""Rehydrated events indexed again (`reindex`, both search indexes): every search and
aggregate answers as if they had never been forgotten."""

from __future__ import annotations

from typing import Any

from tests.query.test_forget import RAWS, answers, index, rec

__all__ = ["index"]  # the fixture, over SQLite and PostgreSQL


def test_forget_then_reindex_is_as_if_never_forgotten(index: Any) -> None:
    records = [rec(s) for s in range(40)]
    gone = [r for r in records if r["seq"] % 3 == 0]
    assert index.add(1, records, 40, RAWS, fields=False)
    assert index.add_fields(1, records[:30], 30, RAWS)  # 30..39 not fielded yet
    assert index.add(2, records, 40, RAWS, fields=False)
    assert index.add_fields(2, records[:30], 30, RAWS)
    assert index.forget(1, gone, RAWS) == len(gone)
    assert answers(index, 1) != answers(index, 2)
    assert index.reindex(1, gone, RAWS) == len(gone)
    assert index.reindex(1, gone, RAWS) == 0  # indexed already
    assert index.add_fields(1, records[30:], 40, RAWS)
    assert index.add_fields(2, records[30:], 40, RAWS)
    assert answers(index, 1) == answers(index, 2)
    assert index.reindex(1, [rec(45)], RAWS) == 0  # past the cursor: the indexer's
