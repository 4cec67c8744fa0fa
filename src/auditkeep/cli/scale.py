"""`serve --bus … --role …`: which parts of auditkeep one process of a scaled-out
deployment runs (docs/scaling.md).

    all        everything (the default; with --bus, appends still go through the bus)
    ingest     the HTTP API; ingested events are validated and published to the bus
    sequencer  leads the logs whose lease it takes: sequences, signs, commits; also
               runs the indexer, detection, the PII scan and checkpoint compaction
    read       the HTTP API for queries and proofs, no background work

Every role answers the whole API (an ingest node can read; a read node can publish);
the roles choose the background work.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from auditkeep.errors import ConfigError
from auditkeep.storage.open import is_postgres

if TYPE_CHECKING:
    from auditkeep.bus.appender import BusAppender
    from auditkeep.bus.client import Bus
    from auditkeep.bus.sequencers import BusSequencers
    from auditkeep.datadir import DataDir, Node


@dataclass(frozen=True, slots=True)
class ScaleOptions:
    bus: str | None
    role: str
    stream: str
    replicas: int
    lease_ttl: float
    max_bytes: int = 8 * 1024**3

    @property
    def indexes(self) -> bool:
        return self.role in ("all", "sequencer")

    @property
    def background(self) -> bool:
        return self.role in ("all", "sequencer")

    @property
    def sequences(self) -> bool:
        return self.role in ("all", "sequencer")

    def check(self, d: DataDir) -> None:
        if self.role != "all" and self.bus is None:
            raise ConfigError(f"--role {self.role} needs --bus nats://HOST:4222 (without a "
                              "bus one process does everything)")
        if self.bus is not None and not (d.storage and is_postgres(d.storage)):
            raise ConfigError("--bus needs --storage postgresql://…: the sequencers of a "
                              "deployment share one PostgreSQL database")
        if self.bus is not None and not self.bus.startswith(("nats://", "tls://")):
            raise ConfigError(f"--bus {self.bus!r} is not a nats:// URL")

    def connect(self, d: DataDir) -> BusConnection | None:
        if self.bus is None:
            return None
        from auditkeep.bus.appender import BusAppender
        from auditkeep.bus.client import Bus

        # The subjects are named after the stream (AUDITKEEP: auditkeep.ingest.<log>),
        # so two deployments sharing one NATS server never overlap.
        bus = Bus(self.bus, stream=self.stream, prefix=self.stream.lower(),
                  replicas=self.replicas, max_bytes=self.max_bytes)
        # A refused start is one line (the ConfigError); the client's warnings about the
        # same refusal would add more, so they are held back until it is connected.
        client_log = logging.getLogger("auditkeep.bus.client")
        level = client_log.level
        client_log.setLevel(logging.ERROR)
        try:
            bus.connect()
        except BaseException:
            bus.close()
            raise
        finally:
            client_log.setLevel(level)
        return BusConnection(self, bus, BusAppender(bus))


_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
          "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


class ByteSize(click.ParamType[int]):
    """A size: bytes, or a number with KiB/MiB/GiB/TiB (or KB/MB/GB/TB) after it."""

    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
        unit = m and _UNITS.get(m.group(2).lower())
        if m is None or unit is None:
            self.fail(f"{value!r} is not a size (e.g. 8GiB, 512MiB or a number of bytes)",
                      param, ctx)
        size = int(float(m.group(1)) * unit)
        if size < 1 << 20:
            self.fail(f"{value!r} is below 1 MiB", param, ctx)
        return size


def holder_name() -> str:
    """Who holds a lease: host and pid, so an operator can find the leader."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BusConnection:
    """The bus of one process: its appender, and its sequencers if the role has them."""

    def __init__(self, options: ScaleOptions, bus: Bus, appender: BusAppender) -> None:
        self.options = options
        self.bus = bus
        self.appender = appender
        self.sequencers: BusSequencers | None = None

    def attach(self, n: Node) -> None:
        from auditkeep.bus.sequencers import BusSequencers
        from auditkeep.log.lease import LeasedWork

        self.appender.use_store(n.store, n.logs.origin)
        n.options["bus"] = self
        if self.options.background:
            # Detection and the PII scan run in one process of the deployment at a time.
            n.options["leased"] = LeasedWork(n.store, holder_name(), self.options.lease_ttl,
                                             n.start_background, n.stop_background)
        if self.options.sequences:
            self.sequencers = BusSequencers(self.bus, n.logs, holder_name(),
                                            lease_ttl=self.options.lease_ttl)
            self.sequencers.start()

    def stop(self, n: Node) -> None:
        """Before the node closes: the background work (it may still append, through
        this process's sequencers), then the sequencers, which commit what they took
        and release their leases while the store is open, so a standby takes over at
        once instead of after a lease."""
        leased = n.options.pop("leased", None)
        if leased is not None:
            leased.stop()
        n.stop_background()
        if self.sequencers is not None:
            self.sequencers.stop()
            self.sequencers = None

    def close(self) -> None:
        """After the node closed: the bus itself."""
        if self.sequencers is not None:
            self.sequencers.stop()
        self.appender.close()
        self.bus.close()
