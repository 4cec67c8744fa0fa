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

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

PG_URL = os.environ.get("AUDITKEEP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("AUDITKEEP_TEST_NATS", "nats://127.0.0.1:4222")
REQUIRED = os.environ.get("AUDITKEEP_REQUIRE_SERVICES") == "1"


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
def bus_prefix() -> str:
    """A stream name and subject prefix no other test uses."""
    return f"AKT{uuid.uuid4().hex[:12].upper()}"
