"""A data directory on a full disk: clients get 507 with a clear problem+json, nothing
acknowledged is lost, and the same server process accepts events again once space
returns (no restart)."""

from __future__ import annotations

import os
import time

from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.reliability.conftest import (
    SmallDisk,
    assert_storage_full,
    ingest_until_full,
    post_until_accepted,
)

HEADROOM = 1_500_000  # bytes left free beside the ballast: filled by events in seconds


def _fill(path: str, leave: int) -> None:
    """A ballast file taking all the free space of the disk but `leave` bytes."""
    st = os.statvfs(os.path.dirname(path))
    size = st.f_bavail * st.f_frsize - leave
    with open(path, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while size > 0:
            f.write(chunk[:min(size, len(chunk))])
            size -= len(chunk)


def test_full_disk_answers_507_loses_nothing_and_recovers(small_disk: SmallDisk) -> None:
    data = DataDir(small_disk.path / "data")
    srv = start_server(data)  # the default: indexer and ingest workers in child processes
    try:
        _fill(str(small_disk.path / "ballast"), HEADROOM)
        with srv.client() as c:
            acked, full = ingest_until_full(c, batch=50, refusals=5, seconds=40)
            for r in full:
                assert_storage_full(r, 503, 507)
            # reads still work on a full disk
            st = c.get("/v1/status")
            assert st.status_code == 200, st.text
            # space returns (more than the ballast: the search index, behind the log,
            # catches up into the freed space first): the same process takes events again
            os.unlink(small_disk.path / "ballast")
            small_disk.remount("32m")
            r = post_until_accepted(c, 20)
            assert r.status_code == 201, r.text
            acked["after"] = r.json()["receipts"][0]["seq"]
            assert srv.proc.poll() is None  # no restart
            for eid, seq in acked.items():
                rec = c.get(f"/v1/logs/default/entries/{seq}")
                assert rec.status_code == 200 and rec.json()["id"] == eid, rec.text
            # the indexer recovered too: the event stored after the disk was freed is
            # found by search
            deadline = time.monotonic() + 20
            while True:
                s = c.get("/v1/search", params={"query": 'id:"after"'})
                if (s.status_code == 200 and s.json().get("events")) or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert s.status_code == 200 and s.json()["events"], s.text
    finally:
        srv.stop()
    res = CliRunner().invoke(cli, ["verify", "--data", str(data.root)])
    assert res.exit_code == 0, res.output
