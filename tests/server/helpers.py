"""Helpers for API tests: events, and checking receipts as a client would."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from auditkeep.datadir import DataDir
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint
from auditkeep.log.note import Verifier
from tests.conftest import ServerProcess, start_server


def event(i: int = 0, **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "action": "orders.delete",
        "actor": {"id": f"user-{i % 7}", "type": "user", "email": f"u{i}@example.com"},
        "outcome": "success",
        "resource": {"type": "order", "id": str(i)},
        "metadata": {"amount": i, "note": f"event number {i}"},
    }
    ev.update(over)
    return ev


def verifiers(client: httpx.Client) -> list[Verifier]:
    return [Verifier.parse(k["verifier"]) for k in client.get("/v1/keys").json()["keys"]]


def checkpoint(client: httpx.Client, log: str = "default") -> Checkpoint:
    note = client.get(f"/v1/logs/{log}/checkpoint").text
    cp, _ = open_checkpoint(note, verifiers(client))
    return cp


def assert_included(client: httpx.Client, log: str, seq: int, cp: Checkpoint) -> None:
    """Fetch entry bytes and an inclusion proof; verify both against the signed root."""
    entry = client.get(f"/v1/logs/{log}/entries/{seq}", params={"format": "canonical"}).content
    proof = client.get(f"/v1/logs/{log}/proof/inclusion",
                       params={"seq": seq, "size": cp.size}).json()
    leaf = merkle.leaf_hash(entry)
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    merkle.verify_inclusion(leaf, seq, cp.size,
                            [base64.b64decode(h) for h in proof["hashes"]], cp.root)


def size_of(client: httpx.Client, log: str = "default") -> int:
    return int(client.get("/v1/status").json()["logs"].get(log, {"size": 0})["size"])


def wait_indexed(c: httpx.Client, log: str = "default", timeout: float = 15.0) -> None:
    """Until every committed entry of `log` is searchable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = c.get("/v1/status").json()["logs"].get(log, {}).get("index")
        if lag and lag["lag"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"log {log} not fully indexed within {timeout}s")


def seeded_server(root: Path, events: list[dict[str, Any]]) -> ServerProcess:
    """A real server on a fresh data directory holding `events`, all searchable."""
    s = start_server(DataDir(root / "data"))
    try:
        with s.client() as c:
            r = c.post("/v1/events", json=events)
            assert r.status_code == 201, r.text
            wait_indexed(c)
    except BaseException:
        s.stop()  # a fixture that fails before its yield is never torn down
        raise
    return s
