"""A commit that fails must not let a later bus message commit past it."""

from __future__ import annotations

import time
from pathlib import Path

from auditkeep.bus import BusAppender, BusSequencers
from auditkeep.bus.client import Bus
from auditkeep.errors import StorageError
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.storage.base import Commit
from auditkeep.storage.sqlite import SQLiteBackend
from tests.bus.conftest import eventually
from tests.bus.test_end_to_end import stored_ids
from tests.log.test_sequencer import pendings


class FlakyStore(SQLiteBackend):
    """Fails the first commit of a marked batch, slowly (a database hiccup)."""

    failed = False

    def append(self, commit: Commit) -> None:
        if commit.bus_seq is not None and not self.failed:
            self.failed = True
            time.sleep(0.3)  # the next message queues up meanwhile
            raise StorageError("commit to log acme failed: connection reset")
        super().append(commit)


def test_a_failed_commit_loses_no_accepted_message(bus: Bus, tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "flaky.db")
    ring = KeyRing(store, tmp_path / "keys")
    ring.ensure()
    # One request per group commit, so the two messages commit separately.
    logs = LogService(store, ring, sequencer_options={"max_batch": 2})
    appender = BusAppender(bus, store, origin=logs.origin)
    one, two = pendings(2), pendings(2)
    appender.accept("acme", one).result(10)
    appender.accept("acme", two).result(10)
    seqs = BusSequencers(bus, logs, "host:9", lease_ttl=2.0, scan_interval=0.05)
    seqs.start()
    try:
        eventually(lambda: len(stored_ids(store, "acme")) >= 2, timeout=10)
        time.sleep(1.0)  # the leader resumes from the committed bus_seq
        assert sorted(stored_ids(store, "acme")) == sorted(p.id for p in one + two)
    finally:
        seqs.stop()
        logs.close()
        store.close()


def test_a_commit_that_failed_once_is_read_again_and_answered(bus: Bus, tmp_path: Path
                                                              ) -> None:
    store = FlakyStore(tmp_path / "flaky.db")
    ring = KeyRing(store, tmp_path / "keys")
    ring.ensure()
    logs = LogService(store, ring)
    appender = BusAppender(bus, store, origin=logs.origin, reply_wait=1.0, deadline=20.0)
    seqs = BusSequencers(bus, logs, "host:10", lease_ttl=2.0, scan_interval=0.05)
    seqs.start()
    try:
        sent = pendings(3)
        result = appender.append("acme", sent).result(30)
        assert store.failed
        assert [r.id for r in result.receipts] == stored_ids(store, "acme") == [
            p.id for p in sent]
        info = store.get_log("acme")
        assert info is not None and info.bus_seq == 1
    finally:
        seqs.stop()
        appender.close()
        logs.close()
        store.close()
