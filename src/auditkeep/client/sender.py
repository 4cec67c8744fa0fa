"""The SDK's background sender: batches from the spools to `POST /v1/events`, with retries.

A batch leaves when `batch_size` events wait or the oldest has waited `batch_age`. Errors
that may pass (network, 5xx, 429, 503) are retried with exponential backoff and full
jitter, never sooner than the server's `Retry-After`. Auth errors are retried too (slowly,
logged): an operator fixing a token must not find events gone. Only an event the server
refuses on its own merits (400 naming it, 409) leaves the spool unsent, into
`rejected.ndjson` beside it with the reason, counted. Nothing else ever leaves unsent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from auditkeep.client.receipts import ReceiptBook
from auditkeep.client.spool import Corruption, Cursor

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 8 << 20  # the server takes 10 MiB a request
BACKOFF_BASE = 0.1
BACKOFF_CAP = 30.0


class Spool(Protocol):
    pending_bytes: int
    appended: int
    acked: int
    writable: bool
    corruption: Corruption

    def append(self, payload: bytes) -> None: ...
    def read(self, max_records: int, max_bytes: int) -> tuple[list[bytes], Cursor]: ...
    def ack(self, cursor: Cursor, records: int, nbytes: int) -> None: ...
    def drained(self) -> bool: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class Stats:
    emitted: int = 0
    sent: int = 0  # acknowledged by the server (duplicates included)
    duplicates: int = 0  # acknowledged as already stored (a retry of a lost answer)
    retried: int = 0  # events in requests that had to be sent again
    dropped: int = 0  # events refused at `emit` under the `drop` policy
    rejected: int = 0  # events the server refused on their merits (see rejected.ndjson)
    corrupt_records: int = 0
    last_error: str | None = None
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Verdict:
    """What one attempt at a batch came to."""

    kind: str  # done | retry | refused | bisect
    wait: float = 0.0  # retry: not before this many seconds (Retry-After)
    refused: list[tuple[int, Any]] = field(default_factory=list)  # refused: (index, why)
    problem: Any = None  # bisect: the server's problem document


class Sender:
    def __init__(self, spools: Callable[[], list[Spool]], http: httpx.Client, book: ReceiptBook,
                 stats: Stats, *, batch_size: int, batch_age: float, path: str,
                 rejected_file: Path | None) -> None:
        self._spools = spools
        self._http = http
        self._book = book
        self._stats = stats
        self._batch_size = batch_size
        self._batch_age = batch_age
        self._path = path
        self._rejected_file = rejected_file
        self.wake = threading.Event()  # set: send now (a full batch, a flush, a close)
        self.progress = threading.Condition()  # notified after every acknowledged batch
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._closing.clear()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="auditkeep-sender", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None) -> None:
        """Send what is spooled for up to `timeout` seconds, then stop."""
        self._deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        self._closing.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(None if timeout is None else timeout + 1.0)

    def _run(self) -> None:
        while True:
            sent_any = False
            for spool in self._spools():
                while True:
                    payloads, cursor = spool.read(self._batch_size, MAX_BATCH_BYTES)
                    if not payloads:
                        break
                    if not self._deliver(payloads):
                        return  # closing with the server unreachable: left in the spool
                    spool.ack(cursor, len(payloads), sum(len(p) for p in payloads))
                    sent_any = True
                    with self.progress:
                        self.progress.notify_all()
                    if len(payloads) < self._batch_size and not self._closing.is_set():
                        break  # a partial batch: wait for more
            if self._closing.is_set() and not sent_any:
                return
            if not sent_any or not self._closing.is_set():
                self.wake.wait(self._batch_age)
                self.wake.clear()

    # -- one batch -------------------------------------------------------------------
    def _deliver(self, payloads: list[bytes]) -> bool:
        """Send until the server has every payload (stored or refused on its merits);
        False when closing ran out of time first."""
        attempt = 0
        while True:
            v = self._send(payloads)
            if v.kind == "done":
                return True
            if v.kind == "refused":  # the server named the events it refuses
                payloads = self._reject(payloads, v.refused)
                if not payloads:
                    return True
                continue
            if v.kind == "bisect":  # refused, but not said which: halve until one is left
                if len(payloads) == 1:
                    self._reject(payloads, [(0, v.problem)])
                    return True
                half = len(payloads) // 2
                return self._deliver(payloads[:half]) and self._deliver(payloads[half:])
            self._stats.retried += len(payloads)
            attempt += 1
            backoff = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))
            delay = max(v.wait, backoff)
            if self._closing.is_set() and time.monotonic() + delay > self._deadline:
                return False
            if self._closing.wait(delay) and time.monotonic() > self._deadline:
                return False

    def _send(self, payloads: list[bytes]) -> Verdict:
        body = b"[" + b",".join(payloads) + b"]"
        try:
            resp = self._http.post(self._path, content=body,
                                   headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            self._note(f"cannot reach the server: {exc!r}")
            return Verdict("retry")
        status = resp.status_code
        if status in (200, 201):
            answer = resp.json()
            self._stats.sent += len(payloads)
            self._stats.duplicates += sum(1 for r in answer["receipts"] if r.get("duplicate"))
            self._book.record(answer)
            self._stats.last_error = None
            return Verdict("done")
        problem = _problem(resp)
        indexed = [(e["index"], e) for e in problem.get("errors", ())
                   if isinstance(e, dict) and isinstance(e.get("index"), int)]
        if (status in (400, 403, 413) and indexed
                and all(0 <= i < len(payloads) for i, _ in indexed)):
            return Verdict("refused", refused=indexed)  # e.g. a tenant this token may not set
        if status in (400, 409, 413):
            return Verdict("bisect", problem=problem)
        retry_after = resp.headers.get("retry-after", "")
        wait = float(retry_after) if retry_after.isdigit() else 0.0
        if status in (401, 403, 404):
            self._note(f"server refused the token ({status}): {problem.get('detail', '')}; "
                       "events stay spooled and are retried", level=logging.ERROR)
            return Verdict("retry", wait=max(wait, 5.0))
        self._note(f"server answered {status}: {problem.get('detail', '')}")
        return Verdict("retry", wait=wait)

    def _reject(self, payloads: list[bytes], refused: list[tuple[int, Any]]) -> list[bytes]:
        bad = {i for i, _ in refused}
        reasons: dict[int, list[Any]] = {}
        for i, why in refused:
            reasons.setdefault(i, []).append(why)
        if self._rejected_file is not None:
            with open(self._rejected_file, "ab") as f:
                for i in sorted(bad):
                    f.write(orjson.dumps({"event": orjson.Fragment(payloads[i]),
                                          "problems": reasons[i]}) + b"\n")
        self._stats.rejected += len(bad)
        log.warning("auditkeep: the server refused %d event(s) on their merits; kept in %s: %s",
                    len(bad), self._rejected_file or "(memory spool: not kept)",
                    reasons[min(bad)])
        return [p for i, p in enumerate(payloads) if i not in bad]

    def _note(self, message: str, level: int = logging.WARNING) -> None:
        if self._stats.last_error != message:
            log.log(level, "auditkeep: %s", message)
        self._stats.last_error = message


def _problem(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {"detail": resp.text[:200]}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}
