"""The indexer: a post-commit consumer that follows every log by `seq` into the search index.

Its cursor lives in the index itself, written in the same transaction as the rows,
so it indexes each entry exactly once and resumes where it stopped. It can lag,
never lose; its lag is reported by `lag()`.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from auditkeep.background import BackgroundLoop
from auditkeep.errors import AuditkeepError
from auditkeep.query.index import SearchIndex
from auditkeep.storage.base import Backend

if TYPE_CHECKING:
    from auditkeep.query.pgindex import PgSearchIndex

log = logging.getLogger(__name__)

BATCH = 20_000
#: The second pass takes smaller bites, so a backlog of fields never holds up the
#: first pass (new events' columns and free text) for long: each bite is sized to take
#: about FIELD_SECONDS at the rate the last one ran, at most FIELD_BATCH (5,000 halves
#: the commit cost per event against 1,000: each commit writes the `attrs` pages it
#: touched) and, below that, at least FIELD_MIN.
FIELD_BATCH = 5_000
FIELD_MIN = 200
FIELD_SECONDS = 0.15
#: How many parsed records the first pass keeps for the second, per log.
PARSED_KEPT = 100_000


class _Following:
    """What both indexer flavours share: how far behind the logs the index is."""

    _store: Backend
    _index: SearchIndex | PgSearchIndex

    def notify(self, _log: str = "", _size: int = 0) -> None:
        """Called after each commit."""

    def lag(self) -> dict[str, dict[str, int]]:
        return index_lag(self._store, self._index)

    def wait_caught_up(self, timeout: float = 10.0) -> bool:
        """For tests and tools: wait until every log is fully indexed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(v["lag"] == 0 for v in self.lag().values()):
                return True
            self.notify()
            time.sleep(0.02)
        return False


class Indexer(BackgroundLoop, _Following):
    def __init__(self, store: Backend, index: SearchIndex | PgSearchIndex, *,
                 idle_wait: float = 0.5) -> None:
        super().__init__("indexer", idle_wait)
        self._store = store
        self._index = index
        self.indexed = 0
        # The records the first pass parsed, by log: the second pass usually wants the
        # same ones next, and reading and parsing them again cost as much as indexing.
        # (first seq, end seq, records): purged entries have no record.
        self._parsed: dict[int, list[tuple[int, int, list[dict[str, Any]]]]] = {}
        self._field_rate = float(FIELD_BATCH / FIELD_SECONDS)  # events/s of the last bite

    def step(self) -> bool:
        return self.run_once()

    def run_once(self) -> bool:
        """Index one batch of every log that is behind. True if anything was indexed.

        Two passes: the columns and free text first, for every log, then the `attrs`
        rows (every other field), which cost about as much again. Under load the hot
        fields stay searchable within a second while the other fields trail behind;
        both lags are in `lag()`."""
        busy = False
        cursors = self._index.cursors()
        for info in self._store.list_logs():
            start = cursors.get(info.id, 0)
            if start >= info.size:
                continue
            end = min(info.size, start + BATCH)
            records = self._records(info.id, start, end)
            if self._index.add(info.id, records, end, fields=False, first=start):
                self.indexed += len(records)
                kept = self._parsed.setdefault(info.id, [])
                kept.append((start, end, records))
                while sum(len(r) for _, _, r in kept) > PARSED_KEPT:
                    kept.pop(0)
                busy = True
        cursors = self._index.cursors()
        done = self._index.field_cursors()
        for log_id, upto in cursors.items():
            start = done.get(log_id, 0)
            if start >= upto:
                continue
            bite = min(FIELD_BATCH, max(FIELD_MIN, int(self._field_rate * FIELD_SECONDS)))
            end = min(upto, start + bite)
            t = time.perf_counter()
            parsed = self._kept(log_id, start, end)
            if parsed is not None:
                records, end = parsed
            else:
                records = self._records(log_id, start, end)
            raws = parsed_raws(self._store.read_raws(log_id, start, end))
            if self._index.add_fields(log_id, records, end, raws, first=start):
                self._field_rate = len(records) / max(time.perf_counter() - t, 1e-6)
                busy = True
        return busy

    def _kept(self, log_id: int, start: int, end: int
              ) -> tuple[list[dict[str, Any]], int] | None:
        """Records [start, end) as the first pass parsed them, if it still holds them,
        with the end of what it holds (those below `start` are let go: the second pass
        is past them)."""
        kept = self._parsed.get(log_id, [])
        while kept and kept[0][1] <= start:
            kept.pop(0)
        if kept and kept[0][0] <= start:
            end = min(end, kept[0][1])
            return [r for r in kept[0][2] if start <= r["seq"] < end], end
        return None

    def _records(self, log_id: int, start: int, end: int) -> list[dict[str, Any]]:
        records = []
        for b in self._store.read_bundles(log_id, start, end):
            for i, entry in enumerate(b.entries):
                if start <= b.first_seq + i < end and entry:  # b"": purged (retention/)
                    records.append(orjson.loads(entry))
        return records


