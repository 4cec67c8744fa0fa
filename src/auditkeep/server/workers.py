"""Ingest worker processes: decode, validate, stages, schemas and `prepare` of a request
body run in a child process, so they use another core instead of the server's GIL.

The server process keeps HTTP, authentication and the one sequencer per log; a worker
only turns a body into prepared events (`batches.prepare_batch`, the same function the
server runs without workers) and sends them back as a compact pickle of columns. A
worker writes nothing: when one dies, the request it held is retried once on a fresh
worker, then refused with 503 + Retry-After; nothing of it was stored either way.
Workers exit when the server closes their pipe or dies (they watch their parent's pid).
"""

from __future__ import annotations

import array
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import threading
import traceback
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from auditkeep.errors import AuditkeepError, Pushback
from auditkeep.pipeline.prepare import Pending
from auditkeep.privacy.pseudonyms import PSEUDONYM_SECRET
from auditkeep.server.batches import BatchFacts, IngestJob, PreparedBatch, prepare_batch
from auditkeep.server.pipelines import Pipelines

if TYPE_CHECKING:  # a worker process need not import the configuration's loaders
    from auditkeep.pipeline.config import ServerConfig

log = logging.getLogger(__name__)

#: Request bytes that may wait for a worker before ingest answers 503.
MAX_QUEUED_BYTES = 64 * 1024 * 1024
#: A worker that has not answered in this long is killed (the request gets a 503).
REPLY_TIMEOUT = 120.0

_Conn = multiprocessing.connection.Connection


class IngestWorkers:
    """`count` worker processes, each fed by its own thread in the server process (the
    threads block on pipes with the GIL released)."""

    def __init__(self, count: int, db: str | Path, config: ServerConfig | None,
                 pipelines: Pipelines, *, max_queued_bytes: int = MAX_QUEUED_BYTES) -> None:
        if count < 1:
            raise ValueError("IngestWorkers needs at least one worker")
        self.count = count
        self.restarts = 0  # workers replaced after dying
        self._args = (str(db), config)
        self._pipelines = pipelines
        self._max_queued = max_queued_bytes
        self._queued = 0
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[IngestJob, Future[PreparedBatch]] | None] = (
            queue.SimpleQueue())
        self._slots = [_Slot(self, i) for i in range(count)]

    def start(self, timeout: float = 60.0) -> None:
        """Start every worker and wait until each has imported and opened what it needs
        (in parallel), so the server reports ready only once they are."""
        for slot in self._slots:
            slot.spawn()
        for slot in self._slots:
            slot.start(timeout)

    def submit(self, job: IngestJob) -> Future[PreparedBatch]:
        """The prepared batch, or the error the server itself would have raised."""
        size = len(job.body)
        with self._lock:
            if self._queued and self._queued + size > self._max_queued:
                raise Pushback(f"{self._queued} request bytes are already waiting for an "
                               "ingest worker", retry_after=1)
            self._queued += size
        future: Future[PreparedBatch] = Future()
        self._jobs.put((job, future))
        return future

    def pids(self) -> list[int]:
        return [pid for s in self._slots if (pid := s.pid) is not None]

    def close(self, timeout: float = 10.0) -> None:
        for _ in self._slots:
            self._jobs.put(None)
        for slot in self._slots:
            slot.join(timeout)

    def _done(self, job: IngestJob) -> None:
        with self._lock:
            self._queued -= len(job.body)


