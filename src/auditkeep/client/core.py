"""`AuditClient` and `AsyncAuditClient`: emit on the caller's thread, send in the background.

`emit` checks the event, writes it to the spool and returns (a few µs). One sender thread
per client ships batches. The async client is the same machinery with awaitable
`flush`/`aclose`/`verify_receipts`; both share every line of batching and spooling.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import os
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from auditkeep.client.events import build_event, encode_event
from auditkeep.client.receipts import ReceiptBook, ReceiptReport
from auditkeep.client.sender import Sender, Spool, Stats
from auditkeep.client.spool import DiskSpool, MemorySpool, adopt_orphans, open_spools
from auditkeep.errors import SpoolFull
from auditkeep.privacy.policy import RedactionPolicy

log = logging.getLogger(__name__)

Durability = Literal["disk", "memory"]
OnFull = Literal["block", "drop"]
ORPHAN_SCAN_SECONDS = 10.0


def default_spool_dir(url: str) -> Path:
    """A per-user cache directory for `url`'s spool ($XDG_CACHE_HOME/auditkeep/spool/…)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "auditkeep" / "spool" / hashlib.sha256(url.encode()).hexdigest()[:16]


class AuditClient:
    """Send audit events without slowing the caller and without losing them.

    `durability="disk"` (default): `emit` returns once the event is in the spool file;
    unsent events survive a crash and are sent by the next client on the same
    `spool_dir`. `"memory"`: for tests and low-stakes events; lost if the process dies.
    When the spool holds `spool_limit` bytes, `on_full="block"` waits up to
    `block_timeout` seconds for room (then raises SpoolFull); `"drop"` drops events
    below `critical` severity (counted, logged). Critical events are never dropped.
    `redaction`: a `RedactionPolicy` applied to a copy of every event before it is
    spooled, so secrets never reach the spool file or the network (docs/privacy.md).
    """

    def __init__(self, url: str, token: str, spool_dir: str | Path | None = None,
                 durability: Durability = "disk", *, batch_size: int = 500,
                 batch_age: float = 0.2, spool_limit: int = 256 << 20,
                 on_full: OnFull = "block", block_timeout: float = 5.0,
                 verifier_keys: Sequence[str] | None = None, tenant: str | None = None,
                 timeout: float = 10.0, fsync: bool = False,
                 close_timeout: float = 5.0, redaction: RedactionPolicy | None = None) -> None:
        if durability not in ("disk", "memory"):
            raise ValueError(f"durability must be 'disk' or 'memory', got {durability!r}")
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        if batch_size < 1 or batch_size > 10_000:
            raise ValueError(f"batch_size must be 1..10000, got {batch_size}")
        self.url = url.rstrip("/")
        self._token = token
        self._redaction = redaction
        self.durability = durability
        self._root = Path(spool_dir) if spool_dir is not None else default_spool_dir(self.url)
        self._fsync = fsync
        self._batch_size = batch_size
        self._batch_age = batch_age
        self._limit = spool_limit
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._timeout = timeout
        self._close_timeout = close_timeout
        self._tenant = tenant
        self.stats_ = Stats()
        self._closed = False
        self._last_drop_warning = 0.0
        self._book = ReceiptBook(self._root / "receipts" if durability == "disk" else None,
                                 verifier_keys)
        self._verifier_keys = verifier_keys
        self._open()
        _register(self)

    def _open(self) -> None:
        self._orphans: list[DiskSpool] = []
        self._corrupt_before = 0  # corrupt records of orphans already drained and removed
        self._spool: Spool
        if self.durability == "disk":
            self._spool, self._orphans = open_spools(self._root, fsync=self._fsync)
            if self._orphans:
                log.info("auditkeep: sending events left in %d spool(s) of earlier processes",
                         len(self._orphans))
        else:
            self._spool = MemorySpool()
        self._next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
        self._http = httpx.Client(base_url=self.url, timeout=self._timeout,
                                  headers={"Authorization": f"Bearer {self._token}"})
        path = "/v1/events" + (f"?tenant={self._tenant}" if self._tenant else "")
        rejected = self._root / "rejected.ndjson" if self.durability == "disk" else None
        self._sender = Sender(self._spools, self._http, self._book, self.stats_,
                              batch_size=self._batch_size, batch_age=self._batch_age,
                              path=path, rejected_file=rejected)
        self._sender.start()

    def _spools(self) -> list[Spool]:
        """What the sender drains: spools of dead processes first (older events)."""
        for o in [o for o in self._orphans if o.drained()]:
            self._corrupt_before += o.corruption.records
            o.remove()
            self._orphans.remove(o)
        if isinstance(self._spool, DiskSpool) and time.monotonic() > self._next_scan:
            self._next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
            known = {self._spool.directory} | {o.directory for o in self._orphans}
            self._orphans += adopt_orphans(self._root, known, fsync=self._fsync)
        spools: list[Spool] = [*self._orphans, self._spool]
        self.stats_.corrupt_records = self._corrupt_before + sum(
            s.corruption.records for s in spools)
        return spools

    # -- emitting ------------------------------------------------------------------
    def emit(self, action: str, actor: Any = None, outcome: str = "success",
             **fields: Any) -> str:
        """Record one event; returns its id. Fields the call leaves out are taken from
        `auditkeep.context` (actor, tenant, request_id, trace_id, span_id)."""
        return self.emit_event(build_event(action, actor, outcome, fields))

    def emit_event(self, event: dict[str, Any]) -> str:
        """Record one complete schema v1 event (it should carry its own `id`). With a
        `redaction` policy, a redacted copy is what is spooled and sent."""
        if self._redaction is not None:
            event = self._redaction.apply(orjson.loads(orjson.dumps(event)))
        payload = encode_event(event)
        if not self._room_for(len(payload), event.get("severity") == "critical"):
            return str(event.get("id", ""))
        self._spool.append(payload)
        self.stats_.emitted += 1
        if (self._spool.appended - self._spool.acked >= self._batch_size
                and not self._sender.wake.is_set()):
            self._sender.wake.set()
        return str(event.get("id", ""))

    def _room_for(self, n: int, critical: bool) -> bool:
        if self._closed:
            raise RuntimeError("this AuditClient is closed")
        if self._spool.pending_bytes + n <= self._limit or critical:
            return True
        if self._on_full == "drop":
            self.stats_.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_warning > 10:
                self._last_drop_warning = now
                log.warning("auditkeep: spool full (%d bytes); dropping non-critical events "
                            "(%d so far)", self._limit, self.stats_.dropped)
            return False
        deadline = time.monotonic() + self._block_timeout
        self._sender.wake.set()
        with self._sender.progress:
            while self._spool.pending_bytes + n > self._limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SpoolFull(f"the audit spool stayed full ({self._limit} bytes) for "
                                    f"{self._block_timeout} s; is the server reachable?")
                self._sender.progress.wait(left)
        return True

    def sync(self) -> None:
        """Make every event emitted so far survive a power loss, not only a crash (one
        fsync; for a caller that must not record progress before its events are safe,
        like the agent saving file offsets). Nothing to do in memory mode."""
        if isinstance(self._spool, DiskSpool):
            self._spool.sync()

    # -- flushing and closing ------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted before this call is acknowledged (True), or
        `timeout` passes (False; the events stay spooled)."""
        target = self._spool.appended
        deadline = None if timeout is None else time.monotonic() + timeout
        self._sender.wake.set()
        with self._sender.progress:
            while self._spool.acked < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._sender.progress.wait(0.05 if left is None else min(left, 0.05))
                self._sender.wake.set()
        return True

    def close(self, timeout: float | None = None) -> None:
        """Send what is spooled for up to `timeout` s (default `close_timeout`), then stop.
        What is left stays in a disk spool for the next client; in memory it is lost
        (logged)."""
        if self._closed:
            return
        self._closed = True
        self._sender.stop(self._close_timeout if timeout is None else timeout)
        left = self._spool.appended - self._spool.acked
        if left and self.durability == "memory":
            log.warning("auditkeep: closing with %d unsent event(s) in a memory spool: lost",
                        left)
        self._spool.close()
        for o in self._orphans:
            o.close()
        self._http.close()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        s = self.stats_
        return {"emitted": s.emitted, "sent": s.sent, "duplicates": s.duplicates,
                "retried": s.retried, "dropped": s.dropped, "rejected": s.rejected,
                "corrupt_records": s.corrupt_records,
                "spooled_bytes": self._spool.pending_bytes
                + sum(o.pending_bytes for o in self._orphans),
                "pending": self._spool.appended - self._spool.acked,
                "last_error": s.last_error}

    def latest_checkpoint(self, tenant: str) -> str | None:
        """The newest signed checkpoint the server gave this client for `tenant`."""
        return self._book.latest_checkpoint(tenant)

    def verify_receipts(self, witnesses: Sequence[str] = (),
                        min_witnesses: int | None = None) -> ReceiptReport:
        """Prove that the server still holds what it acknowledged: its current checkpoint
        extends the one this client kept, and includes every receipt not yet proven.
        With `witnesses` (verifier keys), receipts must be in a checkpoint cosigned by
        `min_witnesses` of them (default all); see docs/witnesses.md."""
        return self._book.verify(self._get, witnesses, min_witnesses)

    def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        resp = self._http.get(path, params=params)
        resp.raise_for_status()
        if resp.headers.get("content-type", "").startswith("text/plain"):
            return resp.text
        return resp.json()

    def _after_fork(self) -> None:
        """In a forked child: a spool and a sender of its own (the parent keeps its)."""
        if self._closed:
            return
        self.stats_ = Stats()
        if isinstance(self._spool, DiskSpool):
            # Closing inherited descriptors does not release the parent's lock: flock
            # belongs to the open file, which the parent still holds.
            for s in (self._spool, *self._orphans):
                os.close(s.lock_fd)
        elif isinstance(self._spool, MemorySpool):
            self._spool.discard()
        self._book = ReceiptBook(self._root / "receipts" if self.durability == "disk" else None,
                                 self._verifier_keys)
        self._open()


class AsyncAuditClient:
    """`AuditClient` for asyncio code: the same spool and sender, awaitable waits."""

    def __init__(self, url: str, token: str, spool_dir: str | Path | None = None,
                 durability: Durability = "disk", **options: Any) -> None:
        self.sync = AuditClient(url, token, spool_dir, durability, **options)

    async def emit(self, action: str, actor: Any = None, outcome: str = "success",
                   **fields: Any) -> str:
        """As `AuditClient.emit`; when the spool is full (`block`), waits off the loop."""
        event = build_event(action, actor, outcome, fields)
        return await self.emit_event(event)

    async def emit_event(self, event: dict[str, Any]) -> str:
        s = self.sync
        if s._spool.pending_bytes < s._limit:  # the common case, no thread hop
            return s.emit_event(event)
        return await asyncio.to_thread(s.emit_event, event)

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.sync.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.sync.close, timeout)

    async def verify_receipts(self, witnesses: Sequence[str] = (),
                              min_witnesses: int | None = None) -> ReceiptReport:
        return await asyncio.to_thread(self.sync.verify_receipts, witnesses, min_witnesses)

    def stats(self) -> dict[str, Any]:
        return self.sync.stats()

    async def __aenter__(self) -> AsyncAuditClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- process-wide hooks and the default client ---------------------------------------
_clients: weakref.WeakSet[AuditClient] = weakref.WeakSet()
_default: AuditClient | None = None


def _register(client: AuditClient) -> None:
    _clients.add(client)


def _close_all() -> None:
    for c in list(_clients):
        c.close()


def _fork_child() -> None:
    for c in list(_clients):
        try:
            c._after_fork()
        except Exception:  # one broken client must not leave the others without a sender
            log.exception("auditkeep: could not set up a client in the forked child")


atexit.register(_close_all)
os.register_at_fork(after_in_child=_fork_child)


def set_default_client(client: AuditClient | None) -> None:
    """The client that integrations and `@audited` use when given none."""
    global _default
    _default = client


def get_default_client() -> AuditClient | None:
    return _default


def configure(url: str, token: str, **options: Any) -> AuditClient:
    """Create an `AuditClient` and make it the default."""
    client = AuditClient(url, token, **options)
    set_default_client(client)
    return client
