"""Fixtures of the bus tests: a real JetStream stream of the test's own, SQLite stores."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditkeep.bus.client import Bus
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.storage.sqlite import SQLiteBackend
from tests.services import TEST_STREAM_BYTES


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bus.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteBackend]:
    s = SQLiteBackend(db)
    yield s
    s.close()


def log_service(store: SQLiteBackend, keys: Path) -> LogService:
    ring = KeyRing(store, keys)
    ring.ensure()
    return LogService(store, ring, origin_prefix="bus.test")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def logs(store: SQLiteBackend, keys: Path) -> Iterator[LogService]:
    service = log_service(store, keys)
    yield service
    service.close()


@pytest.fixture
def make_bus(nats_url: str, bus_prefix: str) -> Iterator[Callable[..., Bus]]:
    """Connections to the test's own stream (`bus_prefix` deletes it at teardown)."""
    made: list[Bus] = []

    def make(**options: Any) -> Bus:
        options.setdefault("max_bytes", TEST_STREAM_BYTES)
        bus = Bus(nats_url, stream=bus_prefix, prefix=bus_prefix.lower(), **options)
        bus.connect()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def bus(make_bus: Callable[..., Bus]) -> Bus:
    return make_bus()


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
