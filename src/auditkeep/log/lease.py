"""One sequencer per log across processes: a lease in the store, kept alive here.

The store decides who holds a log's lease, by its own clock, and every commit names the
lease it was made under (`Commit.fence`), so the store refuses a commit from a holder
whose lease lapsed or passed on, in the commit's own transaction. This keeper adds the
local half: it renews the lease every `ttl / 3` s and answers `valid()` from the
monotonic clock, with a margin, so a holder that was paused (SIGSTOP, a long GC, a
stalled VM) past its lease notices on waking and stops before it signs anything. The
store's check is what makes two writers impossible; the local one keeps a stale holder
from even signing a checkpoint it could never store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from auditkeep.errors import AuditkeepError
from auditkeep.storage.base import Backend, Lease

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, store: Backend, log_id: int, holder: str, ttl: float = 5.0,
                 on_lost: Callable[[], None] | None = None) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be positive")
        self._store = store
        self.log_id = log_id
        self.holder = holder
        self.ttl = ttl
        self._on_lost = on_lost
        self._lease: Lease | None = None
        self._deadline = 0.0  # monotonic: past this, the lease may have lapsed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    @property
    def current(self) -> Lease | None:
        return self._lease

    @property
    def epoch(self) -> int:
        return self._lease.epoch if self._lease is not None else 0

    def _margin(self) -> float:
        return self.ttl / 5

    def acquire(self) -> bool:
        """Try once to take (or renew) the lease."""
        asked = time.monotonic()
        lease = self._store.acquire_lease(self.log_id, self.holder, self.ttl)
        with self._lock:
            if lease is None:
                return False
            # Counted from before the request: the store's expiry is at least this late.
            self._lease, self._deadline, self.lost = lease, asked + self.ttl, False
        return True

    def valid(self) -> bool:
        """Held, and by the local clock not within the margin of lapsing."""
        with self._lock:
            return (self._lease is not None and not self.lost
                    and time.monotonic() < self._deadline - self._margin())

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_forever, daemon=True,
                                            name=f"lease:{self.log_id}")
            self._thread.start()

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.ttl)
        lease, self._lease = self._lease, None
        if release and lease is not None and not self.lost:
            try:
                self._store.release_lease(lease)
            except AuditkeepError:
                log.warning("could not release the lease of log %s", self.log_id)

    def renew(self) -> bool:
        """Renew once; False (and lost) if the lease is gone."""
        lease = self._lease
        if lease is None or self.lost:
            return False
        asked = time.monotonic()
        if asked >= self._deadline:  # lapsed locally (we were paused): never renew it
            self._lose()
            return False
        try:
            renewed = self._store.renew_lease(lease, self.ttl)
        except AuditkeepError:
            log.warning("could not renew the lease of log %s", self.log_id, exc_info=True)
            return self.valid()  # keep trying while it has not lapsed
        if renewed is None:
            self._lose()
            return False
        with self._lock:
            self._lease, self._deadline = renewed, asked + self.ttl
        return True

    def _lose(self) -> None:
        with self._lock:
            if self.lost:
                return
            self.lost = True
        log.warning("sequencer %s lost the lease of log %s (epoch %d)", self.holder,
                    self.log_id, self.epoch)
        if self._on_lost is not None:
            self._on_lost()

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if not self.renew():
                return


#: The lease of no log (log ids start at 1): who runs the deployment's single-process
#: background work (detection, the PII scan).
BACKGROUND = 0


class LeasedWork:
    """Work that one process of a deployment runs at a time: started while this process
    holds the BACKGROUND lease, stopped when it loses it, tried again every `ttl / 3` s
    (so it moves to another sequencer within about a lease when its process dies)."""

    def __init__(self, store: Backend, holder: str, ttl: float,
                 start: Callable[[], None], stop: Callable[[], None]) -> None:
        self._keeper = LeaseKeeper(store, BACKGROUND, holder, ttl)
        self._start, self._stop_work = start, stop
        self._running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="leased-work")

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._keeper.ttl)
        if self._running:
            self._stop_work()
            self._running = False
        self._keeper.stop(release=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._running and not self._keeper.renew():
                    self._running = False
                    self._stop_work()
                elif not self._running and self._keeper.acquire():
                    self._running = True
                    self._start()
            except AuditkeepError:
                log.warning("background lease: the store failed", exc_info=True)
            self._stop.wait(self._keeper.ttl / 3)
