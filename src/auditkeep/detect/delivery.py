"""Delivery of stored alerts to their sinks: queued with the alert, retried with
backoff, dead-lettered when retrying cannot help.

`plan_deliveries` queues one delivery per routed sink in the engine's commit (ids
derived from the alert and sink, so a repeated pass queues nothing twice). The
`Dispatcher` sends what is due, records each outcome on the delivery, and revives a
dead delivery on request (`POST /v1/deliveries/{id}/retry`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from auditkeep.background import BackgroundLoop
from auditkeep.detect.alerting import AlertingConfig, RetryPolicy, SinkConfig
from auditkeep.detect.alerts import Alert
from auditkeep.detect.sinks import DeliveryError, Sink, build_sink
from auditkeep.storage.base import Backend, DeliveryRecord

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f2b1c0e-3d0a-5b8e-9c51-4a7d2e8f9b13")  # auditkeep deliveries
MAX_RETRY_AFTER = 86400.0  # a receiver's Retry-After is honoured up to a day
BATCH = 100


def iso(t: float) -> str:
    """Epoch seconds as the store's times: RFC 3339 UTC, milliseconds, Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def delivery_id(alert_id: str, sink: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{alert_id}\0{sink}"))


def plan_deliveries(alert: Alert, config: AlertingConfig, now: str | float
                    ) -> list[DeliveryRecord]:
    """The deliveries a new alert queues: one per routed sink, due now; none while a
    suppression window holds it."""
    if alert.suppressed_by or config.suppressed_by(alert, now) is not None:
        return []
    stamp = now if isinstance(now, str) else iso(now)
    return [DeliveryRecord(delivery_id(alert.id, s), alert.id, alert.tenant, s, "pending", 0,
                           stamp, stamp, stamp)
            for s in config.route(alert) if s in config.sinks]


def backoff(policy: RetryPolicy, attempts: int, jitter: float = 1.0) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from
    `policy.backoff`, capped at `max_backoff`, scaled into [50%, 100%] by `jitter`
    (0..1) so receivers that fail together are not retried together."""
    delay = min(policy.backoff * 2.0 ** max(attempts - 1, 0), policy.max_backoff)
    return delay * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


class Dispatcher(BackgroundLoop):
    """Sends due deliveries; one thread (`start`), woken by `notify` when the engine
    queues some. `config_provider` gives the current alerting configuration."""

    def __init__(self, store: Backend, config_provider: Callable[[], AlertingConfig], *,
                 clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = random.random,
                 idle_wait: float = 1.0,
                 build: Callable[..., Sink] = build_sink) -> None:
        super().__init__("alert-dispatcher", idle_wait)
        self._store = store
        self._config = config_provider
        self._clock = clock
        self._jitter = jitter
        self._build = build
        self._sinks: dict[str, tuple[SinkConfig, str | None, Sink]] = {}
        self._lock = threading.Lock()  # run_once and retry may come from two threads
        self.sent = 0
        self.failed = 0

    # running -----------------------------------------------------------------------

    def step(self) -> bool:
        return self.run_once() > 0

    def stop(self) -> None:
        super().stop()
        with self._lock:
            for _, _, sink in self._sinks.values():
                sink.close()
            self._sinks.clear()

    # one pass -------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Attempt every delivery due at `now` (default: the clock); how many."""
        t = self._clock() if now is None else now
        due = self._store.due_deliveries(iso(t), BATCH)
        if not due:
            return 0
        config = self._config()
        with self._lock:
            for d in due:
                self._attempt(d, config, t)
        return len(due)

    def _attempt(self, d: DeliveryRecord, config: AlertingConfig, now: float) -> None:
        stamp = iso(now)
        d.updated = stamp
        sink = self._sink(d.sink, config)
        rec = self._store.get_alert(d.tenant, d.alert_id)
        if sink is None or rec is None:
            d.status, d.next_attempt = "dead", stamp
            d.last_error = (f"sink {d.sink!r} is no longer configured" if sink is None
                            else f"alert {d.alert_id} no longer exists")
            self._store.update_delivery(d)
            self.failed += 1
            return
        d.attempts += 1
        try:
            sink.send(Alert.of(rec), delivery_id=d.id)
        except DeliveryError as exc:
            self._failed(d, config.retry, now, exc.reason, exc.retry_after, exc.permanent)
            return
        except Exception as exc:  # a bug in a sink must not stop the others
            log.exception("sink %s", d.sink)
            self._failed(d, config.retry, now, f"{type(exc).__name__}: {exc}", None, False)
            return
        d.status, d.next_attempt, d.last_error = "delivered", stamp, None
        self._store.update_delivery(d)
        self.sent += 1

    def _failed(self, d: DeliveryRecord, policy: RetryPolicy, now: float, reason: str,
                retry_after: float | None, permanent: bool) -> None:
        self.failed += 1
        d.last_error = reason[:500]
        if permanent or d.attempts >= policy.attempts:
            d.status, d.next_attempt = "dead", iso(now)
        else:
            delay = (min(retry_after, MAX_RETRY_AFTER) if retry_after is not None
                     else backoff(policy, d.attempts, self._jitter()))
            d.status, d.next_attempt = "pending", iso(now + delay)
        self._store.update_delivery(d)

    def _sink(self, name: str, config: AlertingConfig) -> Sink | None:
        cfg = config.sinks.get(name)
        cached = self._sinks.get(name)
        if cached is not None and (cfg is None or (cached[0], cached[1]) != (cfg, config.ui_url)):
            cached[2].close()
            del self._sinks[name]
            cached = None
        if cfg is None:
            return None
        if cached is None:
            cached = (cfg, config.ui_url, self._build(cfg, ui_url=config.ui_url,
                                                       clock=self._clock))
            self._sinks[name] = cached
        return cached[2]

    # the API ---------------------------------------------------------------------------

    def retry(self, tenant: str, delivery_id: str) -> DeliveryRecord | None:
        """Put a dead delivery back in the queue, due now, with a fresh set of attempts;
        None if there is no dead delivery with this id in this tenant."""
        with self._lock:
            d = self._store.get_delivery(tenant, delivery_id)
            if d is None or d.status != "dead":
                return None
            stamp = iso(self._clock())
            d = dataclasses.replace(d, status="pending", attempts=0, next_attempt=stamp,
                                    updated=stamp)
            self._store.update_delivery(d)
        self.notify()
        return d


__all__ = ["Dispatcher", "backoff", "delivery_id", "iso", "plan_deliveries"]
