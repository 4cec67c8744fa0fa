"""PostgreSQL on a full disk: the tables of the test's schema live in a tablespace on a
small tmpfs; once it is full, clients get 507 storage-full (PostgreSQL's disk_full,
SQLSTATE 53100, rolled the transaction back), nothing acknowledged is lost, and the
same server process takes events again once space returns."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.reliability.conftest import (
    SmallDisk,
    _can_mount,
    assert_storage_full,
    ingest_until_full,
    post_until_accepted,
)
from tests.services import PG_URL


@pytest.fixture
def pg_on_small_disk(pg_url: str) -> Iterator[tuple[str, SmallDisk]]:
    """(a storage URL whose tables are created on a 4 MB tmpfs, that disk)."""
    why = _can_mount()
    if why is not None:
        pytest.skip(why)
    # Not under pytest's tmp_path: the postgres server's user must reach the directory.
    root = Path(tempfile.mkdtemp(prefix="ak-pgdisk-"))
    root.chmod(0o755)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs",
                          str(root)], capture_output=True, text=True)
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    where = root / "ts"
    where.mkdir()
    shutil.chown(where, "postgres", "postgres")
    space = f"ak_{uuid.uuid4().hex[:12]}"
    schema = pg_url.rsplit("%3D", 1)[1]
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE {space} LOCATION '{where}'")
        yield f"{pg_url}%20-cdefault_tablespace%3D{space}", SmallDisk(root)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE pid <> pg_backend_pid() AND query LIKE %s", (f"%{schema}%",))
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"DROP TABLESPACE IF EXISTS {space}")
        subprocess.run(["umount", "-l", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_a_full_postgresql_disk_answers_507_loses_nothing_and_recovers(
        tmp_path: Path, pg_on_small_disk: tuple[str, SmallDisk]) -> None:
    url, disk = pg_on_small_disk
    srv = start_server(DataDir(tmp_path / "data"), "--storage", url, "--ingest-workers", "0",
                       "--pii-scan-interval", "0")
    try:
        with srv.client() as c:
            acked, full = ingest_until_full(c, batch=100, refusals=3, seconds=90)
            for r in full:
                assert_storage_full(r)
                assert "PostgreSQL's disk is full" in r.json()["detail"]
            disk.remount("64m")
            r = post_until_accepted(c, 30)
            assert r.status_code == 201, r.text
            acked["after"] = r.json()["receipts"][0]["seq"]
            assert srv.proc.poll() is None  # no restart
            assert sorted(acked.values()) == list(range(len(acked)))  # no gap, no loss
            for eid, seq in acked.items():
                rec = c.get(f"/v1/logs/default/entries/{seq}")
                assert rec.status_code == 200 and rec.json()["id"] == eid, rec.text
    finally:
        srv.stop()
