"""`auditkeep serve --storage postgresql://` answers searches and aggregates as the embedded
server does: the same events posted to both, the same queries asked of both."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from auditkeep.datadir import DataDir
from tests.conftest import start_server

QUERIES = ["", "disk", '"disk full"', "dis*", "metadata.amount:>=100",
           "metadata.amount:[50 TO 120]", "metadata.region:eu -outcome:failure",
           "actor:(user1 OR user2)", "action:iam.*",
           "_exists_:resource", "NOT _exists_:severity", "metadata.tags:b", "metadata.amount:70"]


def _events() -> list[dict[str, Any]]:
    return [{"time": f"2026-11-0{1 + i % 3}T{i % 24:02d}:{i % 60:02d}:00Z",
             "action": ["orders.refund", "iam.user.create", "iam.role.delete"][i % 3],
             "outcome": "success" if i % 4 else "failure", "category": "data_change",
             "actor": {"id": f"user{i % 5}", "type": "user"},
             **({"severity": "critical"} if i % 7 == 0 else {}),
             **({"resource": {"type": "order", "id": str(i)}} if i % 2 else {}),
             "reason": f"disk full on node {i % 9}",
             "metadata": {"amount": i * 10 if i % 5 else str(i * 10),
                          "region": ["eu", "us", 7][i % 3], "tags": ["a", "b", 2][: i % 4]}}
            for i in range(60)]


def _answers(c: httpx.Client) -> list[Any]:
    out: list[Any] = []
    for q in QUERIES:
        for params in ({"query": q, "limit": 7}, {"query": q, "since": "2026-11-02T00:00:00Z",
                                                  "limit": 100}):
            r = c.get("/v1/search", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            out.append([(e["seq"], e["time"], e["action"]) for e in page["events"]])
            if page["next_cursor"]:
                more = c.get("/v1/search", params={**params, "cursor": page["next_cursor"]})
                out.append([e["seq"] for e in more.json()["events"]])
        for group_by in ("actor.id", "metadata.region", "metadata.tags,outcome", "severity"):
            r = c.get("/v1/aggregate", params={
                "query": q, "group_by": group_by, "interval": "6h", "distinct": "metadata.amount",
                "since": "2026-11-01T03:00:00Z", "until": "2026-11-03T21:30:00Z"})
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def test_search_and_aggregate_answer_as_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    servers = [start_server(DataDir(tmp_path / "lite")),
               start_server(DataDir(tmp_path / "pg"), "--storage", pg_url)]
    try:
        answers = []
        for s in servers:
            with s.client() as c:
                r = c.post("/v1/events", json=_events())
                assert r.status_code == 201, r.text
                for _ in range(200):  # until indexed, every field too
                    done = c.get("/v1/aggregate", params={"query": "_exists_:metadata.region"})
                    if done.json()["total"] == 60:
                        break
                    time.sleep(0.05)
                answers.append(_answers(c))
        assert answers[0] == answers[1]
        sizes = [len(a) for a in answers[0] if isinstance(a, list)]
        assert sum(0 < n < 60 for n in sizes) > 10, sizes  # not all empty or everything
    finally:
        for s in servers:
            s.stop()
