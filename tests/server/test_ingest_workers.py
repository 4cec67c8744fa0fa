"""`serve --ingest-workers N`: bodies prepared in worker processes answer exactly as the
server process itself does (receipts, atomicity, idempotency, pointers, per-tenant stages
and schemas), and killing a worker or the server loses nothing acknowledged."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from auditkeep.auth import create_token
from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from auditkeep.errors import ForbiddenError, PayloadTooLarge, Pushback, ValidationError
from auditkeep.pipeline.prepare import dedup_key, encode, prepare
from auditkeep.pipeline.schemas import ActionSchemas
from auditkeep.pipeline.validate import decode_events
from auditkeep.server.batches import IngestJob
from auditkeep.server.pipelines import Pipelines
from auditkeep.server.workers import IngestWorkers, _run_job, decode_batch
from auditkeep.storage.memory import MemoryBackend
from auditkeep.storage.sqlite import SQLiteBackend
from tests.conftest import ServerProcess, start_server
from tests.server.helpers import assert_included, checkpoint, event, size_of

CONFIG = """
pipeline:
  - enrich: {static: {source.environment: prod}}
  - sample: {rate: 0.0, actions: ["noise.*"]}
"""
REFUND = {"type": "object", "properties": {"metadata": {"type": "object", "properties": {
    "amount": {"type": "integer", "minimum": 0}}}}}


@pytest.fixture(params=[0, 2], ids=["in-process", "2-workers"])
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(CONFIG)
    s = start_server(DataDir(tmp_path / "data"), "--ingest-workers", str(request.param),
                     "--config", str(cfg))
    yield s
    s.stop()


def prepared(body: bytes, *, ndjson: bool = False, admin: bool = True) -> Any:
    """A job run as a worker runs it: its reply, read back as the server reads it."""
    store = MemoryBackend()
    reply = _run_job(Pipelines(None, ActionSchemas(store)),
                     IngestJob(body, ndjson, "default", admin, "tok_test", admin))
    return pickle.loads(reply)  # noqa: S301 -- the bytes we just made


class TestWorkerReplies:
    def test_prepared_events_cross_the_pipe_unchanged_but_for_fields(self) -> None:
        evs = [event(1, id="given"), event(2), {**event(3), "metadata": {"\U0001f600": 1.5}},
               {**event(4), "actor": {"id": "svc", "type": "service"}}]
        body = orjson.dumps(evs)
        kind, counts, cols = (prepared(body))
        assert kind == "ok" and counts is None
        got = decode_batch(cols).pendings
        want = prepare(decode_events(body, ndjson=False), tenant="default",
                       submitter="tok_test", may_set_tenant=True)
        assert [p.plain for p in got] == [True, True, False, True]
        assert [p.personal is None for p in got] == [False, False, False, True]
        for a, b in zip(got, want, strict=True):
            assert (a.explicit_id, a.dedup_key == dedup_key(a.id, assigned=not a.explicit_id),
                    a.plain, a.raw) == (b.explicit_id, True, b.plain, b.raw)
            assert a.entry(5) == encode({**_fields_of(a.entry(5)), "seq": 5}, a.plain)
        assert got[0].id == "given" and got[0].digest == want[0].digest

    def test_errors_come_back_as_the_same_exceptions(self) -> None:
        bad = orjson.dumps([event(1), {**event(2), "outcome": "maybe"}])
        kind, _, exc = (prepared(bad))
        assert kind == "error" and type(exc) is ValidationError
        assert [(p.pointer, p.index) for p in exc.problems] == [("/1/outcome", 1)]
        kind, _, exc = (prepared(orjson.dumps(event(1, tenant="beta")),
                                             admin=False))
        assert kind == "error" and type(exc) is ForbiddenError
        assert exc.problems[0].pointer == "/tenant"
        kind, _, exc = (prepared(b"\n".join([orjson.dumps(event(1))] * 10_001),
                                             ndjson=True))
        assert kind == "error" and type(exc) is PayloadTooLarge


    def test_too_many_waiting_bytes_is_pushback(self, tmp_path: Path) -> None:
        pool = IngestWorkers(1, tmp_path / "db", None, Pipelines(None, ActionSchemas(
            MemoryBackend())), max_queued_bytes=100)  # not started: nothing is taken
        job = IngestJob(b"x" * 60, False, "default", False, "tok_test", False)
        pool.submit(job)
        with pytest.raises(Pushback) as refused:
            pool.submit(job)
        assert refused.value.retry_after >= 1
        big = IngestJob(b"x" * 1000, False, "default", False, "tok_test", False)
        with pytest.raises(Pushback):
            pool.submit(big)


def _fields_of(entry: bytes) -> dict[str, object]:
    fields: dict[str, object] = orjson.loads(entry)
    del fields["seq"]
    return fields


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_pids(c: httpx.Client) -> list[int]:
    return [int(p) for p in c.get("/v1/status").json()["ingest"]["worker_pids"]]


class TestSameAnswers:
    def test_receipts_verify_and_a_resend_gets_the_original_ones(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            body = b"\n".join(orjson.dumps(event(i, id=f"e-{i}")) for i in range(50))
            r = c.post("/v1/events", content=body,
                       headers={"Content-Type": "application/x-ndjson"})
            assert r.status_code == 201, r.text
            receipts = r.json()["receipts"]
            assert [x["seq"] for x in receipts] == list(range(50))
            cp = checkpoint(c)
            for seq in (0, 17, 49):
                assert_included(c, "default", seq, cp)
            again = c.post("/v1/events", content=body,
                           headers={"Content-Type": "application/x-ndjson"})
            assert again.status_code == 200
            assert [{k: v for k, v in x.items() if k != "duplicate"}
                    for x in again.json()["receipts"]] == receipts
            assert all(x["duplicate"] for x in again.json()["receipts"])
            changed = c.post("/v1/events", json=event(3, id="e-3", reason="edited"))
            assert changed.status_code == 409
            assert changed.headers["content-type"] == "application/problem+json"
            assert size_of(c) == 50

    def test_one_bad_event_stores_nothing_and_is_named_by_pointer(
            self, srv: ServerProcess) -> None:
        with srv.client() as c:
            batch = [event(i) for i in range(20)]
            batch[7]["actor"] = {"id": "x"}
            batch[12]["outcome"] = "maybe"
            r = c.post("/v1/events", json=batch)
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/problem+json"
            errors = r.json()["errors"]
            assert [(e["pointer"], e["index"]) for e in errors] == [
                ("/7/actor/type", 7), ("/12/outcome", 12)]
            r = c.post("/v1/events", json={**event(1), "metadata": {"n": 2**60}})
            assert r.status_code == 400
            assert r.json()["errors"][0]["pointer"] == "/metadata/n"  # a single object
            nd = orjson.dumps(event(1)) + b"\n{not json\n"
            r = c.post("/v1/events", content=nd,
                       headers={"Content-Type": "application/x-ndjson"})
            assert r.status_code == 400
            assert r.json()["errors"][0]["index"] == 1
            assert size_of(c) == 0

    def test_tenant_rules_hold(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.post("/v1/events", json=[event(1, tenant="acme"), event(2, tenant="acme")])
            assert r.status_code == 201 and r.json()["tenant"] == "acme"
            r = c.post("/v1/events", json=[event(1, tenant="acme"), event(2, tenant="beta")])
            assert r.status_code == 400
            assert r.json()["errors"][0]["pointer"] == "/1/tenant"
        store = SQLiteBackend(srv.data.db)
        acme, _ = create_token(store, tenant="acme", scopes=["ingest"])
        store.close()
        with srv.client(acme) as c:
            r = c.post("/v1/events", json=[event(1), event(2, tenant="beta")])
            assert r.status_code == 403
            assert r.json()["errors"][0]["pointer"] == "/1/tenant"

    def test_configured_stages_and_schemas_apply(self, srv: ServerProcess) -> None:
        with srv.client() as c:
            r = c.post("/v1/events", json=[event(1, id="keep"),
                                           event(2, id="noise", action="noise.tick")])
            assert r.status_code == 201, r.text
            assert r.json()["dropped"] == 1
            assert c.get("/v1/events/keep").json()["record"]["source"]["environment"] == "prod"
            r = c.post("/v1/events", json=event(3, action="noise.tick"))
            assert r.status_code == 200 and r.json()["receipts"] == []
            assert c.get("/v1/status").json()["pipeline"]["dropped"]
            # a schema registered after start-up reaches every worker at once
            put = c.put("/v1/schemas/orders.refund", content=orjson.dumps(REFUND))
            assert put.status_code == 201
            for _ in range(4):  # whichever worker takes the request
                bad = c.post("/v1/events", json=[event(4), event(5, action="orders.refund",
                                                                 metadata={"amount": -1})])
                assert bad.status_code == 400
                assert bad.json()["errors"][0]["pointer"] == "/1/metadata/amount"
            violations = c.get("/v1/status").json()["pipeline"]["schema_violations"]
            assert violations == {"default": 4}
            assert size_of(c) == 1


def post_forever(url: str, token: str, acked: dict[str, int], answers: list[int],
                 stop: threading.Event, wid: int) -> None:
    n = 0
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        while not stop.is_set():
            batch = [event(n + i, id=f"w{wid}-{n + i}") for i in range(200)]
            n += len(batch)
            try:
                r = c.post("/v1/events", json=batch)
            except httpx.HTTPError:
                answers.append(-1)
                return  # the server died mid-request: never acknowledged
            answers.append(r.status_code)
            if r.status_code == 201:
                for rec in r.json()["receipts"]:
                    acked[rec["id"]] = rec["seq"]
            elif r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1


def check_acked(c: httpx.Client, acked: dict[str, int]) -> None:
    assert size_of(c) >= len(acked) > 0
    for eid, seq in list(acked.items())[:: max(1, len(acked) // 100)]:
        assert c.get(f"/v1/logs/default/entries/{seq}").json()["id"] == eid


def load(srv: ServerProcess, acked: dict[str, int], answers: list[int]
         ) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=post_forever, args=(srv.url, srv.admin_token, acked,
                                                           answers, stop, w))
               for w in range(4)]
    for t in threads:
        t.start()
    return stop, threads


@pytest.mark.slow
def test_a_killed_worker_fails_requests_cleanly_and_is_replaced(data_dir: DataDir) -> None:
    srv = start_server(data_dir, "--ingest-workers", "2")
    acked: dict[str, int] = {}
    answers: list[int] = []
    try:
        with srv.client() as c:
            stop, threads = load(srv, acked, answers)
            killed = 0
            deadline = time.monotonic() + 60
            while killed < 6 and time.monotonic() < deadline:
                time.sleep(0.3)
                pids = worker_pids(c)
                if pids:
                    os.kill(pids[killed % len(pids)], signal.SIGKILL)  # mid-load
                    killed += 1
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(30)
            assert killed == 6
            # every answer was an acknowledgement or a clean refusal to retry later
            assert set(answers) <= {201, 503}, answers
            assert answers.count(201) > 0
            status = c.get("/v1/status").json()["ingest"]
            assert status["worker_restarts"] >= 1
            deadline = time.monotonic() + 30
            while len(worker_pids(c)) < 2 and time.monotonic() < deadline:
                c.post("/v1/events", json=event(0))  # a worker is replaced when next used
                time.sleep(0.1)
            assert len(worker_pids(c)) == 2
            assert c.post("/v1/events", json=[event(i) for i in range(10)]).status_code == 201
            check_acked(c, acked)
    finally:
        srv.stop()
    res = CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)])
    assert res.exit_code == 0, res.output


@pytest.mark.slow
def test_a_killed_server_leaves_no_worker_behind_and_loses_nothing(data_dir: DataDir) -> None:
    acked: dict[str, int] = {}
    for _ in range(3):
        srv = start_server(data_dir, "--ingest-workers", "2")
        with srv.client() as c:
            pids = worker_pids(c)
        assert len(pids) == 2
        answers: list[int] = []
        before = len(acked)
        stop, threads = load(srv, acked, answers)
        deadline = time.monotonic() + 30
        while len(acked) == before and time.monotonic() < deadline:
            time.sleep(0.05)  # until the workers are up and acknowledging
        time.sleep(0.5)
        srv.kill()  # SIGKILL of the server process while its workers hold requests
        stop.set()
        for t in threads:
            t.join(30)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "an ingest worker outlived its server"
    srv = start_server(data_dir, "--ingest-workers", "2")
    try:
        with srv.client() as c:
            check_acked(c, acked)
    finally:
        srv.stop()
    assert not any(alive(p) for p in pids)
    res = CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)])
    assert res.exit_code == 0, res.output
