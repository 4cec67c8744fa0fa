"""/readyz: the storage, the indexer lag and the bus; 503 + Retry-After naming the check."""

from __future__ import annotations

import warnings

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.ready import Readiness
from auditkeep.server.app import create_app

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
