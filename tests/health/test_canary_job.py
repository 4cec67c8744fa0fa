"""The canary's built-in schedule: a real server with `canary: {every: 1s}` passes its
runs (status, metrics, searchable events, a token bound to the canary tenant) and
neither its start nor its shutdown raises an alert; a canary that cannot reach its
server counts the failed stage and raises one high alert a stage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.canary_job import RULE, RUNBOOK, CanaryJob, canary_token, loopback_url
from tests.conftest import ServerProcess, free_port, start_server


def _count(metrics: str, sample: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait(server: ServerProcess, runs: int) -> tuple[dict[str, Any], str]:
    deadline = time.monotonic() + 60
    with server.client() as c:
        while True:
            status = c.get("/v1/status").json()["canary"]
            metrics = c.get("/metrics").text
            total = _count(metrics, 'auditkeep_canary_latency_seconds_count{stage="total"}')
            if (status["runs"] >= runs and total >= runs) or time.monotonic() > deadline:
                return status, metrics
            time.sleep(0.2)


class TestScheduledCanary:
    def test_a_served_node_runs_the_canary_on_schedule(self, data_dir: DataDir,
                                                       tmp_path: Path) -> None:
        cfg = tmp_path / "auditkeep.yaml"
        cfg.write_text("canary: {every: 1s, timeout: 20s}\n")
        server = start_server(data_dir, "--config", str(cfg), "--ingest-workers", "0")
        try:
            status, metrics = _wait(server, 2)
            assert status["runs"] >= 2, status
            assert status["failures"] == 0 and status["last_failure"] is None, status
            assert status["last"]["ok"] is True and status["tenant"] == "canary"
            assert set(status["last"]["latencies"]) == {"committed", "searchable", "proved",
                                                        "consistent"}
            assert _count(metrics, 'auditkeep_canary_latency_seconds_count{stage="total"}') >= 2
            assert _count(metrics, 'auditkeep_canary_latency_seconds_count{stage="proved"}') >= 2
            assert "auditkeep_canary_failures_total{" not in metrics
            with server.client() as c:
                found = c.get("/v1/search", params={"query": "action:auditkeep.canary",
                                                    "tenant": "canary"}).json()["events"]
                assert len(found) >= 2
                assert all(e["id"].startswith("canary-") for e in found)
                alerts = c.get("/v1/alerts", params={"tenant": "default"}).json()
                assert [a for a in alerts["alerts"] if a["rule"] == RULE] == []
            # Its own token: written 0600, bound to the canary tenant.
            token_file = data_dir.root / "canary.token"
            assert token_file.stat().st_mode & 0o777 == 0o600
            with server.client(token_file.read_text().strip()) as c:
                event = {"action": "x.y", "actor": {"id": "a", "type": "user"},
                         "outcome": "success"}
                assert c.post("/v1/events", json=event,
                              params={"tenant": "default"}).status_code == 403
        finally:
            server.stop()
        n = open_node(data_dir, with_index=False)
        try:  # a run cut short by the shutdown is not a failure
            assert n.store.alerts("default", rule=RULE) == []
        finally:
            n.close()

    def test_off_by_default(self, server: ServerProcess) -> None:
        with server.client() as c:
            assert c.get("/v1/status").json()["canary"] is None
        assert not (server.data.root / "canary.token").exists()


class TestFailures:
    def test_an_unreachable_server_fails_at_checkpoint_and_raises_one_alert_a_stage(
            self, data_dir: DataDir) -> None:
        n = open_node(data_dir, with_index=False)
        try:
            url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
            job = CanaryJob(n, url, every=3600, timeout=2)
            job.step()
            job.step()
            status = job.status()
            assert (status["runs"], status["failures"]) == (2, 2)
            assert status["last"]["ok"] is False and status["last"]["failed"] == "checkpoint"
            assert status["last_failure"] == status["last"]
            slis = n.options["slis"]
            assert slis.good_total("canary") == (0, 2)
            failed = {(s.name, tuple(s.labels.items())): s.value
                      for fam in slis.collect() for s in fam.samples}
            assert failed[("auditkeep_canary_failures_total", (("stage", "checkpoint"),))] == 2
            alerts = n.store.alerts("default", rule=RULE)
            assert [a.level for a in alerts] == ["high"]  # the second folded into it
            body = orjson.loads(alerts[0].body)
            assert body["count"] == 2
            assert body["details"]["stage"] == "checkpoint"
            assert body["details"]["runbook"] == RUNBOOK
            assert "canary failed at checkpoint" in body["title"]
        finally:
            n.close()

    def test_a_run_while_not_serving_or_cut_short_by_a_shutdown_is_no_failure(
            self, data_dir: DataDir) -> None:
        n = open_node(data_dir, with_index=False)
        try:
            url = f"http://127.0.0.1:{free_port()}"
            idle = CanaryJob(n, url, every=3600, timeout=2, serving=lambda: False)
            idle.step()
            assert idle.runs == 0 and idle.last is None
            answers = iter([True, False])  # serving when it starts, shutting down after
            stopping = CanaryJob(n, url, every=3600, timeout=2,
                                 serving=lambda: next(answers))
            stopping.step()
            assert stopping.runs == 0 and stopping.failures == 0
            assert n.store.alerts("default", rule=RULE) == []
            assert n.options["slis"].good_total("canary") == (0, 0)
        finally:
            n.close()


class TestRevokedToken:
    def test_a_revoked_token_fails_one_run_then_the_job_makes_a_new_one(
            self, data_dir: DataDir, tmp_path: Path) -> None:
        from click.testing import CliRunner

        from auditkeep.auth import token_hash
        from auditkeep.cli.main import cli

        cfg = tmp_path / "auditkeep.yaml"
        cfg.write_text("canary: {every: 1s, timeout: 20s}\n")
        server = start_server(data_dir, "--config", str(cfg), "--ingest-workers", "0")
        try:
            _wait(server, 1)
            secret = (data_dir.root / "canary.token").read_text().strip()
            n = open_node(data_dir, with_index=False, indexer="none")
            try:
                held = n.store.token_by_hash(token_hash(secret))
                assert held is not None
            finally:
                n.close()
            res = CliRunner().invoke(cli, ["tokens", "revoke", held.id, "--data",
                                           str(data_dir.root)])
            assert res.exit_code == 0, res.output
            deadline = time.monotonic() + 60
            with server.client() as c:
                while True:
                    status = c.get("/v1/status").json()["canary"]
                    failed = status["last_failure"]
                    if failed is not None and status["last"]["ok"] and \
                            status["last"]["at"] > failed["at"]:
                        break  # a failure, then a run that passed again
                    assert time.monotonic() < deadline, status
                    time.sleep(0.2)
            assert "HTTP 401" in failed["detail"] or "HTTP 403" in failed["detail"], failed
            assert (data_dir.root / "canary.token").read_text().strip() != secret
        finally:
            server.stop()


class TestToken:
    def test_the_token_is_reused_and_replaced_for_another_tenant(
            self, data_dir: DataDir) -> None:
        n = open_node(data_dir, with_index=False)
        try:
            first = canary_token(n, "canary")
            assert canary_token(n, "canary") == first
            other = canary_token(n, "canary-b")
            assert other != first
            from auditkeep.auth import token_hash

            old = n.store.token_by_hash(token_hash(first))
            new = n.store.token_by_hash(token_hash(other))
            assert old is not None and old.revoked is not None
            assert new is not None and new.tenant == "canary-b"
            assert new.scopes == ("ingest", "read")
            n.store.revoke_token(new.id, "2026-01-01T00:00:00Z")
            assert canary_token(n, "canary-b") not in (first, other)  # revoked: a new one
        finally:
            n.close()


def test_loopback_url() -> None:
    assert loopback_url("0.0.0.0", 8180) == "http://127.0.0.1:8180"  # noqa: S104
    assert loopback_url("::", 8180) == "http://[::1]:8180"
    assert loopback_url("127.0.0.1", 1) == "http://127.0.0.1:1"
    assert loopback_url("::1", 2) == "http://[::1]:2"
