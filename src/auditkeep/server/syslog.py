"""Syslog listeners: RFC 5424 / RFC 3164 over TCP (octet-counted or newline framing,
optionally TLS) and UDP, into one tenant's log with each message kept as its raw.

They run on their own asyncio loop in a thread, beside the HTTP server, and append
through the same sequencer. Messages are committed in batches (up to `batch` messages or
`max_wait` seconds). TCP gets backpressure: a connection is not read while its batch
waits for the sequencer, and a full queue is retried, never dropped. UDP has no way to
push back: after `udp_retries` attempts against a full queue a batch is dropped and
counted (`stats["dropped"]`), which is why TCP is the recommended transport.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep.datadir import Node
from auditkeep.errors import AuditkeepError, Pushback
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.sources.syslog import map_message

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024
SUBMITTER = "syslog"


@dataclass
class SyslogOptions:
    tenant: str = "default"
    tcp: tuple[str, int] | None = None
    udp: tuple[str, int] | None = None
    tls: ssl.SSLContext | None = None
    batch: int = 500
    max_wait: float = 0.05
    udp_retries: int = 20


@dataclass
class SyslogStats:
    received: int = 0
    stored: int = 0
    dropped: int = 0  # UDP only: the queue stayed full
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class SyslogListener:
    def __init__(self, node: Node, options: SyslogOptions) -> None:
        self._node = node
        self._opts = options
        self.stats = SyslogStats()
        self.tcp_address: tuple[str, int] | None = None
        self.udp_address: tuple[str, int] | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="syslog", daemon=True)
        self._servers: list[Any] = []

    def start(self) -> None:
        """Bind the sockets (raising ConfigError-worthy OSErrors here) and start serving."""
        self._thread.start()
        self._ready.wait(10)
        if self._failed is not None:
            raise self._failed

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._bind())
        except BaseException as exc:  # reported to start()'s caller
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for s in self._servers:
                s.close()
            self._loop.close()

    async def _bind(self) -> None:
        o = self._opts
        if o.tcp is not None:
            server = await asyncio.start_server(self._tcp_client, o.tcp[0], o.tcp[1],
                                                ssl=o.tls, limit=MAX_FRAME * 2)
            self._servers.append(server)
            self.tcp_address = server.sockets[0].getsockname()[:2]
        if o.udp is not None:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=o.udp)
            self._servers.append(transport)
            self.udp_address = transport.get_extra_info("sockname")[:2]

    # -- TCP -----------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer.get_extra_info("peername"))
        batch = _Batch(self, retry=True)
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(_read_frame(reader),
                                                   timeout=self._opts.max_wait)
                except TimeoutError:
                    await batch.flush()
                    continue
                if frame is None:
                    break
                batch.add(frame, peer)
                if len(batch) >= self._opts.batch:
                    await batch.flush()  # backpressure: nothing is read meanwhile
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, ssl.SSLError) as exc:
            log.warning("syslog: connection from %s: %s", peer, exc)
        finally:
            await batch.flush()
            writer.close()

    # -- committing ------------------------------------------------------------------
    async def commit(self, items: list[tuple[bytes, str]], retry: bool) -> None:
        now = datetime.now(UTC)
        events = [map_message(raw, received=now, peer=peer) for raw, peer in items]
        self.stats.received += len(items)
        try:
            decoded = decode_events(orjson.dumps(events), ndjson=False)
            pendings = prepare(decoded, tenant=self._opts.tenant, submitter=SUBMITTER,
                               may_set_tenant=False, raws=[("syslog", raw) for raw, _ in items])
        except AuditkeepError as exc:  # a mapping bug: log it loudly, keep the listener up
            self.stats.errors += len(items)
            log.error("syslog: %d message(s) could not be prepared: %s", len(items), exc)
            return
        attempts = 0
        while True:
            try:
                fut = self._node.logs.append(self._opts.tenant, pendings)
                await asyncio.wrap_future(fut)
                self.stats.stored += len(items)
                return
            except Pushback as exc:
                attempts += 1
                if not retry and attempts > self._opts.udp_retries:
                    self.stats.dropped += len(items)
                    log.warning("syslog: dropped %d UDP message(s): the log's queue stayed "
                                "full", len(items))
                    return
                await asyncio.sleep(min(exc.retry_after, 0.2 * attempts))


class _Batch:
    """Messages waiting to be committed together."""

    def __init__(self, listener: SyslogListener, *, retry: bool) -> None:
        self._listener = listener
        self._retry = retry
        self._items: list[tuple[bytes, str]] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, raw: bytes, peer: str) -> None:
        self._items.append((raw, peer))

    async def flush(self) -> None:
        if self._items:
            items, self._items = self._items, []
            await self._listener.commit(items, self._retry)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, listener: SyslogListener) -> None:
        self._listener = listener
        self._pending: list[tuple[bytes, str]] = []
        self._timer: asyncio.TimerHandle | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._pending.append((data, _peer(addr)))
        if len(self._pending) >= self._listener._opts.batch:
            self._flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._listener._opts.max_wait, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._pending = self._pending, []
        if items:
            asyncio.get_running_loop().create_task(self._listener.commit(items, False))


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One message: RFC 6587 octet counting (`LEN SP MSG`) when the frame starts with a
    digit, else up to the next newline (non-transparent framing)."""
    first = await reader.read(1)
    if not first:
        return None
    if first.isdigit():
        digits = first + await reader.readuntil(b" ")
        n = int(digits[:-1])
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes is over {MAX_FRAME}")
        return await reader.readexactly(n)
    try:
        line = first + await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:  # the last line, without its newline
        line = first + exc.partial
    return line.rstrip(b"\r\n")


def _peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
        return f"{host}:{addr[1]}"
    return str(addr)


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:514`)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 -- an explicit ':PORT'

