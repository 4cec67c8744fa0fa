"""The ingest side of the bus: publish a request's prepared events, then (for
`?wait=committed`) wait for the log's leader to answer with receipts.

Before its first message to a log, the node creates the log's row (`open_log`), so the
sequencers find the log and take its lease. One message per accepted request per log
(a request over the server's max payload is
split into several, each answered on its own), with `Nats-Msg-Id` = `<log>:<event id>`
(or `<log>:<sha256 of the joined ids>` for a batch), so JetStream drops a re-publish
within its duplicate window. Every message names this process's reply inbox and a
request id; the leader answers there once the events are committed. A missed answer
(the leader failed over, the reply was lost, the message was a duplicate of another
node's) is made up for by looking the events up in the store by their dedup keys. A
leader that failed to commit them (lost its lease, its database failed) is not the end:
the message stays on the bus for the next leader, so the wait goes on. If
they are still not committed after `deadline` s, the append fails with
`CommitPending`: the events are durably accepted on the bus, and will be committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import nats.js.errors
import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import PubAck

from auditkeep import errors
from auditkeep.bus import codec
from auditkeep.bus.client import Bus, pushback_on_nats_errors
from auditkeep.log.sequencer import AppendResult, Receipt
from auditkeep.pipeline.prepare import Pending
from auditkeep.storage.base import Backend

log = logging.getLogger(__name__)

#: Room left in a message for headers and framing, under the server's max payload.
_HEADROOM = 4096


#: Errors of a leader after which the message is still to be committed by the next.
_STILL_ON_THE_BUS = (errors.FencedError, errors.StorageError)
_FINAL = (errors.CorruptionError,)


class CommitPending(errors.AuditkeepError):
    """The events are durably on the ingest bus but were not committed in time: they
    will be (the server may answer 202 with `ids`)."""

    status = 202
    title = "Accepted, not yet committed"
    slug = "accepted"

    def __init__(self, detail: str, ids: list[str]) -> None:
        super().__init__(detail)
        self.ids = ids


def default_origin(name: str) -> str:
    return f"auditkeep.local/{name}"


class BusAppender:
    """`append`/`accept` for a LogService whose sequencers run behind the bus."""

    def __init__(self, bus: Bus, store: Backend | None = None, *,
                 origin: Callable[[str], str] | None = None, reply_wait: float = 3.0,
                 deadline: float = 30.0, poll: float = 0.5) -> None:
        self._bus = bus
        self._store = store
        self._origin = origin or default_origin
        self.reply_wait = reply_wait
        self.deadline = deadline
        self.poll = poll
        self._known: set[str] = set()  # logs whose row exists
        self._waiters: dict[str, asyncio.Future[bytes]] = {}
        self._inbox = ""
        self._sub: Subscription | None = None

    def use_store(self, store: Backend, origin: Callable[[str], str] | None = None) -> None:
        """The store to create logs in and look commits up in; `origin`: a log's origin
        (pass `LogService.origin`)."""
        self._store = store
        if origin is not None:
            self._origin = origin

    def append(self, name: str, pendings: list[Pending]) -> Future[AppendResult]:
        """Receipts once committed (`?wait=committed`)."""
        return self._bus.call(self._append(name, pendings))

    def accept(self, name: str, pendings: list[Pending]) -> Future[list[str]]:
        """The event ids once the bus holds them durably (`?wait=accepted`)."""
        return self._bus.call(self._accept(name, pendings))

    def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                self._bus.call(self._sub.unsubscribe()).result(5)
            self._sub = None

    # on the bus's loop ------------------------------------------------------------------

    def _store_or_fail(self) -> Backend:
        if self._store is None:
            raise errors.ConfigError("the bus appender has no store (call use_store)")
        return self._store

    async def _open_log(self, name: str) -> None:
        """Make sure the log's row exists, so sequencers find it and take its lease."""
        if name not in self._known:
            store = self._store_or_fail()
            await asyncio.to_thread(store.open_log, name, self._origin(name))
            self._known.add(name)

    async def _reply_inbox(self) -> str:
        if self._sub is None:
            self._inbox = self._bus.nc.new_inbox()
            with pushback_on_nats_errors("subscribe to its reply inbox"):
                self._sub = await self._bus.nc.subscribe(self._inbox, cb=self._on_reply)
        return self._inbox

    async def _on_reply(self, msg: Msg) -> None:
        request = (msg.headers or {}).get(codec.REQUEST_HEADER, "")
        waiter = self._waiters.get(request)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg.data)

    def _chunks(self, pendings: list[Pending]) -> list[tuple[list[Pending], bytes]]:
        limit = max(self._bus.nc.max_payload - _HEADROOM, 1)
        payload = codec.encode_pendings(pendings)
        if len(payload) <= limit or len(pendings) == 1:
            # A single event is at most 64 KiB (MAX_EVENT_BYTES) plus its raw original.
            return [(pendings, payload)]
        half = len(pendings) // 2
        return self._chunks(pendings[:half]) + self._chunks(pendings[half:])

    async def _publish(self, name: str, pendings: list[Pending], reply: bool
                       ) -> list[tuple[list[Pending], str, PubAck]]:
        await self._open_log(name)
        subject = codec.ingest_subject(self._bus.settings.prefix, name)
        inbox = await self._reply_inbox() if reply else ""
        sent: list[tuple[list[Pending], str, PubAck]] = []
        try:
            for chunk, payload in self._chunks(pendings):
                request = uuid.uuid4().hex
                headers = {codec.MSG_ID_HEADER: codec.msg_id(name, chunk)}
                if reply:
                    headers[codec.REPLY_HEADER] = inbox
                    headers[codec.REQUEST_HEADER] = request
                    self._waiters[request] = asyncio.get_running_loop().create_future()
                try:
                    ack = await self._bus.publish(subject, payload, headers)
                except BaseException:
                    self._waiters.pop(request, None)
                    raise
                sent.append((chunk, request, ack))
        except BaseException:
            for _, request, _ in sent:
                self._waiters.pop(request, None)
            raise
        return sent

    async def _accept(self, name: str, pendings: list[Pending]) -> list[str]:
        if not pendings:
            return []
        for chunk, _, ack in await self._publish(name, pendings, reply=False):
            if ack.duplicate:
                await self._same_as_original(name, chunk, ack)
        return [p.id for p in pendings]

    async def _same_as_original(self, name: str, pendings: list[Pending], ack: PubAck
                                ) -> None:
        """JetStream dropped this message as a duplicate of message `ack.seq` (same
        ids): ConflictError unless that one holds the same content, since a 202 must
        not hide a 409."""
        with pushback_on_nats_errors(f"read message {ack.seq} to compare a duplicate"):
            try:
                original = await self._bus.js.get_msg(self._bus.settings.stream, ack.seq)
            except nats.js.errors.NotFoundError:
                original = None
        if original is None:
            # Purged, so committed: the store has the original.
            await asyncio.to_thread(self._lookup, name, pendings, True)
            return
        earlier = {p.id: p.digest for p in codec.decode_pendings(original.data or b"")}
        for p in pendings:
            digest = earlier.get(p.id)
            if digest is not None and digest != p.digest:
                raise errors.ConflictError(
                    f"event id {p.id!r} was already accepted (bus seq {ack.seq}) with "
                    f"different content: accepted sha256 {digest.hex()}, sent sha256 "
                    f"{p.digest.hex()}")

    async def _append(self, name: str, pendings: list[Pending]) -> AppendResult:
        if not pendings:  # nothing to sequence: the latest checkpoint, if there is one
            store = self._store_or_fail()
            info = await asyncio.to_thread(store.get_log, name)
            cp = await asyncio.to_thread(store.latest_checkpoint, info.id) if info else None
            return AppendResult([], cp.note if cp else "", cp.size if cp else 0)
        sent = await self._publish(name, pendings, reply=True)
        started = time.monotonic()
        results = await asyncio.gather(
            *(self._committed(name, chunk, request, ack, started)
              for chunk, request, ack in sent), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for r in failed:
            if not isinstance(r, CommitPending):
                raise r
        if failed:  # the rest is committed: every event is accepted, at least
            raise CommitPending(str(failed[0]), [p.id for p in pendings])
        done = [r for r in results if isinstance(r, AppendResult)]
        if len(done) == 1:
            return done[0]
        last = max(done, key=lambda r: r.size)
        return AppendResult([rc for r in done for rc in r.receipts], last.checkpoint, last.size)

    async def _committed(self, name: str, pendings: list[Pending], request: str, ack: PubAck,
                         started: float) -> AppendResult:
        waiter = self._waiters[request]
        try:
            # A duplicate's answer went to whoever published it first: look it up soon.
            first = 0.2 if ack.duplicate else self.reply_wait
            end = started + self.deadline
            wait = first
            while True:
                try:
                    data = await asyncio.wait_for(asyncio.shield(waiter),
                                                  max(0.0, min(wait, end - time.monotonic())))
                except TimeoutError:
                    pass
                else:
                    _, answer = codec.decode_reply(data)
                    if not isinstance(answer, errors.AuditkeepError):
                        return answer
                    if isinstance(answer, _FINAL) or not isinstance(answer, _STILL_ON_THE_BUS):
                        raise answer
                    # The leader failed to commit it (lost its lease, the database
                    # failed): the message stays on the bus for the next leader.
                    log.info("log %s: %s; waiting for the next leader", name, answer)
                    waiter = self._waiters[request] = asyncio.get_running_loop(
                        ).create_future()
                try:
                    found = await asyncio.to_thread(self._lookup, name, pendings,
                                                    bool(ack.duplicate))
                except errors.ConflictError:
                    raise
                except errors.AuditkeepError as exc:
                    log.info("log %s: cannot look the events up yet: %s", name, exc)
                    found = None
                if found is not None:
                    return found
                if time.monotonic() >= end:
                    raise CommitPending(
                        f"{len(pendings)} event(s) for log {name} are accepted on the ingest "
                        f"bus (stream {ack.stream}, seq {ack.seq}) but were not committed "
                        f"within {self.deadline:.0f} s; they will be", [p.id for p in pendings])
                wait = self.poll
        finally:
            self._waiters.pop(request, None)

    # in a worker thread ---------------------------------------------------------------

    def _lookup(self, name: str, pendings: list[Pending], duplicate: bool
                ) -> AppendResult | None:
        """Receipts from the store if every event is committed and a stored checkpoint
        covers them; None if not yet; ConflictError if an id holds other content."""
        store = self._store_or_fail()
        info = store.get_log(name)
        if info is None or info.size == 0:
            return None
        stored = store.find_dedup(info.id, list({p.dedup_key for p in pendings}))
        candidates = sorted({s for p in pendings for s in stored.get(p.dedup_key, ())})
        if not candidates:
            return None
        by_seq = self._entries(store, info.id, candidates)
        seqs: list[int] = []
        for p in pendings:
            for s in stored.get(p.dedup_key, ()):
                entry_id, digest = by_seq.get(s, ("", b""))
                if entry_id == p.id or (entry_id is None and digest == p.digest):
                    if digest != p.digest:
                        raise errors.ConflictError(
                            f"event id {p.id!r} was already stored at seq {s} with different "
                            f"content: stored sha256 {digest.hex()}, sent sha256 "
                            f"{p.digest.hex()}")
                    seqs.append(s)
                    break
            else:
                return None
        cp = store.latest_checkpoint(info.id)
        if cp is None or cp.size <= max(seqs):
            return None  # committed, but its checkpoint is not stored yet
        leaves = store.read_nodes(info.id, [(0, s) for s in seqs])
        return AppendResult([Receipt(p.id, s, leaf, duplicate)
                             for p, s, leaf in zip(pendings, seqs, leaves, strict=True)],
                            cp.note, cp.size)

    @staticmethod
    def _entries(store: Backend, log_id: int, seqs: list[int]
                 ) -> dict[int, tuple[str | None, bytes]]:
        """seq -> (event id, digest) of stored entries; the id is None where retention
        purged the entry (its digest stays, as the sequencer's dedup check uses it)."""
        out: dict[int, tuple[str | None, bytes]] = {}
        wanted = set(seqs)
        # A request's events are mostly consecutive: read their span in one go.
        spans = [(seqs[0], seqs[-1] + 1)] if seqs[-1] - seqs[0] < 4 * len(seqs) + 256 \
            else [(s, s + 1) for s in seqs]
        for start, end in spans:
            for b in store.read_bundles(log_id, start, end):
                for i, entry in enumerate(b.entries):
                    s = b.first_seq + i
                    if s in wanted and not entry:
                        out[s] = (None, b.digests[i])
                    elif s in wanted:
                        rec: Any = orjson.loads(entry)
                        out[s] = (str(rec["id"]), b.digests[i])
        return out
