"""The background job that has every log's checkpoints witnessed: for each configured
witness, one thread pushes each log's newest stored checkpoint (at most every
`interval` seconds a log) and stores the cosignature it gets back.

It only reads what the sequencers have committed, so ingest never waits for it; a
witness that is down or refuses only delays its cosignatures, with a growing back-off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from auditkeep.background import BackgroundLoop
from auditkeep.errors import AuditkeepError, WitnessError
from auditkeep.log.service import LogService
from auditkeep.pipeline.config_keeping import WitnessConfig
from auditkeep.storage.base import Cosignature, LogInfo
from auditkeep.witness.client import WitnessClient, push
from auditkeep.witness.cosignature import WitnessVerifier

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class LogWitnessing:
    """What one witness has done for one log, as far as this process knows."""

    known: int  # the witness's latest size for the log
    cosigned: int = 0  # the largest size we hold its cosignature of
    cosigned_at: float | None = None
    last_error: str | None = None
    status: int | None = None  # the witness's HTTP status of the last failure
    failures: int = 0  # consecutive
    next_try: float = 0.0


class WitnessPusher(BackgroundLoop):
    """One witness's thread."""

    def __init__(self, logs: LogService, config: WitnessConfig,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(f"witness {config.name}", config.interval)
        self.config = config
        self.client = WitnessClient(config.url, WitnessVerifier.parse(config.vkey),
                                    timeout=config.timeout, transport=transport)
        self._logs = logs
        self._clock = clock
        self.state: dict[str, LogWitnessing] = {}
        self.pushes = 0
        self.failures = 0

    def step(self) -> bool:
        self.push_all()
        return False

    def push_all(self, *, now: bool = False) -> None:
        wanted = set(self.config.logs)
        for info in self._logs.store.list_logs():
            if self._stop.is_set():
                break
            if not wanted or info.name in wanted:
                self.push_log(info, now=now)

    def push_log(self, info: LogInfo, *, now: bool = False) -> None:
        """Push the log's newest stored checkpoint if the witness has not cosigned it
        (and, unless `now`, if its interval or back-off since the last push is over)."""
        store = self._logs.store
        cp = store.latest_checkpoint(info.id)
        if cp is None or cp.size == 0:
            return
        st = self.state.get(info.name)
        if st is None:
            mine = [c for c in store.cosignatures(info.id) if c.witness == self.client.name]
            best = max(mine, key=lambda c: c.size, default=None)
            st = self.state[info.name] = LogWitnessing(best.size if best else 0)
            if best is not None:
                st.cosigned = best.size
        t = self._clock()
        if cp.size <= st.cosigned or (t < st.next_try and not now):
            return
        try:
            got = push(self.client, cp.note, cp.size, st.known,
                       lambda a, b: self._logs.consistency_proof(info.name, a, b))
        except AuditkeepError as exc:  # WitnessError, or a proof we could not build
            self.failures += 1
            st.failures += 1
            st.status = exc.witness_status if isinstance(exc, WitnessError) else None
            if st.last_error != exc.detail:
                # A refusal of a signed checkpoint (a fork, an unknown key) is an error;
                # a witness that is down or does not know the log only a warning.
                level = logging.ERROR if st.status in (403, 409, 422) else logging.WARNING
                log.log(level, "witness %s, log %s: %s", self.config.name, info.name,
                        exc.detail)
            st.last_error = exc.detail
            st.next_try = t + min(self.config.interval * 2 ** st.failures, MAX_BACKOFF)
            return
        store.put_cosignature(Cosignature(info.id, cp.size, cp.root, self.client.name,
                                          got.line, _iso(t)))
        self.pushes += 1
        st.known = st.cosigned = cp.size
        st.cosigned_at = t
        st.last_error, st.status, st.failures = None, None, 0
        st.next_try = t + self.config.interval

    def status(self) -> dict[str, Any]:
        return {
            "name": self.config.name, "url": self.config.url, "key": self.config.vkey,
            "pushes": self.pushes, "failures": self.failures, "last_error": self.last_error,
            "logs": {name: {"cosigned_size": st.cosigned,
                            "cosigned_at": None if st.cosigned_at is None
                            else _iso(st.cosigned_at),
                            "witness_size": st.known, "last_error": st.last_error,
                            "witness_status": st.status}
                     for name, st in sorted(dict(self.state).items())},
        }


class WitnessJob:
    """Every configured witness's pusher; `n.options["witness"]` (datadir.Node)."""

    def __init__(self, logs: LogService, configs: Sequence[WitnessConfig],
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.pushers = [WitnessPusher(logs, c, transport, clock) for c in configs]
        logs.on_commit(self._committed)

    def _committed(self, name: str, size: int) -> None:
        for p in self.pushers:  # only wakes the threads: never blocks the sequencer
            p.notify()

    def start(self) -> None:
        for p in self.pushers:
            p.start()

    def stop(self) -> None:
        for p in self.pushers:
            p.stop()

    def close(self) -> None:
        self.stop()
        for p in self.pushers:
            p.client.close()

    def run_once(self) -> None:
        """One pass of every pusher in this thread, intervals and back-off ignored."""
        for p in self.pushers:
            p.push_all(now=True)

    def status(self) -> list[dict[str, Any]]:
        return [p.status() for p in self.pushers]


def witness_metrics(job: WitnessJob) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """Prometheus families: cosignatures obtained and failed pushes by witness, and the
    largest cosigned size by witness and log."""
    pushes = CounterMetricFamily("auditkeep_witness_cosignatures",
                                 "Cosignatures obtained from each witness", labels=["witness"])
    failures = CounterMetricFamily("auditkeep_witness_failures",
                                   "Pushes a witness refused or did not answer",
                                   labels=["witness"])
    size = GaugeMetricFamily("auditkeep_witness_cosigned_size",
                             "Largest checkpoint size each witness has cosigned, by log",
                             labels=["witness", "log"])
    for p in job.pushers:
        pushes.add_metric([p.config.name], p.pushes)
        failures.add_metric([p.config.name], p.failures)
        for name, st in sorted(dict(p.state).items()):
            size.add_metric([p.config.name, name], st.cosigned)
    yield from (pushes, failures, size)


__all__ = ["LogWitnessing", "WitnessJob", "WitnessPusher", "witness_metrics"]
