"""A database restored from an older copy is refused, not silently forked."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from auditkeep.datadir import DataDir, open_node
from auditkeep.errors import ConfigError
from tests.log.tamper import populate


def backup(data: DataDir, to: str) -> None:
    src = sqlite3.connect(data.db)
    dst = sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()


def test_restoring_an_older_database_refuses_to_append(data_dir: DataDir, tmp_path) -> None:
    populate(data_dir, commits=3)
    old = str(tmp_path / "old.db")
    backup(data_dir, old)
    populate(data_dir, commits=2)  # more entries, more checkpoints in the journal
    for suffix in ("", "-wal", "-shm"):
        p = data_dir.root / f"auditkeep.db{suffix}"
        if p.exists():
            p.unlink()
    shutil.copy(old, data_dir.db)
    with pytest.raises(ConfigError, match="rolled back"):
        open_node(data_dir, with_index=False)


def test_a_cleanly_reopened_log_is_accepted(data_dir: DataDir) -> None:
    populate(data_dir, commits=2)
    n = open_node(data_dir, with_index=False)
    try:
        assert n.logs.size("default") == 20
    finally:
        n.close()
