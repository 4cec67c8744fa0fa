"""Real PostgreSQL and NATS JetStream servers for the tests that need them.

Each test that asks for `pg_url` gets a fresh, empty schema on the PostgreSQL server
named by AUDITKEEP_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres):
its URL carries `options=-csearch_path=<schema>`, so everything the backend creates
lands there, and the schema is dropped afterwards. `nats_url` is the JetStream server
of AUDITKEEP_TEST_NATS (default nats://127.0.0.1:4222); `bus_prefix` is a unique
stream name and subject prefix per test, so tests never see each other's messages.

A server that is not running skips the test with the reason, except under
AUDITKEEP_REQUIRE_SERVICES=1 (what `.ci/run` sets), where it fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from nats.js.api import StreamInfo

PG_URL = os.environ.get("AUDITKEEP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("AUDITKEEP_TEST_NATS", "nats://127.0.0.1:4222")
REQUIRED = os.environ.get("AUDITKEEP_REQUIRE_SERVICES") == "1"
#: The size limit of every test stream. JetStream reserves a stream's limit on its disk
#: when the stream is made, so eight streams at the default 8 GiB fill a disk with 60 GB
#: free; servers the tests start take it from the environment (tests/conftest.py).
TEST_STREAM_BYTES = 64 << 20
#: The prefix of every test stream's name (`bus_prefix`).
TEST_STREAM_PREFIX = "AKT"


def missing(reason: str) -> None:
    """Skip, or fail when the services are required."""
    if REQUIRED:
        pytest.fail(f"{reason} (AUDITKEEP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def with_schema(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def pg_available() -> bool:
    return _reachable(PG_URL, 5432)


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not pg_available():
        missing(f"PostgreSQL is not running at {PG_URL}")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            # Backends and servers of the test may still hold connections: end them.
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE pid <> pg_backend_pid() AND query LIKE %s",
                         (f"%{schema}%",))
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def nats_url() -> str:
    if not _reachable(NATS_URL, 4222):
        missing(f"NATS is not running at {NATS_URL}")
    return NATS_URL


@pytest.fixture
def bus_prefix() -> Iterator[str]:
    """A stream name and subject prefix no other test uses; the stream is deleted from
    the shared NATS server at teardown, whoever made it (a test, or a server it ran)."""
    name = f"{TEST_STREAM_PREFIX}{uuid.uuid4().hex[:12].upper()}"
    yield name
    if _reachable(NATS_URL, 4222):
        delete_streams(lambda info: info.config.name == name)


def delete_streams(which: Callable[[StreamInfo], bool]) -> list[str]:
    """Delete the shared NATS server's streams `which` picks; their names."""
    import nats

    async def run() -> list[str]:
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=0)
        try:
            js = nc.jetstream(timeout=10)
            gone = []
            for info in await js.streams_info():
                if which(info):
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_stream(info.config.name)
                    gone.append(info.config.name)
            return gone
        finally:
            await nc.close()
    return asyncio.run(run())


def delete_stale_test_streams(older_than: float = 3600.0) -> list[str]:
    """Test streams an interrupted run left (a test run never lasts an hour)."""
    if not _reachable(NATS_URL, 4222):
        return []
    now = datetime.now(UTC)

    def stale(info: StreamInfo) -> bool:
        created = info.created
        return (info.config.name or "").startswith(TEST_STREAM_PREFIX) and (
            created is None or (now - created).total_seconds() > older_than)
    return delete_streams(stale)