class _Slot:
    """One worker process and the thread that talks to it."""

    def __init__(self, pool: IngestWorkers, number: int) -> None:
        self._pool = pool
        self._number = number
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: _Conn | None = None
        self._thread = threading.Thread(target=self._run, name=f"ingest-worker-{number}",
                                        daemon=True)

    @property
    def pid(self) -> int | None:
        p = self._proc
        return p.pid if p is not None and p.is_alive() else None

    def spawn(self) -> None:
        self._spawn()

    def start(self, timeout: float) -> None:
        if not self._ready(timeout):
            log.warning("ingest worker %s is not ready after %.0f s", self.pid, timeout)
        self._thread.start()

    def _ready(self, timeout: float) -> bool:
        """Wait for the worker's hello (sent once its imports and set-up are done)."""
        conn = self._conn
        try:
            if conn is not None and conn.poll(timeout) and conn.recv_bytes() == _HELLO:
                return True
        except (EOFError, OSError):
            pass
        self._stop_process(1.0)  # a late hello must not be read as an answer: start over
        return False

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._stop_process(timeout)

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe(duplex=True)
        # Our pid goes with it, as for the indexer: a child whose parent dies before it
        # runs would read 1 from getppid() and never notice.
        proc = ctx.Process(target=_work, args=(theirs, os.getpid(), *self._pool._args),
                           name=f"auditkeep-ingest-{self._number}", daemon=True)
        proc.start()
        theirs.close()  # so the worker's end sees EOF when we go, and ours when it does
        self._proc, self._conn = proc, mine

    def _stop_process(self, timeout: float) -> None:
        if self._conn is not None:
            self._conn.close()  # the worker reads EOF and exits
            self._conn = None
        if self._proc is not None:
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout)
            self._proc = None

    def _run(self) -> None:
        while True:
            item = self._pool._jobs.get()
            if item is None:
                return
            job, future = item
            try:
                if future.set_running_or_notify_cancel():
                    self._answer(job, future)
            finally:
                self._pool._done(job)

    def _answer(self, job: IngestJob, future: Future[PreparedBatch]) -> None:
        try:
            reply = self._call(job)
            kind, counts, payload = pickle.loads(reply)  # noqa: S301 -- our own child's pipe
            if counts is not None:
                self._pool._pipelines.add_counts(*counts)
            if kind == "ok":
                future.set_result(decode_batch(payload))
            elif kind == "error":
                future.set_exception(payload)
            else:
                log.error("ingest worker failed:\n%s", payload)
                future.set_exception(RuntimeError("an ingest worker failed (see the server log)"))
        except BaseException as exc:  # the future must always be answered
            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def _call(self, job: IngestJob) -> bytes:
        header = orjson.dumps((job.ndjson, job.tenant, job.route_by_events, job.submitter,
                               job.is_admin, self._pool._pipelines.schemas.generation))
        for attempt in (1, 2):
            if self._proc is None or self._conn is None:  # a dead one shows as EPIPE or EOF
                self._replace()
            conn = self._conn
            if conn is None:  # the new worker never said it was ready
                break
            try:
                conn.send_bytes(header)
                conn.send_bytes(job.body)
                if not conn.poll(REPLY_TIMEOUT):
                    log.error("ingest worker %s gave no answer in %.0f s; killing it",
                              self.pid, REPLY_TIMEOUT)
                    self._replace()
                    break
                return conn.recv_bytes()
            except (EOFError, OSError):
                log.warning("ingest worker %s exited while preparing a request (attempt %d)",
                            self._proc.pid if self._proc else None, attempt)
                self._replace()
        raise Pushback("an ingest worker exited while preparing this request; nothing of it "
                       "was stored", retry_after=1)

    def _replace(self) -> None:
        had = self._proc is not None
        self._stop_process(1.0)
        self._spawn()
        self._ready(60.0)
        if had:
            with self._pool._lock:
                self._pool.restarts += 1


# What goes over the pipe ------------------------------------------------------------
# Columns, not Pending objects: pickling 1,000 slot dataclasses and their dicts costs
# ~30 µs an event, these columns ~1 µs to write and ~1.5 µs to read back as Pendings.

_EMPTY: dict[str, Any] = {}
_HELLO = b"ready"


