"""One daemon thread that repeats a pass until stopped: the shape of every post-commit
consumer (detection engine, alert recorder, alert dispatcher). A busy pass is followed
at once by the next; an idle one waits for `notify` or `idle_wait` seconds. A pass that
raises an AuditkeepError is logged and kept in `last_error`; the loop goes on."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from auditkeep.errors import AuditkeepError

log = logging.getLogger(__name__)


class BackgroundLoop(ABC):
    def __init__(self, name: str, idle_wait: float) -> None:
        self._name = name
        self._idle_wait = idle_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @abstractmethod
    def step(self) -> bool:
        """One pass; True if it did something (so the next starts at once)."""

    def notify(self, *_: object) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
                self.last_error = None
            except AuditkeepError as exc:
                self.last_error = str(exc)
                log.exception("%s pass failed", self._name)
                busy = False
            if not busy:
                self._wake.wait(self._idle_wait)
                self._wake.clear()
