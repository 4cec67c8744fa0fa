"""/readyz: the storage, the indexer lag and the bus; 503 + Retry-After naming the check."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.ready import Readiness
from auditkeep.server.app import create_app
from tests.bus.test_client import NATS_SERVER, PrivateNats
from tests.conftest import start_server
from tests.services import missing

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

EVENT = {"action": "orders.delete", "actor": {"id": "alice", "type": "user"},
         "outcome": "success", "resource": {"type": "order", "id": "42"}}


class TestReadyz:
    def test_not_ready_while_the_stopped_indexer_has_events_waiting_then_ready(
            self, data_dir: DataDir) -> None:
        n = open_node(data_dir, indexer="thread")  # not started: the indexer does not run
        try:
            n.options["readiness"] = Readiness(max_lag_events=0, retry_after=7)
            token = data_dir.admin_token.read_text().strip()
            with TestClient(create_app(n), headers={"Authorization": f"Bearer {token}"}) as c:
                assert c.get("/readyz").status_code == 200  # nothing waiting yet
                assert c.post("/v1/events", json=EVENT).status_code in (200, 201, 202)
                r = c.get("/readyz")
                assert r.status_code == 503
                assert r.headers["Retry-After"] == "7"
                assert r.headers["Content-Type"].startswith("application/problem+json")
                body = r.json()
                assert body["failing"] == ["index"]
                assert body["checks"]["storage"]["ok"] is True
                assert body["checks"]["index"]["behind"]["default"]["events"] == 1
                assert "index:" in body["detail"]
                assert n.indexer is not None
                n.indexer.start()
                assert n.indexer.wait_caught_up()
                r = c.get("/readyz")
                assert r.status_code == 200
                assert r.json()["ready"] is True
                assert set(r.json()["checks"]) == {"storage", "index"}
                assert c.get("/healthz").status_code == 200
        finally:
            n.close()

    def test_a_lag_that_lasts_longer_than_allowed_is_not_ready(self, data_dir: DataDir
                                                                ) -> None:
        n = open_node(data_dir, indexer="thread")
        try:
            n.options["readiness"] = Readiness(max_lag_seconds=0.0)
            token = data_dir.admin_token.read_text().strip()
            with TestClient(create_app(n), headers={"Authorization": f"Bearer {token}"}) as c:
                c.post("/v1/events", json=EVENT)
                c.get("/readyz")  # the lag is first seen here
                r = c.get("/readyz")
                assert r.status_code == 503
                assert r.json()["checks"]["index"]["behind"]["default"]["events"] == 1
        finally:
            n.close()

    def test_a_failing_store_read_is_not_ready(self, data_dir: DataDir) -> None:
        n = open_node(data_dir, indexer="none")
        try:
            def broken(name: str) -> None:
                raise OSError("disk I/O error")

            n.store.get_log = broken  # type: ignore[method-assign]
            with TestClient(create_app(n)) as c:
                r = c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["failing"] == ["storage"]
            assert "disk I/O error" in r.json()["checks"]["storage"]["detail"]
        finally:
            del n.store.get_log
            n.close()


class TestConfig:
    def test_the_readiness_section_sets_the_thresholds(self, data_dir: DataDir) -> None:
        from auditkeep.pipeline.config import parse_config

        cfg = parse_config("readiness: {storage_timeout: 5s, max_lag_events: 500, "
                           "max_lag_seconds: 2m, bus_timeout: 3s, retry_after: 9}\n")
        n = open_node(data_dir, indexer="none")
        try:
            n.options["config"] = cfg
            from auditkeep.health.ready import readiness

            r = readiness(n)
            assert (r.storage_timeout, r.max_lag_events, r.max_lag_seconds, r.bus_timeout,
                    r.retry_after) == (5.0, 500, 120.0, 3.0, 9)
            assert parse_config("{}\n").readiness.max_lag_events == 10_000
        finally:
            n.close()

    def test_every_bad_threshold_is_named(self) -> None:
        from auditkeep.errors import ConfigError
        from auditkeep.pipeline.config import parse_config

        try:
            parse_config("readiness: {storage_timeout: soon, max_lag_events: -1, "
                         "retry_after: 0, lag: 3}\n")
        except ConfigError as exc:
            text = str(exc)
        else:
            raise AssertionError("accepted")
        for at in ("readiness.storage_timeout", "readiness.max_lag_events",
                   "readiness.retry_after", "lag"):
            assert at in text, text


class TestBus:
    def test_a_lost_bus_is_not_ready_and_ready_again_once_it_is_back(
            self, tmp_path: Path, pg_url: str, bus_prefix: str) -> None:
        if not Path(NATS_SERVER).exists():
            missing("no nats-server binary to start a private NATS server")
        nats = PrivateNats(tmp_path)
        nats.start()
        data = DataDir(tmp_path / "data")
        s = start_server(data, "--storage", pg_url, "--bus", nats.url, "--bus-stream",
                         bus_prefix, "--role", "ingest", "--ingest-workers", "0",
                         "--pii-scan-interval", "0")
        try:
            r = httpx.get(s.url + "/readyz", timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["bus"] == {"ok": True, "stream": bus_prefix}
            nats.stop()
            body = eventually_status(s.url, 503)
            assert body["failing"] == ["bus"]
            detail = body["checks"]["bus"]["detail"]
            assert detail.startswith(("not connected to NATS", f"stream {bus_prefix}")), detail
            nats.start()  # same port and store: the client reconnects by itself
            assert eventually_status(s.url, 200)["checks"]["bus"]["ok"] is True
        finally:
            s.stop()
            nats.stop()


def eventually_status(url: str, status: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(url + "/readyz", timeout=10)
        if r.status_code == status:
            return dict(r.json())
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {r.status_code}: {r.text}")
        time.sleep(0.2)
