"""Rehydration and `include=archive` over the HTTP API (in process, on real SQLite):
purged entries come back byte-exact, the log still verifies, and a search can reach
purged events in the archive."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditkeep.archive.job import ArchiveJob
from auditkeep.archive.objects import Objects
from auditkeep.archive.reading import rehydrate
from auditkeep.archive.table import write_parquet
from auditkeep.datadir import Node
from auditkeep.errors import CorruptionError
from auditkeep.log import merkle
from auditkeep.log.verify import verify_log
from auditkeep.pipeline.config import parse_config
from auditkeep.retention.purge import Retention
from auditkeep.server.app import create_app
from auditkeep.storage.base import Purge
from tests.archive.conftest import TENANT, WIDTH

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def purge(n: Node, seqs: list[int]) -> None:
    """What retention/purge.py does to the seqs: out of the index, then out of the store."""
    info = n.logs.info(TENANT)
    assert n.index is not None
    n.index.forget(info.id, [orjson.loads(n.logs.entry(TENANT, s)) for s in seqs])
    assert n.store.purge(Purge(info.id, seqs, record_seq=599)) == len(seqs)
    n.logs.forget_bundles(info.id)


def hot_seqs(api: TestClient, query: str) -> list[int]:
    r = api.get("/v1/search", params={"query": query, "tenant": TENANT, "limit": "1000"})
    assert r.status_code == 200, r.text
    return sorted(e["seq"] for e in r.json()["events"])


def verifies(n: Node) -> bool:
    info = n.store.get_log(TENANT)
    assert info is not None
    report = verify_log(n.store, info, [k.verifier(info.origin) for k in n.keys.published()],
                        [])
    assert report.findings == []
    return report.ok


@pytest.fixture
def api(indexed: Node, objects: Objects) -> Iterator[TestClient]:
    indexed.options["archive"] = ArchiveJob(indexed.logs, objects, WIDTH, 3600.0)
    token = indexed.data.admin_token.read_text().strip()  # type: ignore[union-attr]
    with TestClient(create_app(indexed), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


class TestRehydrate:
    def test_purged_entries_come_back_byte_exact(self, api: TestClient, indexed: Node) -> None:
        n = indexed
        before = [n.logs.entry(TENANT, s) for s in range(WIDTH)]
        sealed = api.post("/v1/archive/run").json()["sealed"]
        assert [(r["first"], r["end"]) for r in sealed] == [(0, 256), (256, 512)]
        listed = api.get("/v1/archive", params={"tenant": TENANT}).json()
        assert [(r["log"], r["first"]) for r in listed["ranges"]] == [(TENANT, 0), (TENANT, 256)]
        deletes = hot_seqs(api, "action:orders.delete")
        purge(n, list(range(10, 200)))
        assert n.store.read_bundles(n.logs.info(TENANT).id, 10, 11)[0].entries[10] == b""
        assert hot_seqs(api, "action:orders.delete") == [s for s in deletes
                                                         if not 10 <= s < 200]
        r = api.post("/v1/archive/rehydrate", json={"tenant": TENANT, "from": 0, "to": 300})
        assert r.status_code == 200, r.text
        assert r.json() == {"log": TENANT, "from": 0, "to": 300, "ranges": 2,
                            "checked": 300, "restored": 190, "indexed": 190}
        assert hot_seqs(api, "action:orders.delete") == deletes
        assert [n.logs.entry(TENANT, s) for s in range(WIDTH)] == before
        assert n.store.purged_ranges(n.logs.info(TENANT).id) == []
        assert verifies(n)

    def test_retention_purges_only_archived_ranges_and_rehydrate_undoes_it(
            self, api: TestClient, indexed: Node) -> None:
        n = indexed
        before = [n.logs.entry(TENANT, s) for s in range(600)]
        api.post("/v1/archive/run")  # [0, 256) and [256, 512); 512.. is not sealed yet
        cfg = parse_config("retention: {categories: {data_change: 1d}}").retention
        later = datetime.now(UTC) + timedelta(days=30)
        report = Retention(n.logs, n.index, cfg, archive=True).run([TENANT], now=later)
        assert report.events == 512
        info = n.logs.info(TENANT)
        assert [(p.first, p.end) for p in n.store.purged_ranges(info.id)] == [(0, 512)]
        assert hot_seqs(api, "action:orders.delete") == [s for s in range(512, 600)
                                                         if s % 3 == 0]
        r = api.post("/v1/archive/rehydrate", json={"tenant": TENANT, "from": 0, "to": 512})
        assert r.json()["restored"] == r.json()["indexed"] == 512
        assert [n.logs.entry(TENANT, s) for s in range(600)] == before
        assert hot_seqs(api, "action:orders.delete") == [s for s in range(600) if s % 3 == 0]
        assert verifies(n)

    def test_an_archive_that_disagrees_with_the_tree_restores_nothing(
            self, api: TestClient, indexed: Node, objects: Objects) -> None:
        api.post("/v1/archive/run")
        purge(indexed, [3, 4])
        job: ArchiveJob = indexed.options["archive"]
        name = "acme/00000000000000000000-00000000000000000256.parquet"
        objects.put(name, objects.get(name)[:-1] + b"!")
        with pytest.raises(CorruptionError, match="SHA-256"):
            rehydrate(indexed.logs, job.archiver.objects, TENANT, 0, 10)
        assert len(indexed.store.purged_ranges(indexed.logs.info(TENANT).id)) == 1

    def test_bad_input_names_the_field(self, api: TestClient) -> None:
        r = api.post("/v1/archive/rehydrate", json={"tenant": TENANT, "from": "x", "to": -1,
                                                    "extra": 1})
        assert r.status_code == 400
        pointers = {e["pointer"] for e in r.json()["errors"]}
        assert pointers == {"/body/from", "/body/to", "/body/extra"}


class TestSearchArchive:
    def test_include_archive_finds_a_purged_event(self, api: TestClient,
                                                  indexed: Node) -> None:
        api.post("/v1/archive/run")
        stored = orjson.loads(indexed.logs.entry(TENANT, 42))
        purge(indexed, list(range(100)))
        q = {"query": "resource.id:42", "tenant": TENANT}
        hot = api.get("/v1/search", params=q)
        assert hot.status_code == 200, hot.text
        assert [e["seq"] for e in hot.json()["events"] if e["seq"] == 42] == []
        cold = api.get("/v1/search", params={**q, "include": "archive"}).json()
        assert [e["seq"] for e in cold["events"]] == [42]
        assert cold["from_archive"] == [42]
        assert cold["events"][0] == stored  # as stored: commitments, no personal values
        for since, until, found in (("2026-01-01T00:00:42Z", "2026-01-01T00:00:43Z", [42]),
                                    ("2026-01-02T00:00:00Z", None, []),  # rows filtered
                                    ("2026-01-05T00:00:00Z", None, [])):  # groups skipped
            window = {"since": since, **({"until": until} if until else {})}
            got = api.get("/v1/search", params={**q, "include": "archive", **window}).json()
            assert got["from_archive"] == found, window

    def test_pages_merge_hot_and_archive_newest_first(self, api: TestClient,
                                                      indexed: Node) -> None:
        api.post("/v1/archive/run")
        purge(indexed, list(range(100, 300)))
        q = {"query": "action:orders.delete", "tenant": TENANT, "include": "archive",
             "limit": "61"}
        seen: list[int] = []
        cold: list[int] = []
        cursor = None
        for _ in range(50):
            page = api.get("/v1/search", params={**q, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [e["seq"] for e in body["events"]]
            cold += body["from_archive"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        expected = [s for s in range(600) if s % 3 == 0]
        assert sorted(seen) == expected and len(seen) == len(set(seen))
        assert sorted(cold) == [s for s in expected if 100 <= s < 300]

    def test_a_forged_archived_entry_is_refused_not_returned(
            self, api: TestClient, indexed: Node, objects: Objects) -> None:
        api.post("/v1/archive/run")
        purge(indexed, [42])
        name = "acme/00000000000000000000-00000000000000000256.parquet"
        table = pq.read_table(pa.BufferReader(objects.get(name)))
        entries = table.column("entry").to_pylist()
        entries[42] = entries[42].replace(b'"success"', b'"failure"')
        leaves = table.column("leaf").to_pylist()
        leaves[42] = merkle.leaf_hash(entries[42])  # consistent within the file
        for col, values, kind in (("entry", entries, pa.binary()), ("leaf", leaves,
                                                                     pa.binary(32))):
            table = table.set_column(table.schema.get_field_index(col), col,
                                     pa.array(values, kind))
        objects.put(name, write_parquet(table))
        r = api.get("/v1/search", params={"query": "resource.id:42", "tenant": TENANT,
                                          "include": "archive"})
        assert r.status_code == 500
        assert "seq 42" in r.json()["detail"] and name in r.json()["detail"]

    def test_include_needs_an_archive_and_a_known_value(self, indexed: Node) -> None:
        token = indexed.data.admin_token.read_text().strip()  # type: ignore[union-attr]
        with TestClient(create_app(indexed), headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.get("/v1/search", params={"query": "action:orders.view", "include": "cold"})
            assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/include"
            r = c.get("/v1/search", params={"query": "action:orders.view", "include": "archive"})
            assert r.status_code == 409
