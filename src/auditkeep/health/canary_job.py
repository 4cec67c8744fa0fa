"""The canary's built-in schedule: `run_canary` (health/canary.py) every `every` s
against the node's own HTTP API, as a client would see it.

It writes with a token of its own (DATA/canary.token: ingest and read, bound to the
canary tenant, so it can write nowhere else) and verifies checkpoints with the node's
key ring rather than what /v1/keys serves. A run records its latencies in the node's
SLIs (`auditkeep_canary_latency_seconds`; stage `total` only for a run that passed,
which the `canary` SLO counts); a failure counts `auditkeep_canary_failures` and
raises a high system alert (rule auditkeep.canary, one open alert a failed stage).
Runs wait for the server to listen and stop when it begins to shut down, so neither a
start-up nor a shutdown reads as a failure. GET /v1/status shows `canary`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from auditkeep.auth import create_token, token_hash
from auditkeep.background import BackgroundLoop
from auditkeep.health.canary import CanaryResult, canary_client, run_canary
from auditkeep.log.keys import write_secret
from auditkeep.log.note import Verifier

if TYPE_CHECKING:
    from auditkeep.datadir import Node

log = logging.getLogger(__name__)
RULE = "auditkeep.canary"
RUNBOOK = "docs/runbooks/canary-failed.md"
TOKEN_FILE = "canary.token"  # noqa: S105 -- a file name, not a secret
TOKEN_SCOPES = ("ingest", "read")


def loopback_url(host: str, port: int) -> str:
    """Where this process's own API answers: a wildcard address on loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def canary_token(n: Node, tenant: str) -> str:
    """The canary's token, kept in DATA/canary.token (0600) and reused across restarts
    while it is valid for `tenant`; otherwise a new one (the old one, if it was for
    another tenant, is revoked: nothing else holds it)."""
    path = n.data.root / TOKEN_FILE if n.data is not None else None
    if path is not None and path.exists():
        secret = path.read_text().strip()
        held = n.store.token_by_hash(token_hash(secret))
        if held is not None and held.revoked is None:
            if held.tenant == tenant and set(TOKEN_SCOPES) <= set(held.scopes):
                return secret
            n.store.revoke_token(held.id, _now())
    secret, record = create_token(n.store, tenant=tenant, scopes=list(TOKEN_SCOPES),
                                  name=f"canary ({tenant})")
    if path is not None:
        write_secret(path, secret + "\n")
    log.info("canary: token %s for tenant %s", record.id, tenant)
    return secret


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record(n: Node, result: CanaryResult, seconds: float, url: str) -> None:
    """The SLIs and, on a failure, the alert (health/alerts.py)."""
    slis = n.options.get("slis")
    if slis is not None:
        for stage, reached in result.latencies.items():
            slis.canary(stage, reached)
        if result.ok:
            slis.canary("total", seconds)
        else:
            slis.canary_failure(result.failed)
    if result.ok:
        return
    try:
        from auditkeep.health.alerts import raise_system_alert

        raise_system_alert(n, rule=RULE, level="high", dedup=result.failed,
                           title=f"canary failed at {result.failed}: {result.detail}"[:300],
                           details={"stage": result.failed, "detail": result.detail,
                                    "id": result.id, "url": url, "runbook": RUNBOOK})
    except Exception:  # the failure is still in /v1/status and the metric
        log.exception("canary: could not raise the alert")


class CanaryJob(BackgroundLoop):
    """n.options["canary"]: a canary run every `every` s against `url` (this process's
    own API) while `serving()` says the server listens and is not shutting down."""

    def __init__(self, n: Node, url: str, *, every: float, tenant: str = "canary",
                 timeout: float = 30.0, token: str | None = None,
                 serving: Callable[[], bool] = lambda: True) -> None:
        super().__init__("canary", every)
        self._node = n
        self.url = url
        self.every = every
        self.tenant = tenant
        self.timeout = timeout
        self._token = token
        self._serving = serving
        self.runs = 0
        self.failures = 0
        self.last: dict[str, Any] | None = None
        self.last_failure: dict[str, Any] | None = None

    def _verifiers(self) -> list[Verifier]:
        info = self._node.store.get_log(self.tenant)
        origin = info.origin if info is not None else self._node.logs.origin(self.tenant)
        return [k.verifier(origin) for k in self._node.keys.published()]

    def _live(self) -> bool:
        return not self._stop.is_set() and self._serving()

    def step(self) -> bool:
        if not self._live():  # not listening yet: the next interval
            return False
        if self._token is None:
            self._token = canary_token(self._node, self.tenant)
        at = _now()
        started = time.monotonic()
        # Loopback: no proxy from the environment between the server and itself.
        with canary_client(self.url, self._token, self.timeout, trust_env=False) as client:
            result = run_canary(client, tenant=self.tenant, timeout=self.timeout,
                                verifiers=self._verifiers())
        seconds = time.monotonic() - started
        if not result.ok and not self._live():
            return False  # the server began to shut down under it: not a failure
        self.runs += 1
        summary = {"at": at, "seconds": round(seconds, 4), **result.to_json()}
        self.last = summary
        if not result.ok:
            self.failures += 1
            self.last_failure = summary
            log.error("canary failed at %s: %s", result.failed, result.detail)
            if result.detail is not None and ("HTTP 401" in result.detail
                                              or "HTTP 403" in result.detail):
                self._token = None  # revoked or re-scoped: the next run makes a new one
        record(self._node, result, seconds, self.url)
        return False

    def status(self) -> dict[str, Any]:
        return {"every": self.every, "tenant": self.tenant, "runs": self.runs,
                "failures": self.failures, "last": self.last,
                "last_failure": self.last_failure, "last_error": self.last_error}
