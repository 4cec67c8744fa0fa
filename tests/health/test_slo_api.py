"""GET /v1/slos and the SLO metrics of a node's evaluator, through the real app."""

from __future__ import annotations

import warnings

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.slo import SloEvaluator
from auditkeep.pipeline.config_ops import DEFAULT_SLOS
from auditkeep.server.app import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

EVENT = {"action": "orders.delete", "actor": {"id": "alice", "type": "user"},
         "outcome": "success", "resource": {"type": "order", "id": "42"}}


def test_slos_and_their_metrics(data_dir: DataDir) -> None:
    n = open_node(data_dir, indexer="none")
    try:
        counts = {"good": 0.0, "total": 0.0}
        job = SloEvaluator(DEFAULT_SLOS, {s.name: lambda: (counts["good"], counts["total"])
                                          for s in DEFAULT_SLOS},
                           lambda **kw: None, interval=0.05)
        n.options["slo"] = job
        token = data_dir.admin_token.read_text().strip()
        with TestClient(create_app(n), headers={"Authorization": f"Bearer {token}"}) as c:
            job.run_once(1000.0)
            assert c.post("/v1/events", json=EVENT).status_code in (200, 201, 202)
            counts.update(good=10.0, total=10.0)
            job.run_once(1060.0)
            body = c.get("/v1/slos").json()
            assert body["running"] is True
            by_name = {s["name"]: s for s in body["slos"]}
            assert set(by_name) == {s.name for s in DEFAULT_SLOS}
            ingest = by_name["ingest"]
            assert ingest["burn"]["1h"] == 0.0 and ingest["budget_remaining"] == 1.0
            assert ingest["firing"] == []
            text = c.get("/metrics").text
            assert 'auditkeep_slo_burn_rate{slo="ingest",window="1h"} 0.0' in text
            assert 'auditkeep_slo_error_budget_remaining_ratio{slo="ingest"} 1.0' in text
            assert c.get("/v1/slos", params={"x": "1"}).status_code == 400
            assert c.get("/v1/slos", headers={"Authorization": "Bearer nope"}
                         ).status_code == 401
    finally:
        n.close()
