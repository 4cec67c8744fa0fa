"""The agent's loop: follow files, turn lines into events, put them in the SDK's spool,
and only then move the durable offsets.

A crash between the spool write and the offset save re-reads a few lines; their events
carry the same ids (deterministic, see `JsonLines` and `auditkeep.sources.k8s`), so the
server stores each once. Nothing is consumed that is not in the spool, so nothing is
lost either.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

import orjson
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from auditkeep.agent.config import AgentConfig, FileConfig
from auditkeep.agent.tail import Follower, Line, OffsetStore
from auditkeep.client import AuditClient
from auditkeep.errors import ConfigError, SpoolFull, ValidationError
from auditkeep.sources.k8s import K8sEventMapper

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20  # per file and pass, so one busy file cannot starve the others
SAVE_INTERVAL = 0.2  # seconds between offset saves while lines flow
STATUS_INTERVAL = 1.0
BLOCK_TIMEOUT = 1.0  # a full spool: wait this long, then let the file be the buffer
STATUS_FILE = "status.json"
OFFSETS_FILE = "offsets.json"


class EventSink(Protocol):
    """What the agent needs of `auditkeep.client.AuditClient`."""

    def emit_event(self, event: dict[str, Any]) -> str: ...
    def stats(self) -> Mapping[str, Any]: ...
    def sync(self) -> None: ...


def line_id(line: bytes) -> str:
    """The id of an event read from `line` that has none of its own."""
    return "agent:" + hashlib.sha256(line).hexdigest()[:32]


class JsonLines:
    """`json` format: each line is one schema v1 event. One without an `id` gets
    `line_id(line)`, so re-reading the line after a crash yields the same event."""

    __slots__ = ()

    def __call__(self, line: bytes) -> list[dict[str, Any]]:
        obj = orjson.loads(line)
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object (a schema v1 event), got "
                             f"{type(obj).__name__}")
        if "id" not in obj:
            obj["id"] = line_id(line)
        return [obj]


class K8sAuditLines:
    """`k8s-audit` format: each line is a Kubernetes audit `Event` (as the API server's
    log backend writes them), or an `EventList`. [] when its stage is not kept."""

    __slots__ = ("_map",)

    def __init__(self, stages: tuple[str, ...] | None) -> None:
        self._map = K8sEventMapper(stages)

    def __call__(self, line: bytes) -> list[dict[str, Any]]:
        obj = orjson.loads(line)
        if isinstance(obj, dict) and obj.get("kind") == "EventList":
            return self._map.event_list(obj)
        event = self._map(obj)
        return [] if event is None else [event]


Decoder = Callable[[bytes], list[dict[str, Any]]]


def decoder_for(f: FileConfig) -> Decoder:
    return JsonLines() if f.format == "json" else K8sAuditLines(f.stages)


@dataclass(slots=True)
class Counters:
    read: int = 0  # lines consumed (committed)
    events: int = 0  # events put in the spool
    filtered: int = 0  # lines whose event is not wanted (a k8s stage not kept)
    invalid: int = 0  # lines or events refused (logged with file:line); never stop the agent
    blocked: int = 0  # times the spool stayed full: reading paused, nothing lost


class Agent:
    """Follows the configured files into `sink` (an `AuditClient`, or anything with its
    `emit_event` and `stats`). One thread calls `run` (or `step`); `status` is safe
    from any thread."""

    __slots__ = ("_clock", "_dirty", "_followers", "_last_save", "_last_status", "_lock_fd",
                 "_metrics", "_saved", "_sink", "_snapshot", "_store", "config", "counters",
                 "started")

    def __init__(self, config: AgentConfig, sink: EventSink, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._sink = sink
        self._clock = clock
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(config.state_dir)
        self._store = OffsetStore(config.state_dir / OFFSETS_FILE)
        self._followers: list[tuple[Follower, Decoder, FileConfig]] = []
        try:
            self._saved = self._store.load()
            for f in config.files:
                follower = Follower(f.path, self._saved.get(str(f.path)), start_at=f.start_at,
                                    rotate_wait=config.rotate_wait,
                                    max_line_bytes=config.max_line_bytes, clock=clock)
                self._followers.append((follower, decoder_for(f), f))
        except BaseException:
            for follower, _, _ in self._followers:
                follower.close()
            os.close(self._lock_fd)
            raise
        self.counters = Counters()
        self.started = _now()
        self._dirty = True
        self._last_save = self._last_status = float("-inf")
        self._snapshot: dict[str, Any] = {}
        self._metrics: WSGIServer | None = None

    # -- the loop ------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set; offsets and status are saved on the way out."""
        if self.config.metrics_port is not None and self._metrics is None:
            self._metrics = serve_metrics(self, self.config.metrics_address,
                                          self.config.metrics_port)
        try:
            while not stop.is_set():
                n = self.step()
                self.tick()
                if n == 0:
                    stop.wait(self.config.poll_interval)
        finally:
            self.tick(force=True)

    def step(self) -> int:
        """One pass over every file; the number of lines consumed."""
        consumed = 0
        for follower, decode, _ in self._followers:
            for line in follower.poll(READ_BYTES):
                if not self._handle(line, decode):
                    self._dirty = self._dirty or consumed > 0
                    return consumed  # the spool is full: the rest waits in the file
                follower.commit(line)
                self.counters.read += 1
                consumed += 1
        self._dirty = self._dirty or consumed > 0
        return consumed

    def _handle(self, line: Line, decode: Decoder) -> bool:
        """Put the line's events in the spool; False if it could not be done now."""
        if line.overlong:
            self._invalid(line, f"line longer than {self.config.max_line_bytes} bytes "
                                f"(starts {line.data[:60]!r})")
            return True
        if not line.data.strip():
            return True
        try:
            events = decode(line.data)
        except (ValueError, ValidationError) as exc:
            self._invalid(line, str(exc))
            return True
        if not events:
            self.counters.filtered += 1
        for event in events:
            try:
                self._sink.emit_event(event)
            except SpoolFull as exc:
                self.counters.blocked += 1
                log.warning("%s: %s; reading paused", line.where, exc.detail)
                return False
            except (ValueError, ValidationError) as exc:  # EventError: not schema v1
                self._invalid(line, str(exc))
                continue
            except OSError as exc:  # e.g. the spool's disk is full: retry later
                log.error("%s: cannot spool the event: %s; reading paused", line.where, exc)
                return False
            self.counters.events += 1
        return True

    def _invalid(self, line: Line, why: str) -> None:
        self.counters.invalid += 1
        log.warning("%s: invalid line, skipped: %s", line.where, why)

    # -- state -------------------------------------------------------------------------
    def tick(self, *, force: bool = False) -> None:
        """Save offsets and status.json when due (or now, with `force`)."""
        now = self._clock()
        if self._dirty and (force or now - self._last_save >= SAVE_INTERVAL):
            self.save_offsets()
            self._last_save = now
        if force or now - self._last_status >= STATUS_INTERVAL:
            self.write_status()
            self._last_status = now

    def save_offsets(self) -> None:
        # The spooled events first: a saved offset must never point past events a power
        # loss could still take (a crash alone cannot: the spool write has happened).
        self._sink.sync()
        for follower, _, _ in self._followers:
            self._saved[follower.path] = follower.record()
        self._store.save(self._saved)
        self._dirty = False

    def write_status(self) -> None:
        """Refresh the status snapshot and status.json (on the agent's own thread)."""
        snap = self._collect_status()
        self._snapshot = snap
        path = self.config.state_dir / STATUS_FILE
        tmp = path.with_name(STATUS_FILE + ".tmp")
        tmp.write_bytes(orjson.dumps(snap, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    def _collect_status(self) -> dict[str, Any]:
        s = self._sink.stats()
        counters: dict[str, Any] = asdict(self.counters)
        for key in ("sent", "retried", "spooled_bytes", "dropped", "rejected", "duplicates",
                    "pending"):
            counters[key] = int(s.get(key) or 0)
        return {"pid": os.getpid(), "started": self.started, "updated": _now(),
                "url": self.config.url, "counters": counters,
                "last_error": s.get("last_error"),
                "files": [{**fw.status(), "format": f.format} for fw, _, f in self._followers]}

    def status(self) -> dict[str, Any]:
        """The latest status snapshot (what status.json holds)."""
        return self._snapshot

    def close(self) -> None:
        """Save offsets and status, stop the metrics endpoint, close the files. The sink
        is the caller's to close."""
        try:
            self.tick(force=True)
        finally:
            if self._metrics is not None:
                self._metrics.shutdown()
                self._metrics.server_close()
                self._metrics = None
            for follower, _, _ in self._followers:
                follower.close()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lock(state_dir: Path) -> int:
    fd = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"another agent is running with state directory {state_dir}") from None
    return fd


# -- metrics ------------------------------------------------------------------------------
COUNTERS = (
    ("read", "auditkeep_agent_lines_read", "Lines consumed from followed files"),
    ("events", "auditkeep_agent_events_spooled", "Events put in the spool"),
    ("sent", "auditkeep_agent_events_sent", "Events acknowledged by the server"),
    ("retried", "auditkeep_agent_events_retried", "Events in requests sent again"),
    ("dropped", "auditkeep_agent_events_dropped", "Events dropped by on_full=drop"),
    ("rejected", "auditkeep_agent_events_rejected", "Events the server refused on their merits"),
    ("invalid", "auditkeep_agent_lines_invalid", "Lines that are not a valid event"),
    ("filtered", "auditkeep_agent_events_filtered", "Kubernetes events of a stage not kept"),
)
GAUGES = (
    ("spooled_bytes", "auditkeep_agent_spooled_bytes", "Bytes in the spool, not yet sent"),
    ("pending", "auditkeep_agent_pending_events", "Events in the spool, not yet sent"),
)


class AgentCollector(Collector):
    """Reads the agent's latest status snapshot: scraping never touches the files."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        snap = self._agent.status()
        counters = snap.get("counters", {})
        for key, name, doc in COUNTERS:
            yield CounterMetricFamily(name, doc, value=counters.get(key, 0))
        for key, name, doc in GAUGES:
            yield GaugeMetricFamily(name, doc, value=counters.get(key, 0))
        lag = GaugeMetricFamily("auditkeep_agent_file_lag_bytes",
                                "Bytes of a followed file not yet consumed", labels=["path"])
        rotations = CounterMetricFamily("auditkeep_agent_file_rotations",
                                        "Rotations seen (rename + create)", labels=["path"])
        truncations = CounterMetricFamily("auditkeep_agent_file_truncations",
                                          "Truncations seen (copytruncate)", labels=["path"])
        for f in snap.get("files", ()):
            lag.add_metric([f["path"]], f["lag_bytes"])
            rotations.add_metric([f["path"]], f["rotations"])
            truncations.add_metric([f["path"]], f["truncations"])
        yield from (lag, rotations, truncations)


def serve_metrics(agent: Agent, address: str, port: int) -> WSGIServer:
    """Prometheus metrics at http://address:port/metrics (a private registry)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    try:
        server, _ = start_http_server(port, address, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {address}:{port}: {exc.strerror}") from None
    return server


def open_client(config: AgentConfig) -> AuditClient:
    """The SDK client the agent sends through: a disk spool in the state directory."""
    return AuditClient(config.url, config.token, config.state_dir / "spool", "disk",
                       batch_size=config.batch_size, batch_age=config.batch_age,
                       spool_limit=config.spool_limit,
                       on_full="drop" if config.on_full == "drop" else "block",
                       block_timeout=BLOCK_TIMEOUT, tenant=config.tenant)


__all__ = ["Agent", "AgentCollector", "Counters", "EventSink", "JsonLines", "K8sAuditLines",
           "line_id", "open_client", "serve_metrics"]