def encode_batch(batch: PreparedBatch) -> tuple[Any, ...]:
    ps = batch.pendings
    if any(p.raw is not None for p in ps):  # pragma: no cover - /v1/events has no raws
        raise ValueError("prepared events with raw originals do not go through workers")
    return (batch.tenant, batch.dropped, "\n".join(p.id for p in ps),
            bytes(p.explicit_id | p.plain << 1 for p in ps), b"".join(p.digest for p in ps),
            orjson.dumps([p.personal for p in ps]),
            array.array("q", [p.dedup_key for p in ps]).tobytes(),
            [p.entry_head for p in ps], [p.entry_tail for p in ps],
            [p.subjects for p in ps] if any(p.subjects for p in ps) else None,
            None if batch.facts is None else (batch.facts.received, batch.facts.skew,
                                              batch.facts.unknown))


def decode_batch(cols: tuple[Any, ...]) -> PreparedBatch:
    """Pendings as the worker prepared them. Their `fields` are left empty: nothing after
    `prepare` reads them (the entry is `entry_head`, seq, `entry_tail`)."""
    tenant, dropped, ids, flags, digests, personal, keys, heads, tails, subjects, facts = cols
    if not heads:
        return PreparedBatch(tenant, [], dropped)
    empty = _EMPTY
    pendings = [
        Pending(i, bool(f & 1), empty, digests[32 * k : 32 * k + 32], p, d, bool(f & 2), h, t)
        for k, (i, f, p, d, h, t) in enumerate(zip(
            ids.split("\n"), flags, orjson.loads(personal), array.array("q", keys).tolist(),
            heads, tails, strict=True))]
    if subjects is not None:
        for pending, keys_of in zip(pendings, subjects, strict=True):
            pending.subjects = tuple(keys_of)
    return PreparedBatch(tenant, pendings, dropped,
                         None if facts is None else BatchFacts(*facts))


_K = TypeVar("_K")


# The worker process ------------------------------------------------------------------

def _work(conn: _Conn, parent: int, db: str, config: ServerConfig | None) -> None:
    from auditkeep.pipeline.schemas import ActionSchemas
    from auditkeep.storage.open import open_store

    # Ctrl-C reaches the whole process group; the server stops us by closing the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(200_000, 20, 100)  # as `serve` does, for the same reason
    store = open_store(db, cache_mib=4)  # read only: the action schemas
    pipelines = Pipelines(config, ActionSchemas(store), secret=store.secret(PSEUDONYM_SECRET))
    generation = 0
    try:
        conn.send_bytes(_HELLO)
        while True:
            while not conn.poll(1.0):
                if os.getppid() != parent:
                    return
            try:
                header = conn.recv_bytes()
                body = conn.recv_bytes()
            except (EOFError, OSError):
                return
            ndjson, tenant, route, submitter, is_admin, gen = orjson.loads(header)
            if gen != generation:
                pipelines.schemas.forget()
                generation = gen
            conn.send_bytes(_run_job(pipelines, IngestJob(body, ndjson, tenant, route,
                                                          submitter, is_admin)))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        with contextlib.suppress(Exception):
            store.close()


def _run_job(pipelines: Pipelines, job: IngestJob) -> bytes:
    dropped_before = dict(pipelines.dropped)
    violations_before = dict(pipelines.schemas.violations)
    redactions_before = dict(pipelines.redactions)
    reply: tuple[str, Any]
    try:
        reply = ("ok", encode_batch(prepare_batch(job, pipelines)))
    except AuditkeepError as exc:
        reply = ("error", exc)
    except Exception:
        reply = ("crash", traceback.format_exc())
    counts = (_delta(pipelines.dropped, dropped_before),
              _delta(pipelines.schemas.violations, violations_before),
              _delta(pipelines.redactions, redactions_before))
    kind, payload = reply
    try:
        return pickle.dumps((kind, counts if any(counts) else None, payload), protocol=5)
    except Exception:  # an error that does not pickle: its text still reaches the log
        return pickle.dumps(("crash", None, traceback.format_exc()), protocol=5)


def _delta(now: dict[_K, int], before: dict[_K, int]) -> dict[_K, int]:
    return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
