"""A full sequencer queue answers 503 + Retry-After; nothing refused is stored, nothing
acknowledged is lost."""

from __future__ import annotations

import threading

import httpx

from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.server.helpers import event, size_of


def test_overload_is_503_with_retry_after_and_loses_nothing(data_dir: DataDir) -> None:
    srv = start_server(data_dir, "--queue-limit", "100")
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def send(k: int) -> None:
        with srv.client() as c:
            r = c.post("/v1/events", json=[event(k * 1000 + i, id=f"r{k}-{i}")
                                           for i in range(400)])
            with lock:
                results.append(r)

    try:
        threads = [threading.Thread(target=send, args=(k,)) for k in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = [r for r in results if r.status_code == 201]
        refused = [r for r in results if r.status_code == 503]
        assert len(accepted) + len(refused) == len(results)
        assert accepted
        assert refused, "24 concurrent requests of 400 events must overflow a 100-event queue"
        for r in refused:
            assert r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["retry-after"]) >= 1
        with srv.client() as c:
            assert size_of(c) == 400 * len(accepted)
            for r in accepted:
                first = r.json()["receipts"][0]
                assert c.get(f"/v1/events/{first['id']}").json()["record"]["seq"] == first["seq"]
            metrics = c.get("/metrics").text
            assert "auditkeep_pushback_events_total" in metrics
            assert 'auditkeep_ingest_rejected_requests_total{status="503"}' in metrics
    finally:
        srv.stop()
