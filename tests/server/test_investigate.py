"""The investigation API against one real server: query search, aggregations, context,
exports and saved searches."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from tests.conftest import ServerProcess
from tests.server.helpers import seeded_server
from tests.server.test_reads import token

BASE = "2026-11-01T02:00:00Z"


def _events() -> list[dict[str, Any]]:
    out = []
    for i in range(40):
        out.append({
            "id": f"0190a000-0000-7000-8000-{i:012d}",
            "time": f"2026-11-01T{2 + i // 20:02d}:{(i % 20) * 3:02d}:00Z",
            "action": ["orders.refund", "orders.read", "iam.user.create", "iam.role.delete"][i % 4],
            "actor": {"id": ["alice", "bob", "svc-ci"][i % 3],
                      "type": "service" if i % 3 == 2 else "user",
                      "email": f"p{i}@example.com"},
            "outcome": "failure" if i % 5 == 0 else "success",
            "category": "admin" if i % 4 >= 2 else "data_change",
            "resource": {"type": "order", "id": f"orders/{i % 6}"},
            "trace_id": f"{i % 4 + 1:032x}",
            "metadata": {"amount": i * 100, "region": "eu" if i % 2 else "us"},
            **({"reason": "disk full on replica"} if i == 7 else {}),
        })
    out[9]["actor"]["impersonator"] = {"id": "root", "type": "user"}
    return out


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = seeded_server(tmp_path_factory.mktemp("inv"), _events())
    yield s
    s.stop()


def ids(resp: httpx.Response) -> list[int]:
    assert resp.status_code == 200, resp.text
    return sorted(int(e["id"][-12:]) for e in resp.json()["events"])


EXPECT = [
    ("actor:alice AND outcome:failure", lambda i: i % 3 == 0 and i % 5 == 0),
    ("action:iam.* -actor.type:service", lambda i: i % 4 >= 2 and i % 3 != 2),
    ("metadata.amount:>=3500", lambda i: i >= 35),
    ("metadata.amount:[1000 TO 1500}", lambda i: 10 <= i < 15),
    ("time:[2026-11-01T03:00:00Z TO *]", lambda i: i >= 20),
    ('"disk full"', lambda i: i == 7),
    ("_exists_:actor.impersonator", lambda i: i == 9),
    ("resource:orders/1 OR resource:orders/2", lambda i: i % 6 in (1, 2)),
    ("metadata.region:eu AND NOT (action:orders.read OR category:admin)",
     lambda i: i % 2 == 1 and i % 4 == 0),
    ("", lambda i: True),
]


class TestQuerySearch:
    @pytest.mark.parametrize(("query", "want"), EXPECT, ids=[q or "(empty)" for q, _ in EXPECT])
    def test_queries_select_exactly_the_matching_events(self, srv: ServerProcess, query: str,
                                                        want: Any) -> None:
        with srv.client() as c:
            got = ids(c.get("/v1/search", params={"query": query, "limit": 1000}))
        assert got == [i for i in range(40) if want(i)]

    def test_results_are_newest_first_and_pages_cover_everything_once(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            seen: list[str] = []
            cursor = None
            while True:
                p = {"query": "orders.*", "limit": 7} | ({"cursor": cursor} if cursor else {})
                body = c.get("/v1/search", params=p).json()
                times = [e["time"] for e in body["events"]]
                assert times == sorted(times, reverse=True)
                seen += [e["id"] for e in body["events"]]
                cursor = body["next_cursor"]
                if not cursor:
                    break
        assert len(seen) == len(set(seen)) == 40  # every event's action is orders.* or iam.*?

    def test_since_and_until_bound_the_window(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            got = ids(c.get("/v1/search", params={
                "query": "actor:bob", "since": "2026-11-01T02:30:00Z",
                "until": "2026-11-01T03:00:00Z"}))
        assert got == [i for i in range(10, 20) if i % 3 == 1]

    @pytest.mark.parametrize(("query", "column", "expected"), [
        ("action:", 8, "a value"),
        ("actor:alice AND (outcome:failure", 33, '")"'),
        ("acter.id:alice", 1, "schema v1 field"),
        ("metadata.amount:[1 TO b]", 18, "two numbers"),
        ("actor.email:x@example.com", 1, "schema v1 field"),
    ])
    def test_syntax_errors_name_the_column_and_what_was_expected(
            self, srv: ServerProcess, query: str, column: int, expected: str) -> None:
        with srv.client() as c:
            r = c.get("/v1/search", params={"query": query})
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()["errors"][0]
        assert problem["pointer"] == "/query/query"
        assert problem["column"] == column
        assert expected in problem["expected"]

    def test_personal_fields_are_refused_by_name(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.get("/v1/search", params={"query": "actor.email:p1@example.com"})
        assert "personal data" in r.json()["errors"][0]["detail"]

    def test_old_filter_search_runs_through_the_same_compiler(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            got = ids(c.get("/v1/events", params={"actor": "alice", "action": "iam.*",
                                                  "limit": 1000}))
        assert got == [i for i in range(40) if i % 3 == 0 and i % 4 >= 2]


class TestAggregate:
    def test_group_by_two_fields_counts_and_orders_by_count(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            body = c.get("/v1/aggregate", params={"query": "outcome:success",
                                                  "group_by": "actor.id,outcome",
                                                  "top": 2}).json()
        succ = [i for i in range(40) if i % 5]
        assert body["total"] == len(succ)
        counts = {a: sum(1 for i in succ if ["alice", "bob", "svc-ci"][i % 3] == a)
                  for a in ("alice", "bob", "svc-ci")}
        top2 = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        assert body["groups"] == [{"key": [a, "success"], "count": n} for a, n in top2]

    def test_group_by_a_metadata_field_and_distinct(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            body = c.get("/v1/aggregate", params={"group_by": "metadata.region",
                                                  "distinct": "resource.id"}).json()
        assert sorted((g["key"][0], g["count"]) for g in body["groups"]) == [("eu", 20),
                                                                            ("us", 20)]
        assert body["distinct"] == {"resource.id": 6}

    def test_histogram_fills_every_bucket_of_the_window(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            body = c.get("/v1/aggregate", params={
                "interval": "15m", "since": "2026-11-01T01:30:00Z",
                "until": "2026-11-01T04:00:00Z"}).json()
        h = body["histogram"]
        assert h["interval"] == "15m"
        assert [b["start"] for b in h["buckets"]][:3] == [
            "2026-11-01T01:30:00Z", "2026-11-01T01:45:00Z", "2026-11-01T02:00:00Z"]
        assert len(h["buckets"]) == 10
        assert sum(b["count"] for b in h["buckets"]) == 40
        assert [b["count"] for b in h["buckets"]][2:6] == [5, 5, 5, 5]

    def test_auto_interval_keeps_buckets_few(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            h = c.get("/v1/aggregate", params={"interval": "auto", "since": "2026-10-25T00:00:00Z",
                                               "until": "2026-11-02T00:00:00Z"}).json()["histogram"]
        # 8 days: 1h would give 192 buckets (> 120), so auto takes the next size, 6h
        assert h["interval"] == "6h" and len(h["buckets"]) == 32

    @pytest.mark.parametrize(("params", "pointer"), [
        ({"group_by": "a,b,c"}, "/query/group_by"),
        ({"group_by": "nosuch"}, "/query/group_by"),
        ({"interval": "3m"}, "/query/interval"),
        ({"top": "0"}, "/query/top"),
        ({"distinct": "actor.email"}, "/query/distinct"),
    ])
    def test_bad_parameters_name_themselves(self, srv: ServerProcess, params: dict[str, str],
                                            pointer: str) -> None:
        with srv.client() as c:
            r = c.get("/v1/aggregate", params=params)
        assert r.status_code == 400
        assert r.json()["errors"][0]["pointer"] == pointer


class TestContext:
    def test_events_around_one_by_the_same_actor(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            body = c.get("/v1/events/0190a000-0000-7000-8000-000000000012/context",
                         params={"by": "actor", "before": 2, "after": 3}).json()
        assert body["event"]["actor"]["id"] == "alice"
        assert [int(e["id"][-12:]) for e in body["before"]] == [6, 9]
        assert [int(e["id"][-12:]) for e in body["after"]] == [15, 18, 21]

    def test_by_trace_and_resource(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            tr = c.get("/v1/events/0190a000-0000-7000-8000-000000000005/context",
                       params={"by": "trace", "before": 5, "after": 1}).json()
            rs = c.get("/v1/events/0190a000-0000-7000-8000-000000000007/context",
                       params={"by": "resource", "before": 1, "after": 1}).json()
        assert [int(e["id"][-12:]) for e in tr["before"]] == [1]
        assert [int(e["id"][-12:]) for e in tr["after"]] == [9]
        assert [int(e["id"][-12:]) for e in rs["before"]] == [1]
        assert [int(e["id"][-12:]) for e in rs["after"]] == [13]

    def test_missing_key_is_a_problem_naming_by(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.get("/v1/events/0190a000-0000-7000-8000-000000000005/context",
                      params={"by": "request"})
        assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/by"


class TestExport:
    def test_ndjson_csv_and_parquet_hold_the_same_rows(self, srv: ServerProcess) -> None:
        q = {"query": "action:iam.*"}
        with srv.client() as c:
            nd = c.get("/v1/export", params={**q, "format": "ndjson"})
            cs = c.get("/v1/export", params={**q, "format": "csv"})
            pa = c.get("/v1/export", params={**q, "format": "parquet"})
        want = sorted(f"0190a000-0000-7000-8000-{i:012d}" for i in range(40) if i % 4 >= 2)
        assert nd.headers["content-type"].startswith("application/x-ndjson")
        assert "attachment" in nd.headers["content-disposition"]
        assert sorted(orjson.loads(line)["id"] for line in nd.text.splitlines()) == want
        assert sorted(r["id"] for r in csv.DictReader(io.StringIO(cs.text))) == want
        table = pq.read_table(io.BytesIO(pa.content))
        assert sorted(table.column("id").to_pylist()) == want

    def test_ocsf_mapping_and_max_rows(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.get("/v1/export", params={"query": "actor:alice", "mapping": "ocsf",
                                            "max_rows": 3})
        rows = [orjson.loads(line) for line in r.text.splitlines()]
        assert len(rows) == 3
        assert all(row["class_uid"] in (3001, 3002, 6003) for row in rows)
        assert all(row["actor"]["user"]["uid"] == "alice" for row in rows)

    def test_bad_format_is_a_400_before_any_byte(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.get("/v1/export", params={"format": "xlsx", "mapping": "nope"})
        assert r.status_code == 400
        assert {p["pointer"] for p in r.json()["errors"]} == {"/query/format",
                                                                 "/query/mapping"}

    def test_exports_are_recorded_in_the_access_log(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            c.get("/v1/export", params={"query": "actor:bob", "format": "csv"}).raise_for_status()
            deadline = time.monotonic() + 10
            mine: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                body = c.get("/v1/search", params={"tenant": "default._access",
                                                   "query": "action:auditkeep.read.export*",
                                                   "limit": 100}).json()
                mine = [e for e in body["events"]
                        if e["metadata"]["params"].get("query") == "actor:bob"]
                if len(mine) == 2:
                    break
                time.sleep(0.1)
        assert sorted(e["action"] for e in mine) == ["auditkeep.read.export",
                                                     "auditkeep.read.export.done"]
        done = next(e for e in mine if e["action"] == "auditkeep.read.export.done")
        assert done["metadata"]["results"] == sum(1 for i in range(40) if i % 3 == 1)


class TestSavedSearches:
    def test_save_run_list_and_delete(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.put("/v1/saved-searches/failed-alice", json={
                "query": "actor:alice AND outcome:failure", "columns": ["time", "action"]})
            assert r.status_code == 200, r.text
            assert ids(c.get("/v1/search", params={"saved": "failed-alice"})) == [0, 15, 30]
            listed = c.get("/v1/saved-searches").json()["saved"]
            assert [s["name"] for s in listed] == ["failed-alice"]
            assert listed[0]["columns"] == ["time", "action"]
            assert c.delete("/v1/saved-searches/failed-alice").status_code == 204
            r = c.get("/v1/search", params={"saved": "failed-alice"})
            assert r.status_code == 404

    def test_saved_searches_are_per_tenant(self, srv: ServerProcess) -> None:
        other = token(srv, "read", tenant="other")
        with srv.client() as c, srv.client(other) as o:
            c.put("/v1/saved-searches/mine", json={"query": "actor:bob"}).raise_for_status()
            assert o.get("/v1/saved-searches").json()["saved"] == []
            assert o.get("/v1/search", params={"saved": "mine"}).status_code == 404
            c.delete("/v1/saved-searches/mine")

    @pytest.mark.parametrize(("body", "pointer"), [
        ({"query": "action:"}, "/query/query"),
        ({"query": "a", "colour": "red"}, "/colour"),
        ({"query": 5}, "/query"),
        ({"query": "a", "since": "yesterday"}, "/query/since"),
    ])
    def test_a_saved_search_must_be_valid(self, srv: ServerProcess, body: dict[str, Any],
                                          pointer: str) -> None:
        with srv.client() as c:
            r = c.put("/v1/saved-searches/x", json=body)
        assert r.status_code == 400
        assert r.json()["errors"][0]["pointer"] == pointer

    def test_bad_names_are_refused(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.put("/v1/saved-searches/-bad", json={"query": "a"})
        assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/path/name"
