"""AUDITKEEP_SQLITE_CACHE_MIB caps every SQLite page cache: the store's connections and
the search index's writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditkeep.errors import ConfigError
from auditkeep.query.index import SearchIndex
from auditkeep.storage.sqlite import CACHE_ENV, SQLiteBackend


def cache_kib(conn: object) -> int:
    return -int(conn.execute("PRAGMA cache_size").fetchone()[0])  # type: ignore[attr-defined]


def test_the_defaults_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    store = SQLiteBackend(tmp_path / "a.db")
    index = SearchIndex(tmp_path / "s.db")
    try:
        assert cache_kib(store._conns.reader()) == 64 * 1024
        assert cache_kib(index._writer) == 512 * 1024
    finally:
        store.close()
        index.close()


def test_the_variable_caps_store_and_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv(CACHE_ENV, "8")
    store = SQLiteBackend(tmp_path / "a.db")
    index = SearchIndex(tmp_path / "s.db")
    try:
        assert cache_kib(store._conns.reader()) == 8 * 1024
        assert cache_kib(index._writer) == 8 * 1024
        assert cache_kib(index._reader()) == 8 * 1024
    finally:
        store.close()
        index.close()


@pytest.mark.parametrize("value", ["lots", "0", "-3"])
def test_a_bad_value_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        value: str) -> None:
    monkeypatch.setenv(CACHE_ENV, value)
    with pytest.raises(ConfigError, match=CACHE_ENV):
        SQLiteBackend(tmp_path / "a.db")
