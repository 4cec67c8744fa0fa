"""The synthetic canary: one event end to end through a server's own API.

Stages, in order: `checkpoint` (the signed head before, held), `emit` (POST, committed
with its receipt), `searchable` (found by /v1/search by its id), `proved` (its inclusion
proof verifies against the signed checkpoint with the published keys), `consistent`
(the held checkpoint is a prefix of the new one). A failure names its stage.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from auditkeep.errors import ProofError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.note import Verifier

ACTION = "auditkeep.canary"
STAGES = ("checkpoint", "emit", "searchable", "proved", "consistent")


class CanaryFailed(Exception):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"canary failed at {stage}: {detail}")
        self.stage, self.detail = stage, detail


@dataclass
class CanaryResult:
    id: str
    seq: int | None = None
    size: int | None = None
    latencies: dict[str, float] = field(default_factory=dict)  # stage -> s since emit
    failed: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "id": self.id, "seq": self.seq, "size": self.size,
                "latencies": {k: round(v, 4) for k, v in self.latencies.items()},
                "failed": self.failed, "detail": self.detail}


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


def _get(client: httpx.Client, stage: str, path: str, **params: Any) -> httpx.Response:
    try:
        resp = client.get(path, params=params or None)
    except httpx.HTTPError as exc:
        raise CanaryFailed(stage, f"GET {path}: {exc}") from None
    if resp.status_code >= 400:
        raise CanaryFailed(stage, f"GET {path}: HTTP {resp.status_code} {resp.text[:200]}")
    return resp


def canary_client(url: str, token: str, timeout: float, *, trust_env: bool = True
                  ) -> httpx.Client:
    """The client `run_canary` takes: `url`'s API with `token`, requests bounded by
    `timeout` (the CLI's and the built-in schedule's, health/canary_job.py)."""
    return httpx.Client(base_url=url.rstrip("/"), timeout=timeout, trust_env=trust_env,
                        headers={"Authorization": f"Bearer {token}"})


def run_canary(client: httpx.Client, *, tenant: str = "canary", timeout: float = 30.0,
               verifiers: Sequence[Verifier] | None = None, poll: float = 0.05
               ) -> CanaryResult:
    """One canary through `client` (base URL and token set). Never raises for a failed
    stage: the result names it."""
    result = CanaryResult(f"canary-{uuid.uuid4()}")
    try:
        _run(client, result, tenant, timeout, verifiers, poll)
    except CanaryFailed as exc:
        result.failed, result.detail = exc.stage, exc.detail
    return result


def _run(client: httpx.Client, result: CanaryResult, tenant: str, timeout: float,
         verifiers: Sequence[Verifier] | None, poll: float) -> None:
    log = f"/v1/logs/{tenant}"
    fetched = verifiers is None
    if verifiers is None:
        keys = _get(client, "checkpoint", "/v1/keys").json()["keys"]
        verifiers = [Verifier.parse(k["verifier"]) for k in keys]
    held = None
    try:
        before = client.get(f"{log}/checkpoint")
    except httpx.HTTPError as exc:
        raise CanaryFailed("checkpoint", f"GET {log}/checkpoint: {exc}") from None
    if before.status_code >= 400 and before.status_code != 404:  # 404: no log yet
        raise CanaryFailed("checkpoint", f"GET {log}/checkpoint: HTTP {before.status_code} "
                                         f"{before.text[:200]}")
    if before.status_code == 200:  # a tenant's first canary has no log yet
        try:
            held, _ = open_checkpoint(before.text, verifiers)
        except ProofError as exc:
            raise CanaryFailed("checkpoint", f"the held checkpoint: {exc}") from None
    started = time.monotonic()
    event = {"id": result.id, "action": ACTION, "actor": {"id": "auditkeep-canary",
                                                           "type": "service"},
             "outcome": "success", "category": "system"}
    try:
        resp = client.post("/v1/events", json=event, params={"tenant": tenant})
    except httpx.HTTPError as exc:
        raise CanaryFailed("emit", str(exc)) from None
    if resp.status_code >= 400:
        raise CanaryFailed("emit", f"HTTP {resp.status_code} {resp.text[:200]}")
    try:
        result.seq = int(resp.json()["receipts"][0]["seq"])
    except (ValueError, LookupError, TypeError):
        # No receipt: a configured stage (e.g. sampling) dropped it, or not our API.
        raise CanaryFailed("emit", f"no receipt in the answer: {resp.text[:200]}") from None
    result.latencies["committed"] = time.monotonic() - started
    deadline = started + timeout
    query = f'id:"{result.id}"'
    while True:
        found = _get(client, "searchable", "/v1/search", query=query, tenant=tenant,
                     limit=1).json()["events"]
        if found:
            break
        if time.monotonic() > deadline:
            raise CanaryFailed("searchable", f"not found by search within {timeout:g}s")
        time.sleep(poll)
    result.latencies["searchable"] = time.monotonic() - started
    if fetched:  # again: a tenant's first canary created its log and the log's key
        keys = _get(client, "proved", "/v1/keys").json()["keys"]
        verifiers = [Verifier.parse(k["verifier"]) for k in keys]
    try:
        cp, _ = open_checkpoint(_get(client, "proved", f"{log}/checkpoint").text, verifiers)
        result.size = cp.size
        p = _get(client, "proved", f"{log}/proof/inclusion", seq=result.seq,
                 size=cp.size).json()
        entry = _get(client, "proved", f"{log}/entries/{result.seq}",
                     format="canonical").content
        leaf = merkle.leaf_hash(entry)
        if leaf != _b64(p["leaf_hash"]):
            raise ProofError(f"entry {result.seq}'s bytes do not hash to the proven leaf")
        merkle.verify_inclusion(leaf, result.seq, cp.size, [_b64(h) for h in p["hashes"]],
                                cp.root)
    except ProofError as exc:
        raise CanaryFailed("proved", str(exc)) from None
    result.latencies["proved"] = time.monotonic() - started
    if held is not None and held.size > 0:
        try:
            if held.origin != cp.origin or held.size > cp.size:
                raise ProofError(f"the checkpoint went from {held.size} back to {cp.size}")
            if held.size < cp.size:
                c = _get(client, "consistent", f"{log}/proof/consistency",
                         **{"from": held.size, "to": cp.size}).json()
                merkle.verify_consistency(held.size, cp.size, [_b64(h) for h in c["hashes"]],
                                          held.root, cp.root)
            elif held.root != cp.root:
                raise ProofError(f"two roots for size {cp.size}: a fork")
        except ProofError as exc:
            raise CanaryFailed("consistent", str(exc)) from None
    result.latencies["consistent"] = time.monotonic() - started
