"""The sequencer side of the bus: lead the logs whose lease this process takes, and
sequence each one's messages in stream order, exactly once.

Every `scan_interval` s the logs in the store are listed; for each one not led here, a
`LeaseKeeper` tries to take its lease. Once it holds it, the log's `bus_seq` is read
from the store (after taking the lease, so no earlier leader can still move it) and the
log's subject is consumed in stream order from `bus_seq + 1`, by an ephemeral pull
consumer without acknowledgements. Each message's events go to the log's leased
Sequencer with `mark` = the message's stream sequence, which the commit stores as the
log's `bus_seq` in the same transaction: the database row is the cursor, so a new
leader resumes right after the last committed message, with no gap and no repeat. A
gap in the consumer's own sequence (a lost fetch, NATS restarting) recreates the
consumer from the last message handed over, so nothing is skipped or reordered.

The answer (receipts, checkpoint, size, or the error) goes to the message's reply
inbox. When the lease is lost, or a commit fails, the log's consumer stops at once,
its Sequencer is dropped and this process goes back to trying to take the lease
(a failed commit resumes from the committed `bus_seq`). Messages up to the committed
`bus_seq` are purged from the stream every `purge_interval` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from auditkeep import errors
from auditkeep.bus import codec
from auditkeep.bus.client import Bus
from auditkeep.log.lease import LeaseKeeper
from auditkeep.log.sequencer import AppendResult, Sequencer
from auditkeep.log.service import LogService
from auditkeep.storage.base import LogInfo

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Led:
    """One log this process leads, and the task consuming its subject."""

    info: LogInfo
    keeper: LeaseKeeper
    sequencer: Sequencer
    cursor: int  # the newest stream seq handed to the sequencer (or committed)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: Future[None] | None = None
    failure: BaseException | None = None
    submitted: int = 0  # messages handed to the sequencer


class BusSequencers:
    """Lead logs under leases and feed their Sequencers from the bus."""

    def __init__(self, bus: Bus, logs: LogService, holder: str, lease_ttl: float = 5.0, *,
                 scan_interval: float = 0.5, purge_interval: float = 5.0,
                 fetch_batch: int = 256) -> None:
        self._bus = bus
        self._logs = logs
        self.holder = holder
        # Consumer names allow letters, digits, - and _ only (the holder is host:pid).
        self.holder_token = re.sub(r"[^A-Za-z0-9_-]", "-", holder)[:40]
        self.lease_ttl = lease_ttl
        self.scan_interval = scan_interval
        self.purge_interval = purge_interval
        self.fetch_batch = fetch_batch
        self._led: dict[str, _Led] = {}
        self._answering: set[asyncio.Future[None]] = set()
        # A log whose leading failed (not for a lost lease) waits before the next try:
        # name -> (monotonic time of the next try, the pause after that one).
        self._retry: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def leading(self) -> list[str]:
        """The logs this process leads now."""
        with self._lock:
            return sorted(n for n, led in self._led.items() if led.task is not None
                          and not led.task.done())

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name="bus-sequencers",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming, commit what was handed over, release every lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            led = list(self._led.values())
            self._led.clear()
        for one in led:
            self._bus.loop.call_soon_threadsafe(one.stopping.set)
        for one in led:
            if one.task is not None:
                with contextlib.suppress(Exception):
                    one.task.result(timeout)
            self._release(one)

    # the supervisor thread --------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._scan()
            except Exception:
                log.exception("the bus sequencers' scan failed; trying again")
            self._stop.wait(self.scan_interval)

    def _scan(self) -> None:
        for info in self._logs.store.list_logs():
            if self._stop.is_set():
                return
            with self._lock:
                if info.name in self._led:
                    continue
            retry = self._retry.get(info.name)
            if retry is not None and time.monotonic() < retry[0]:
                continue
            self._try_lead(info)

    def _try_lead(self, info: LogInfo) -> None:
        name = info.name
        keeper = LeaseKeeper(self._logs.store, info.id, self.holder, self.lease_ttl,
                             on_lost=lambda: self._lost(name))
        if not keeper.acquire():
            return
        keeper.start()
        try:
            sequencer = self._logs.lead(name, keeper)
            # Read after taking the lease: no earlier leader can move it any more.
            current = self._logs.store.get_log(name)
        except Exception as exc:
            log.warning("could not lead log %s: %s", name, exc)
            self._back_off(name)
            keeper.stop(release=True)
            with contextlib.suppress(Exception):
                self._logs.drop(name)
            return
        if current is None:  # pragma: no cover - logs are never deleted
            keeper.stop(release=True)
            self._logs.drop(name)
            return
        self._retry.pop(name, None)
        led = _Led(current, keeper, sequencer, current.bus_seq)
        with self._lock:
            self._led[name] = led
        log.info("%s leads log %s (epoch %d) from bus seq %d", self.holder, name,
                 keeper.epoch, current.bus_seq + 1)
        led.task = self._bus.call(self._consume(led))

    def _lost(self, name: str) -> None:
        with self._lock:
            led = self._led.get(name)
        if led is not None:
            led.failure = led.failure or errors.FencedError(f"log {name}: lease lost")
            self._bus.loop.call_soon_threadsafe(led.stopping.set)

    def _reap(self) -> None:
        """Drop the logs whose consumer ended (lease lost, commit failed)."""
        with self._lock:
            ended = [(n, led) for n, led in self._led.items()
                     if led.task is not None and led.task.done()]
            for n, _ in ended:
                del self._led[n]
        for name, led in ended:
            crash = led.task.exception() if led.task is not None else None
            if crash is not None:
                log.error("%s: the bus consumer of log %s failed", self.holder, name,
                          exc_info=crash)
            log.warning("%s stops leading log %s: %s", self.holder, name,
                        led.failure or crash or "its consumer ended")
            if not led.keeper.lost and not isinstance(led.failure, errors.FencedError):
                self._back_off(name)
            self._release(led)

    def _back_off(self, name: str) -> None:
        _, pause = self._retry.get(name, (0.0, 0.5))
        self._retry[name] = (time.monotonic() + pause, min(pause * 2, 30.0))

    def _release(self, led: _Led) -> None:
        with contextlib.suppress(Exception):
            self._logs.drop(led.info.name)  # commits what it holds, unless fenced off
        led.keeper.stop(release=not led.keeper.lost)

    # on the bus's loop --------------------------------------------------------------------

    async def _consume(self, led: _Led) -> None:
        name = led.info.name
        settings = self._bus.settings
        subject = codec.ingest_subject(settings.prefix, name)
        purge_task = asyncio.create_task(self._purge_forever(led, subject))
        pause = 0.1
        try:
            while not self._stopped(led):
                consumer = f"{self.holder_token}-{uuid.uuid4().hex[:12]}"
                try:
                    await self._bus.js.add_consumer(settings.stream, ConsumerConfig(
                        name=consumer, filter_subject=subject,
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=led.cursor + 1, ack_policy=AckPolicy.NONE,
                        max_deliver=1, inactive_threshold=60.0, mem_storage=True,
                        num_replicas=1))
                    sub = await self._bus.js.pull_subscribe_bind(stream=settings.stream,
                                                                 name=consumer)
                except (TimeoutError, nats.errors.Error) as exc:
                    log.warning("log %s: cannot read the bus yet: %s", name, exc)
                    await self._pause(led, pause)
                    pause = min(pause * 2, 2.0)
                    continue
                pause = 0.1
                try:
                    await self._read(led, sub)
                finally:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    with contextlib.suppress(Exception):
                        await self._bus.js.delete_consumer(settings.stream, consumer)
        finally:
            purge_task.cancel()

    def _stopped(self, led: _Led) -> bool:
        return (led.stopping.is_set() or led.failure is not None or led.keeper.lost
                or led.sequencer.fenced)

    async def _pause(self, led: _Led, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(led.stopping.wait(), seconds)

    async def _read(self, led: _Led, sub: JetStreamContext.PullSubscription) -> None:
        """Hand messages over in order until stopped or the consumer skips one."""
        expected = 1  # the consumer's own sequence of the next message
        reconnects = self._bus.reconnects
        idle = 0
        while not self._stopped(led):
            if self._bus.reconnects != reconnects:
                return  # the server may have restarted and lost the consumer
            try:
                msgs = await sub.fetch(self.fetch_batch, timeout=1.0)
            except TimeoutError:
                idle += 1
                if idle % 10 == 0 and not await self._consumer_exists(sub):
                    return
                continue
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                log.warning("log %s: reading the bus failed (%s); reading again from seq %d",
                            led.info.name, exc, led.cursor + 1)
                await self._pause(led, 0.5)
                return
            idle = 0
            for msg in msgs:
                meta = msg.metadata
                if meta.sequence.consumer != expected:
                    log.warning("log %s: the bus consumer skipped from %d to %d; reading "
                                "again from seq %d", led.info.name, expected,
                                meta.sequence.consumer, led.cursor + 1)
                    return
                expected += 1
                seq = meta.sequence.stream
                if seq <= led.cursor:
                    continue  # committed already
                if not await self._hand_over(led, msg, seq):
                    return
                led.cursor = seq

    async def _consumer_exists(self, sub: JetStreamContext.PullSubscription) -> bool:
        try:
            await sub.consumer_info()
        except nats.js.errors.NotFoundError:
            return False
        except (TimeoutError, nats.errors.Error):
            pass  # unreachable right now: the reconnect is what tells
        return True

    async def _hand_over(self, led: _Led, msg: Msg, seq: int) -> bool:
        """Give one message to the sequencer; False if this log must stop."""
        headers = msg.headers or {}
        reply = headers.get(codec.REPLY_HEADER)
        request = headers.get(codec.REQUEST_HEADER, "")
        try:
            pendings = codec.decode_pendings(msg.data)
        except errors.CorruptionError as exc:
            # It can never be sequenced; holding the log up for it would stop every
            # later message. Skipped loudly, and its sender is told.
            log.error("log %s: skipping bus message %d: %s", led.info.name, seq, exc)
            await self._answer(reply, request, codec.encode_error(request, exc))
            return True
        if not pendings:
            return True
        while True:
            if self._stopped(led):
                return False
            try:
                future = led.sequencer.submit(pendings, mark=seq)
                break
            except errors.Pushback:
                await asyncio.sleep(0.02)  # the queue is full: wait, in order
            except errors.AuditkeepError as exc:
                led.failure = exc
                return False
        led.submitted += 1
        loop = asyncio.get_running_loop()
        future.add_done_callback(
            lambda f: loop.call_soon_threadsafe(self._committed, led, f, reply, request, seq))
        return True

    def _committed(self, led: _Led, future: Future[AppendResult], reply: str | None,
                   request: str, seq: int) -> None:
        exc = future.exception()
        if exc is not None and not isinstance(exc, errors.ConflictError):
            # Not committed: stop here, so nothing after it is handed over; the next
            # leader (maybe this process again) resumes from the committed bus_seq.
            if led.failure is None:
                led.failure = exc
            led.stopping.set()
        if reply:
            payload = codec.encode_error(request, exc) if exc is not None \
                else codec.encode_result(request, future.result())
            task = asyncio.ensure_future(self._answer(reply, request, payload))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, reply: str | None, request: str, payload: bytes) -> None:
        if not reply:
            return
        try:
            await self._bus.nc.publish(reply, payload, headers={codec.REQUEST_HEADER: request})
        except Exception as exc:  # the ingest node falls back to the store
            log.debug("could not answer on %s: %s", reply, exc)

    async def _purge_forever(self, led: _Led, subject: str) -> None:
        """Purge the log's messages up to its committed bus_seq, now and then."""
        purged = 0
        store = self._logs.store
        while True:
            await asyncio.sleep(self.purge_interval)
            try:
                info = await asyncio.to_thread(store.get_log, led.info.name)
                if info is not None and info.bus_seq > purged:
                    await self._bus.js.purge_stream(self._bus.settings.stream,
                                                    subject=subject, seq=info.bus_seq + 1)
                    purged = info.bus_seq
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("log %s: purge failed: %s", led.info.name, exc)
