"""SIGKILL a server under concurrent ingest, again and again: nothing acknowledged is lost."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from tests.conftest import start_server, wait_indexer_gone
from tests.server.helpers import event

KILLS = 20
WRITERS = 4


def writer(url: str, token: str, acked: dict[str, int], stop: threading.Event, wid: int) -> None:
    n = 0
    with httpx.Client(base_url=url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        while not stop.is_set():
            batch = [event(n + i, id=f"w{wid}-{n + i}-{random.random():.6f}")
                     for i in range(random.choice((1, 10, 50)))]
            n += len(batch)
            try:
                r = c.post("/v1/events", json=batch)
            except httpx.HTTPError:
                return  # the server died mid-request: this batch was never acknowledged
            if r.status_code == 201:
                for rec in r.json()["receipts"]:
                    acked[rec["id"]] = rec["seq"]


@pytest.mark.slow
def test_acknowledged_events_survive_repeated_sigkill(data_dir: DataDir) -> None:
    acked: dict[str, int] = {}
    rng = random.Random(7)
    for _ in range(KILLS):
        srv = start_server(data_dir)
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(srv.url, srv.admin_token, acked,
                                                          stop, w))
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.1, 0.6))
        srv.kill()  # SIGKILL while requests are in flight
        stop.set()
        for t in threads:
            t.join(10)
    srv = start_server(data_dir)
    try:
        with srv.client() as c:
            size = c.get("/v1/status").json()["logs"]["default"]["size"]
            assert size >= len(acked) > 0
            # every acknowledged event is present at the seq its receipt named
            for eid, seq in rng.sample(sorted(acked.items()), min(200, len(acked))):
                rec = c.get(f"/v1/logs/default/entries/{seq}").json()
                assert rec["id"] == eid
                assert c.get(f"/v1/events/{eid}").status_code == 200
    finally:
        srv.stop()
    res = CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)])
    assert res.exit_code == 0, res.output
    assert f"default: {size} entries" in res.output  # no seq gap: every position verified
    # every indexer child whose server was killed has exited, even one whose server died
    # before the child had started
    assert wait_indexer_gone(data_dir, timeout=30), "an orphaned indexer kept running"
