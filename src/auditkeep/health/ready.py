"""Readiness: may a load balancer send this process traffic? The storage answers a
cheap read in time, the search index is not far behind, the bus (if any) is reachable.

`/healthz` stays liveness (the process answers); `/readyz` is this (docs/operations.md).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditkeep.datadir import Node

Check = dict[str, Any]  # {"ok": bool, ...details}


@dataclass
class Readiness:
    """The thresholds of `/readyz` and what it remembers between probes: when each
    log's index was last caught up (so a lag that lasts is told from a burst)."""

    storage_timeout: float = 2.0
    max_lag_events: int = 10_000
    max_lag_seconds: float = 60.0
    bus_timeout: float = 2.0
    retry_after: int = 5
    _caught_up: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # One worker: a hung storage read must not pile up a thread per probe.
    _pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, "readyz"))

    @classmethod
    def configured(cls, n: Node) -> Readiness:
        """The thresholds of the node's `readiness:` configuration, or the defaults."""
        config = n.options.get("config")
        r = getattr(config, "readiness", None)
        if r is None:
            return cls()
        return cls(r.storage_timeout, r.max_lag_events, r.max_lag_seconds, r.bus_timeout,
                   r.retry_after)

    def close(self) -> None:
        """Let the probe thread go (it may still be blocked in a hung read)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self, n: Node) -> tuple[bool, dict[str, Check]]:
        """(ready, every check by name). Blocking: call it off the event loop."""
        checks = {"storage": self._storage(n), "index": self._index(n)}
        bus = self._bus(n)
        if bus is not None:
            checks["bus"] = bus
        return all(c["ok"] for c in checks.values()), checks

    def _storage(self, n: Node) -> Check:
        started = time.monotonic()
        try:
            self._pool.submit(n.store.get_log, "default").result(self.storage_timeout)
        except concurrent.futures.TimeoutError:
            return {"ok": False, "detail": f"a read of the store took over "
                                           f"{self.storage_timeout:g}s"}
        except Exception as exc:  # any driver error: not ready, say which
            return {"ok": False, "detail": f"a read of the store failed: {exc}"}
        return {"ok": True, "seconds": round(time.monotonic() - started, 4)}

    def _index(self, n: Node) -> Check:
        if n.indexer is None:
            return {"ok": True, "detail": "no indexer in this process"}
        try:
            lag = n.indexer.lag()
        except Exception as exc:
            return {"ok": False, "detail": f"cannot read the index cursors: {exc}"}
        now = time.monotonic()
        behind: dict[str, dict[str, float]] = {}
        worst = 0
        with self._lock:
            for log, v in lag.items():
                events = v["lag"]
                worst = max(worst, events)
                if events <= 0:
                    self._caught_up[log] = now
                    continue
                since = now - self._caught_up.setdefault(log, now)
                if events > self.max_lag_events or since > self.max_lag_seconds:
                    behind[log] = {"events": events, "seconds": round(since, 1)}
        if behind:
            return {"ok": False, "behind": behind,
                    "detail": f"the search index is behind by more than "
                              f"{self.max_lag_events:,} events or {self.max_lag_seconds:g}s "
                              f"in {', '.join(sorted(behind))}"}
        return {"ok": True, "lag_events": worst}

    def _bus(self, n: Node) -> Check | None:
        connection = n.options.get("bus")
        if connection is None:
            return None
        bus = connection.bus
        if not bus.nc.is_connected:
            return {"ok": False, "detail": f"not connected to NATS at {bus.where}"}
        stream = connection.options.stream
        try:
            bus.call(bus.js.stream_info(stream)).result(self.bus_timeout)
        except Exception as exc:
            return {"ok": False, "detail": f"stream {stream} unreachable: "
                                           f"{exc or type(exc).__name__}"}
        return {"ok": True, "stream": stream}


def readiness(n: Node) -> Readiness:
    """The node's readiness settings (n.options["readiness"], made on first use)."""
    found: Readiness | None = n.options.get("readiness")
    if found is None:
        found = n.options.setdefault("readiness", Readiness.configured(n))
    return found
