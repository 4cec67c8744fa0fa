"""Polling sessions (the UI's live tail and dashboard refresh): one `_access` record per
session and minute, with counts, instead of one record per poll.

A polling request names its session with `poll=ID` (a random id the UI makes per live
tail or dashboard page; never a secret). The first poll of a session in a minute is
recorded like any read, durably and before it is answered, with `poll: {session,
minute}`; the later polls of that minute are answered once that record is durable and
only counted. The counts `{minute, polls, results}` go into the first record of the
session's next minute (`poll.previous`) or, when the session stops polling, into an
`auditkeep.read.<action>.polls` record a little after its minute ends or at shutdown.
A crash loses at most the counts of the sessions' current minute, never the fact of a
read. Everything here runs on the event loop's thread, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from auditkeep.auth import Principal
from auditkeep.datadir import Node
from auditkeep.server import params
from auditkeep.server.context import append_access

log = logging.getLogger(__name__)

POLL_PARAM = "poll"
SESSION_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
_SESSION = re.compile(SESSION_PATTERN)
MAX_SESSIONS = 10_000  # beyond this, polls of new sessions are recorded one by one
GRACE = 20.0  # s after a minute ends before an idle session's counts are flushed
SWEEP_EVERY = 5.0  # s
_SHUTDOWN_WAIT = 10.0  # s for the last counts to become durable at shutdown


def poll_session(request: Request) -> str | None:
    """The polling session a request names (`poll=`), or None for an ordinary read."""
    raw = request.query_params.get(POLL_PARAM)
    if raw is None:
        return None
    if not _SESSION.fullmatch(raw):
        raise params.bad(POLL_PARAM, "not a polling session id",
                         "16 to 64 of A-Z a-z 0-9 _ -", raw[:80])
    return raw


def _minute_iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _SessionMinute:
    who: Principal
    tenant: str
    action: str
    path: str
    session: str
    minute: int  # minutes since the epoch
    first: asyncio.Future[Any]  # the first poll's record becoming durable
    polls: int = 1
    results: int = 0

    def totals(self) -> dict[str, Any]:
        return {"minute": _minute_iso(self.minute), "polls": self.polls,
                "results": self.results}


_Key = tuple[str, str, str, str, str]  # (token id, tenant, action, what is read, session)


class PollSessions:
    """The open session-minutes of one server process."""

    def __init__(self, n: Node, *, clock: Callable[[], float] = time.time,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self._node = n
        self._clock = clock
        self._max = max_sessions
        self._open: dict[_Key, _SessionMinute] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def record(self, request: Request, who: Principal, tenant: str, action: str,
                     what: str, details: dict[str, Any], results: int, session: str) -> None:
        """Record one poll: durably if it is its session's first this minute, else count
        it (once the first is durable). `what` is what is read (a query, a dashboard):
        a session that changes it starts a new record."""
        minute = int(self._clock() // 60)
        key = (who.id, tenant, action, what, session)
        current = self._open.get(key)
        if current is not None and current.minute == minute:
            current.polls += 1
            current.results += results
            await asyncio.shield(current.first)  # the fact of the read is on the record
            return
        poll: dict[str, Any] = {"session": session}
        full = current is None and len(self._open) >= self._max
        if not full:  # when full, this poll is recorded on its own, like any read
            poll["minute"] = _minute_iso(minute)
            if current is not None:
                poll["previous"] = current.totals()
        metadata = {"path": request.url.path, "params": details, "results": results,
                    "poll": poll}
        first = asyncio.wrap_future(append_access(self._node, who, tenant, action, metadata))
        if not full:
            self._open[key] = _SessionMinute(who, tenant, action, request.url.path, session,
                                             minute, first, 1, results)
        try:
            await asyncio.shield(first)
        except Exception:
            # Not recorded: forget this minute (its waiting polls fail with it), and keep
            # the previous minute's counts for a later flush.
            if current is not None:
                self._open[key] = current
            else:
                self._open.pop(key, None)
            raise

    def sweep(self, *, everything: bool = False) -> list[concurrent.futures.Future[Any]]:
        """Flush the counts of sessions whose minute ended a while ago (or all of them)."""
        now = self._clock()
        done = [k for k, m in self._open.items()
                if everything or now >= (m.minute + 1) * 60 + GRACE]
        futures = []
        for key in done:
            m = self._open.pop(key)
            if m.polls < 2 or not m.first.done() or m.first.cancelled() or m.first.exception():
                continue  # one poll: its own record says it all; a failed one counts none
            metadata = {"path": m.path, "results": m.results,
                        "poll": {"session": m.session, **m.totals()}}
            try:
                futures.append(append_access(self._node, m.who, m.tenant, f"{m.action}.polls",
                                             metadata))
            except Exception:  # overload or shutdown: say so rather than hide it
                log.exception("could not record the poll counts of session %s", m.session)
        return futures

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sweep every few seconds while the server runs; flush everything at the end."""
        async def sweeper() -> None:
            while True:
                await asyncio.sleep(SWEEP_EVERY)
                self.sweep()

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            futures = self.sweep(everything=True)
            if futures:
                await asyncio.to_thread(concurrent.futures.wait, futures, _SHUTDOWN_WAIT)


def sessions(request: Request) -> PollSessions:
    s: PollSessions = request.app.state.polls
    return s
