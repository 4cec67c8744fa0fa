"""The connection to NATS JetStream and the one stream of the ingest bus.

One stream (default `AUDITKEEP`) holds every log's subject, `<prefix>.ingest.<log>`:
file storage, `replicas` copies, retention by limits with no `max_age` (a message
leaves only when its log's leader purges it after committing it), and `discard=new`
with `max_bytes` (default 8 GiB): a full stream refuses publishes, which ingest
answers with 503 + Retry-After; nothing is ever dropped to make room. JetStream drops a
re-published message with the same `Nats-Msg-Id` within `duplicate_window`.

The asyncio client runs on its own daemon thread with its own loop; `Bus` methods are
thread-safe, and `call` runs a coroutine there, returning a concurrent future. Driver
errors are translated here: at start, `ConfigError` in one line (unreachable server,
no JetStream, a stream we may not create); when publishing, `Pushback`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig

from auditkeep.errors import ConfigError, Pushback

log = logging.getLogger(__name__)

_T = TypeVar("_T")

GIB = 1024**3
#: JetStream's "maximum messages/bytes exceeded": the stream is full (discard=new).
_STREAM_FULL = frozenset({10077, 10078})
#: JetStream's "insufficient storage resources": it reserves a file stream's max_bytes
#: on its disk when the stream is made, and has less than that left.
_NO_STORAGE = 10047


@dataclass(frozen=True, slots=True)
class BusSettings:
    url: str
    stream: str = "AUDITKEEP"
    prefix: str = "auditkeep"
    replicas: int = 1
    max_bytes: int = 8 * GIB
    duplicate_window: float = 120.0
    connect_timeout: float = 5.0
    #: How long a publish keeps retrying (same Nats-Msg-Id) while NATS is unreachable.
    publish_retry: float = 10.0

    @property
    def subjects(self) -> str:
        return f"{self.prefix}.ingest.>"


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, nats.js.errors.APIError) and exc.description:
        return f"{exc.description} (code {exc.err_code or exc.code})"
    text = str(exc).strip().strip("'")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def pushback_on_nats_errors(what: str) -> Iterator[None]:
    """Translate the driver's errors on the request path into Pushback (503)."""
    try:
        yield
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        raise Pushback(f"the ingest bus failed to {what}: {_reason(exc)}",
                       retry_after=2) from None


class Bus:
    """One process's connection to the ingest bus."""

    def __init__(self, url: str, *, stream: str = "AUDITKEEP", prefix: str = "auditkeep",
                 replicas: int = 1, max_bytes: int = 8 * GIB, duplicate_window: float = 120.0,
                 connect_timeout: float = 5.0, publish_retry: float = 10.0) -> None:
        self.settings = BusSettings(url, stream, prefix, replicas, max_bytes, duplicate_window,
                                    connect_timeout, publish_retry)
        parts = urlsplit(url)
        #: The URL to print: never with its password.
        self.where = url.replace(f":{parts.password}@", ":***@") if parts.password else url
        self.nc = Client()
        self._js: JetStreamContext | None = None
        self._last_error: BaseException | None = None
        #: Times the connection came back: consumers made before are recreated, since
        #: a restarted server may have lost them.
        self.reconnects = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="nats-bus", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise ConfigError("the ingest bus is not connected (call Bus.connect first)")
        return self._js

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Run `coro` on the bus's loop (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def connect(self) -> None:
        """Connect and create (or update) the stream; ConfigError in one line if not."""
        self.call(self._connect()).result()

    async def _connect(self) -> None:
        s = self.settings
        where = self.where
        try:
            await asyncio.wait_for(self.nc.connect(
                s.url, name="auditkeep", connect_timeout=max(1, min(2, int(s.connect_timeout))),
                reconnect_time_wait=1, max_reconnect_attempts=-1,
                # Nothing is buffered while reconnecting: a publish we answered with
                # Pushback must not land later behind our back.
                pending_size=0,
                error_cb=self._on_error, disconnected_cb=self._on_disconnect,
                reconnected_cb=self._on_reconnect), s.connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            cause = self._last_error if isinstance(exc, TimeoutError) else exc
            await self.nc.close()
            raise ConfigError(f"cannot reach NATS at {where}: {_reason(cause)}") from None
        self._js = self.nc.jetstream(timeout=s.connect_timeout)
        await self._ensure_stream(where)

    async def _ensure_stream(self, where: str) -> None:
        s = self.settings
        want = StreamConfig(
            name=s.stream, subjects=[s.subjects], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, num_replicas=s.replicas, discard=DiscardPolicy.NEW,
            max_bytes=s.max_bytes, max_age=0, max_msgs=-1, duplicate_window=s.duplicate_window)
        js = self.js
        action = "create"
        try:
            try:
                have = (await js.stream_info(s.stream)).config
            except nats.js.errors.NotFoundError:
                await js.add_stream(want)
                return
            action = "update"
            if (have.subjects != want.subjects or have.num_replicas != want.num_replicas
                    or have.discard != want.discard or have.max_bytes != want.max_bytes
                    or have.max_age or have.duplicate_window != want.duplicate_window):
                await js.update_stream(want)
        except nats.errors.NoRespondersError:
            raise ConfigError(f"NATS at {where} has no JetStream (start it with -js)") from None
        except nats.js.errors.APIError as exc:
            hint = ""
            if exc.err_code == _NO_STORAGE:
                hint = (f"; JetStream reserves the stream's limit ({_size(s.max_bytes)}) on "
                        "its disk: free JetStream storage or lower --bus-max-bytes")
            raise ConfigError(f"NATS refused to {action} stream {s.stream}: "
                              f"{_reason(exc)}{hint}") from None
        except (TimeoutError, nats.errors.Error) as exc:
            # A denied subject gets no answer, only an -ERR the error callback saw.
            cause = self._last_error if self._last_error is not None else exc
            raise ConfigError(f"NATS refused to {action} stream {s.stream}: "
                              f"{_reason(cause)}") from None

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if self._js is not None:
            log.warning("NATS: %s", _reason(exc))

    async def _on_disconnect(self) -> None:
        if not self._closed and self._js is not None:
            log.warning("lost the connection to NATS at %s; reconnecting", self.where)

    async def _on_reconnect(self) -> None:
        self.reconnects += 1
        log.warning("reconnected to NATS at %s", self.where)

    # publishing -----------------------------------------------------------------------

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> PubAck:
        """Publish and wait for the durable PubAck, retrying (same headers, so the same
        Nats-Msg-Id) while NATS is unreachable; Pushback after `publish_retry` s or at
        once when the stream is full."""
        s = self.settings
        deadline = time.monotonic() + s.publish_retry
        pause = 0.05
        while True:
            try:
                return await self.js.publish(subject, payload, timeout=2.0,
                                             headers=dict(headers))
            except nats.js.errors.APIError as exc:
                if exc.err_code in _STREAM_FULL:
                    raise Pushback(f"the ingest bus stream {s.stream} is full "
                                   f"({s.max_bytes} bytes); sequencers are behind",
                                   retry_after=5) from None
                if exc.code != 503:
                    raise Pushback(f"NATS refused a publish to {subject}: {_reason(exc)}",
                                   retry_after=2) from None
                last: BaseException = exc  # 503: no stream leader right now
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                last = exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise Pushback(f"the ingest bus (NATS at {self.where}) did not accept the events "
                               f"within {s.publish_retry:g} s: {_reason(last)}",
                               retry_after=2)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.call(self._close()).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    async def _close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()
