"""The HTTP/1.1 protocol the server runs: uvicorn's h11 protocol with a header timeout.

uvicorn arms no timer on a new connection (its keep-alive timer starts only once a
response is complete), so a client that connects and sends nothing, or sends its
headers one byte a second (slowloris), holds a connection and its memory forever.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_timeout_protocol(timeout: float) -> type[H11Protocol]:
    """An h11 protocol class that closes a connection whose request headers have not
    all arrived `timeout` seconds after it opened (or after its previous response)."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(timeout, self._expire)

        def _expire(self) -> None:
            self._header_timer = None
            waiting = self.conn.their_state is h11.IDLE and (
                self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()  # no complete request headers in time

    return HeaderTimeoutProtocol


