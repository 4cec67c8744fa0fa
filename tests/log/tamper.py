"""A populated data directory and the hands of an attacker with write access to it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.storage.codec import pack_entries, unpack_entries


def populate(data: DataDir, commits: int = 12, per_commit: int = 10) -> None:
    """`commits` group commits of `per_commit` events each; a checkpoint is persisted
    after every commit, so there are many checkpoints to check."""
    n = open_node(data, with_index=False, sequencer_options={"checkpoint_interval": 0.0})
    try:
        for c in range(commits):
            body = orjson.dumps([
                {"action": "orders.delete", "actor": {"id": f"u{i}", "type": "user",
                                                      "email": f"u{i}@example.com"},
                 "outcome": "success", "resource": {"type": "order", "id": str(c * 100 + i)}}
                for i in range(per_commit)])
            pendings = prepare(decode_events(body, ndjson=False), tenant="default",
                               submitter="tok_test", may_set_tenant=False)
            n.logs.append("default", pendings).result(10)
    finally:
        n.close()


class Attacker:
    def __init__(self, data: DataDir) -> None:
        self.db = sqlite3.connect(data.db, isolation_level=None)
        self.log_id = self.db.execute("SELECT id FROM logs WHERE name='default'").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def bundles(self) -> list[tuple[int, int, int]]:
        """(rowid, first_seq, count) in seq order."""
        return self.db.execute("SELECT id, first_seq, count FROM bundles WHERE log_id=? "
                               "ORDER BY first_seq", (self.log_id,)).fetchall()

    def entries(self, rowid: int) -> list[bytes]:
        blob, count = self.db.execute("SELECT entries, count FROM bundles WHERE id=?",
                                      (rowid,)).fetchone()
        return unpack_entries(blob, count, "attack")

    def write_entries(self, rowid: int, entries: list[bytes]) -> None:
        self.db.execute("UPDATE bundles SET entries=?, count=? WHERE id=?",
                        (pack_entries(entries), len(entries), rowid))

    def edit_entry(self, seq: int, old: bytes, new: bytes) -> None:
        for rowid, first, count in self.bundles():
            if first <= seq < first + count:
                es = self.entries(rowid)
                assert old in es[seq - first]
                es[seq - first] = es[seq - first].replace(old, new, 1)
                self.write_entries(rowid, es)
                return
        raise AssertionError(f"no bundle holds {seq}")

    def execute(self, sql: str, *args: Any) -> Any:
        with closing(self.db.cursor()) as cur:
            cur.execute(sql, args)
            return cur.fetchall()
