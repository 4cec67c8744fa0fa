"""A real `auditkeep witness serve` process witnessing a real `auditkeep serve`: events in,
cosignature stored, the checkpoint endpoint carries it, the SDK counts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auditkeep.client import AuditClient
from auditkeep.datadir import DataDir, open_node
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.note import Verifier
from auditkeep.witness.cosignature import WitnessSigner, WitnessVerifier, count_cosignatures
from tests.conftest import ServerProcess, free_port, start_server


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "auditkeep", *args], check=True,
                          capture_output=True, text=True, timeout=30).stdout


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    d = DataDir(tmp_path / "data")
    open_node(d, with_index=False).close()  # creates the signing key the witness must know
    return d


def _log_vkey(d: DataDir, log: str = "default") -> str:
    n = open_node(d, with_index=False)
    try:
        origin = n.logs.origin(log)
        return n.keys.published()[-1].verifier(origin).to_string()
    finally:
        n.close()


@pytest.fixture
def witness(tmp_path: Path, data: DataDir) -> Iterator[tuple[str, str]]:
    vkey = _cli("witness", "keygen", "witness.test/w1", "-o", str(tmp_path / "w1.key")).strip()
    port = free_port()
    log_path = tmp_path / "witness.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "auditkeep", "witness", "serve", "--key",
             str(tmp_path / "w1.key"), "--log", _log_vkey(data), "--listen",
             f"127.0.0.1:{port}", "--data", str(tmp_path / "witness"), "--log-level",
             "warning"], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, log_path.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    yield url, vkey
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def server(tmp_path: Path, data: DataDir, witness: tuple[str, str]) -> Iterator[ServerProcess]:
    url, vkey = witness
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(f"witnesses:\n  - url: {url}\n    vkey: {vkey}\n    interval: 0.2\n"
                   "    logs: [default]\n")
    s = start_server(data, "--config", str(cfg), "--ingest-workers", "0")
    yield s
    s.stop()


def _wait_cosigned(c: httpx.Client, size: int) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        status = c.get("/v1/status").json()
        logs = status["witnesses"][0]["logs"]
        if logs.get("default", {}).get("cosigned_size") == size:
            return status  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, status["witnesses"]
        time.sleep(0.05)


def test_events_are_witnessed_and_the_sdk_counts_witnesses(
        server: ServerProcess, witness: tuple[str, str], tmp_path: Path) -> None:
    _, vkey = witness
    client = AuditClient(server.url, server.admin_token, durability="memory")
    try:
        for i in range(7):
            client.emit("orders.delete", actor={"id": f"u{i}", "type": "user"},
                        resource={"type": "order", "id": str(i)})
        assert client.flush(20)
        with server.client() as c:
            size = c.get("/v1/status").json()["logs"]["default"]["size"]
            assert size == 7
            status = _wait_cosigned(c, size)
            # `logs: [default]`: the access log (which these reads grow) is not pushed.
            assert list(status["witnesses"][0]["logs"]) == ["default"]  # type: ignore[index]
            note = c.get("/v1/logs/default/checkpoint").text
            keys = [Verifier.parse(k["verifier"]) for k in c.get("/v1/keys").json()["keys"]]
            cp, _ = open_checkpoint(note, keys)  # old clients still read it
            assert cp.size == 7
            assert count_cosignatures(note, [WitnessVerifier.parse(vkey)]) == {
                "witness.test/w1"}
            witnessed = c.get("/v1/logs/default/checkpoint", params={"witnessed": "true"})
            assert witnessed.text == note
            assert "auditkeep_witness_cosignatures" in c.get("/metrics").text
            third = c.get("/v1/logs/default/checkpoint", params={"size": 3}).text
            assert open_checkpoint(third, keys)[0].size == 3
            for params, pointer in (({"witnessed": "yes"}, "/query/witnessed"),
                                    ({"size": 3, "witnessed": "true"}, "/query/witnessed"),
                                    ({"size": "x"}, "/query/size"),
                                    ({"size": 0}, "/query/size"),
                                    ({"since": "1"}, "/query/since")):
                bad = c.get("/v1/logs/default/checkpoint", params=params)
                assert bad.status_code == 400, params
                assert bad.headers["content-type"].startswith("application/problem+json")
                assert [e["pointer"] for e in bad.json()["errors"]] == [pointer]
            assert c.get("/v1/logs/default/checkpoint",
                         params={"size": 8}).status_code == 404

        report = client.verify_receipts(witnesses=[vkey], min_witnesses=1)
        assert report.ok, report.problems
        assert (report.checked, report.pending) == (7, 0)
        assert report.witnessed["default"] == (7, ["witness.test/w1"])

        stranger = WitnessSigner.generate("witness.test/w2").vkey
        report = client.verify_receipts(witnesses=[vkey, stranger], min_witnesses=2)
        assert not report.ok
        (problem,) = report.problems
        assert "1 valid cosignature(s) of the 2 required" in problem
    finally:
        client.close()
