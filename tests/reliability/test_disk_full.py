"""A data directory on a full disk: clients get 507 with a clear problem+json, nothing
acknowledged is lost, and the same server process accepts events again once space
returns (no restart)."""

from __future__ import annotations

import os
import time

import httpx
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.reliability.conftest import SmallDisk
from tests.server.helpers import event

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
    acked: dict[str, int] = {}
    full: list[httpx.Response] = []
    try:
        _fill(str(small_disk.path / "ballast"), HEADROOM)
        with srv.client() as c:
            n = 0
            deadline = time.monotonic() + 40
            while len(full) < 5 and time.monotonic() < deadline:
                batch = [event(n + i, id=f"e{n + i}") for i in range(50)]
                n += len(batch)
                r = c.post("/v1/events", json=batch)
                if r.status_code == 201:
                    acked.update((x["id"], x["seq"]) for x in r.json()["receipts"])
                else:
                    full.append(r)
            assert full, "the disk never filled"
            assert acked
            for r in full:
                assert r.status_code in (503, 507), r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert int(r.headers["retry-after"]) >= 1
                body = r.json()
                assert body["type"].endswith("storage-full"), body
                assert "full" in body["detail"] and "nothing" in body["detail"], body
            # reads still work on a full disk
            st = c.get("/v1/status")
            assert st.status_code == 200, st.text
            # space returns (more than the ballast: the search index, behind the log,
            # catches up into the freed space first): the same process takes events again
            os.unlink(small_disk.path / "ballast")
            small_disk.remount("32m")
            deadline = time.monotonic() + 20
            while True:
                r = c.post("/v1/events", json=[event(0, id="after")])
                if r.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
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
