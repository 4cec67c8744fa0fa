"""The indexer: a post-commit consumer that follows every log by `seq` into the search index.

Its cursor lives in the index itself, written in the same transaction as the rows,
so it indexes each entry exactly once and resumes where it stopped. It can lag,
never lose; its lag is reported by `lag()`.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson

from auditkeep.errors import AuditkeepError
from auditkeep.query.index import SearchIndex
from auditkeep.storage.base import Backend

log = logging.getLogger(__name__)

BATCH = 20_000


class Indexer:
    def __init__(self, store: Backend, index: SearchIndex, *, idle_wait: float = 0.5) -> None:
        self._store = store
        self._index = index
        self._idle_wait = idle_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.indexed = 0
        self.last_error: str | None = None

    def notify(self, _log: str = "", _size: int = 0) -> None:
        """Called after each commit, so new entries are indexed without waiting."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="indexer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
                self.last_error = None
            except AuditkeepError as exc:
                self.last_error = str(exc)
                log.exception("indexer pass failed")
                busy = False
            if not busy:
                self._wake.wait(self._idle_wait)
                self._wake.clear()

    def run_once(self) -> bool:
        """Index one batch of every log that is behind. True if anything was indexed."""
        busy = False
        cursors = self._index.cursors()
        for info in self._store.list_logs():
            start = cursors.get(info.id, 0)
            if start >= info.size:
                continue
            end = min(info.size, start + BATCH)
            records = []
            for b in self._store.read_bundles(info.id, start, end):
                for i, entry in enumerate(b.entries):
                    if start <= b.first_seq + i < end:
                        records.append(orjson.loads(entry))
            if records:
                self._index.add(info.id, records, start + len(records))
                self.indexed += len(records)
                busy = True
        return busy

    def lag(self) -> dict[str, dict[str, int]]:
        """Per log: committed size, indexed up to, and the difference."""
        cursors = self._index.cursors()
        out = {}
        for info in self._store.list_logs():
            done = cursors.get(info.id, 0)
            out[info.name] = {"size": info.size, "indexed": done, "lag": info.size - done}
        return out

    def wait_caught_up(self, timeout: float = 10.0) -> bool:
        """For tests and tools: wait until every log is fully indexed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(v["lag"] == 0 for v in self.lag().values()):
                return True
            self.notify()
            time.sleep(0.02)
        return False