def reindex(store: Backend, index: SearchIndex | PgSearchIndex, log_id: int,
            seqs: Sequence[int]) -> int:
    """Index again the entries of `seqs` that rehydration put back (archive/reading.py);
    the index forgot them when they were purged. How many were indexed."""
    keep = set(seqs)
    wanted = sorted(keep)
    if not wanted:
        return 0
    records = []
    for b in store.read_bundles(log_id, wanted[0], wanted[-1] + 1):
        for i, entry in enumerate(b.entries):
            seq = b.first_seq + i
            if entry and seq in keep:
                records.append(orjson.loads(entry))
    raws = parsed_raws(store.read_raws(log_id, wanted[0], wanted[-1] + 1))
    return index.reindex(log_id, records, raws)


def parsed_raws(raws: dict[int, tuple[str, bytes]]) -> dict[int, Any]:
    """The raw source objects that are JSON, parsed, so `raw.*` fields are searchable.
    Protobuf and syslog raws stay bytes only (their mapped fields are in the record)."""
    out: dict[int, Any] = {}
    for seq, (fmt, data) in raws.items():
        if fmt in NOT_JSON:
            continue
        try:
            out[seq] = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
    return out


NOT_JSON = frozenset({"otlp.protobuf", "syslog"})


def index_lag(store: Backend, index: SearchIndex | PgSearchIndex) -> dict[str, dict[str, int]]:
    """Per log: committed size; how far the columns and free text (`indexed`) and every
    other field (`fields_indexed`) go; `lag`, what is not yet fully searchable."""
    cursors = index.cursors()
    fields = index.field_cursors()
    out = {}
    for info in store.list_logs():
        done = cursors.get(info.id, 0)
        extra = fields.get(info.id, 0)
        out[info.name] = {"size": info.size, "indexed": done, "fields_indexed": extra,
                          "lag": info.size - min(done, extra)}
    return out


class IndexerProcess(_Following):
    """The indexer in a child process, so it runs on the other core instead of
    competing with ingest for the GIL. It polls every `poll` seconds, holds a lock file
    so only one indexer works on a data directory, and exits when its parent dies."""

    def __init__(self, db: str, search_db: str, lock: Path, store: Backend,
                 index: SearchIndex | PgSearchIndex, *, poll: float = 0.05) -> None:
        # `db`, `search_db`: a SQLite path each, or the same PostgreSQL URL twice.
        self._args = (db, search_db, str(lock), poll)
        self._store = store
        self._index = index
        self._proc: multiprocessing.process.BaseProcess | None = None
        self.indexed = 0
        self.last_error: str | None = None

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        # Our pid goes with it: the child cannot read its parent's pid itself, since a
        # parent killed before the child starts leaves it reading 1 (init) and running
        # forever (seen in the crash test).
        self._proc = ctx.Process(target=_index_forever, args=(*self._args, os.getpid()),
                                 name="indexer", daemon=True)
        self._proc.start()

    def stop(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(10)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()



def _index_forever(db: str, search_db: str, lock_path: str, poll: float, parent: int) -> None:
    from auditkeep.storage.open import open_index, open_store

    lock = open(lock_path, "a")  # noqa: SIM115 -- held for the process's life
    fcntl.flock(lock, fcntl.LOCK_EX)  # wait for a previous indexer to finish its batch
    store = open_store(db)
    indexer = Indexer(store, open_index(search_db))
    while os.getppid() == parent:
        try:
            busy = indexer.run_once()
        except AuditkeepError:
            log.exception("indexer pass failed")
            busy = False
        if not busy:
            time.sleep(poll)
