"""Self-audit: passes on a clean and on a purged log; catches a modified tile and a
forged checkpoint, and says so as a critical alert and in the job's status."""

from __future__ import annotations

import random
from typing import Any

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.selfaudit import RULE, SelfAudit, SelfAuditJob, record
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint
from auditkeep.storage.base import Purge
from tests.log.tamper import Attacker, populate
from tests.log.test_verify import real_signer

ORIGIN = "auditkeep.local/default"


class Slis:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def integrity_failure(self, check: str) -> None:
        self.failures.append(check)

    def start(self) -> None:  # Node runs n.options["slis"] as a background job
        pass

    def stop(self) -> None:
        pass


def audit(data: DataDir, *, full: bool = True, spot_checks: int = 64) -> Any:
    n = open_node(data, with_index=False)
    try:
        return SelfAudit(n, spot_checks=spot_checks, rng=random.Random(1)).run(full=full)
    finally:
        n.close()


class TestSelfAudit:
    def test_a_clean_log_passes_every_check(self, data_dir: DataDir) -> None:
        populate(data_dir)
        result = audit(data_dir)
        assert result.ok, result.findings
        assert result.checks == ["checkpoints", "tiles", "verify"]

    def test_a_purged_log_passes(self, data_dir: DataDir) -> None:
        populate(data_dir)
        n = open_node(data_dir, with_index=False)
        try:
            info = n.logs.info("default")
            assert n.store.purge(Purge(info.id, [3, 4, 5], 119)) == 3  # a mark, seq 119
            n.logs.forget_bundles(info.id)
            # Spot checks over every level-0 tile: the purged leaves are skipped.
            result = SelfAudit(n, spot_checks=32, rng=random.Random(2)).run(full=False)
        finally:
            n.close()
        assert result.ok, result.findings

    def test_a_modified_tile_is_found_by_the_spot_checks(self, data_dir: DataDir) -> None:
        populate(data_dir)
        a = Attacker(data_dir)
        try:
            (blob,) = a.execute("SELECT hashes FROM tiles WHERE level=0 AND idx=0")[0]
            b = bytearray(blob)
            b[32 * 7] ^= 0xFF
            a.execute("UPDATE tiles SET hashes=? WHERE level=0 AND idx=0", bytes(b))
        finally:
            a.close()
        result = audit(data_dir, full=False, spot_checks=32)
        assert not result.ok
        assert "tiles" in result.failed
        assert any("tile (0, 0) tile-mismatch: node (0, 7)" in f for f in result.findings)

    def test_a_forged_checkpoint_is_found_and_raises_a_critical_alert(
            self, data_dir: DataDir) -> None:
        populate(data_dir)
        a = Attacker(data_dir)
        try:
            forged = Checkpoint(ORIGIN, 65, b"\x42" * 32)  # signed with the real key
            a.execute("INSERT INTO checkpoints (log_id, size, root, note, created) "
                      "VALUES (?, 65, ?, ?, 'now')", a.log_id, forged.root,
                      sign_checkpoint(forged, real_signer(data_dir)))
        finally:
            a.close()
        n = open_node(data_dir, with_index=False)
        try:
            n.options["slis"] = slis = Slis()
            job = SelfAuditJob(n, every=3600, spot_checks=4)
            job.step()
            assert job.last is not None and not job.last.ok
            assert "checkpoints" in job.last.failed
            assert any("checkpoints 60 -> 65 inconsistent" in f for f in job.last.findings)
            assert "checkpoints" in slis.failures
            status = job.status()
            assert status["last_failure"]["findings"] == job.last.findings
            alerts = n.store.alerts("default", rule=RULE)
            assert [x.level for x in alerts] == ["critical"]
        finally:
            n.close()

    def test_a_clean_pass_records_no_failure(self, data_dir: DataDir) -> None:
        populate(data_dir, commits=2)
        n = open_node(data_dir, with_index=False)
        try:
            n.options["slis"] = slis = Slis()
            result = SelfAudit(n, spot_checks=4).run()
            record(n, result)
            assert result.ok and slis.failures == []
            assert n.store.alerts("default", rule=RULE) == []
        finally:
            n.close()


class TestConfig:
    def test_self_audit_and_canary_sections_are_read_and_checked_whole(self) -> None:
        from auditkeep.errors import ConfigError
        from auditkeep.pipeline.config import parse_config

        cfg = parse_config("self_audit: {every: 10m, spot_checks: 8, full_verify: off}\n"
                           "canary: {every: 1m, tenant: canary, timeout: 5s}\n")
        assert (cfg.self_audit.every, cfg.self_audit.spot_checks,
                cfg.self_audit.full_verify) == (600.0, 8, None)
        assert (cfg.canary.every, cfg.canary.tenant, cfg.canary.timeout) == (60.0, "canary",
                                                                              5.0)
        assert parse_config("{}\n").canary.every is None  # off by default
        try:
            parse_config("self_audit: {every: soon}\ncanary: {tenant: _canary}\n")
        except ConfigError as exc:
            text = str(exc)
        else:
            raise AssertionError("accepted")
        assert "self_audit.every" in text and "canary.tenant" in text


class TestJob:
    def test_the_job_runs_full_verify_on_its_own_schedule_and_shows_in_status(
            self, data_dir: DataDir) -> None:
        import warnings

        from auditkeep.server.app import create_app

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using `httpx` with")
            from starlette.testclient import TestClient

        populate(data_dir, commits=2)
        now = [0.0]
        n = open_node(data_dir, with_index=False)
        try:
            job = SelfAuditJob(n, every=0.01, spot_checks=2, full_every=10.0,
                               clock=lambda: now[0])
            n.options["self_audit"] = job
            job.step()
            assert job.last is not None and "verify" not in job.last.checks
            now[0] = 11.0
            job.step()
            assert job.last.checks == ["checkpoints", "tiles", "verify"] and job.last.ok
            n.start_background()
            token = data_dir.admin_token.read_text().strip()
            with TestClient(create_app(n), headers={"Authorization": f"Bearer {token}"}) as c:
                got = c.get("/v1/status").json()["self_audit"]
            assert got["passes"] >= 2 and got["last"]["ok"] is True
            assert got["last_failure"] is None
        finally:
            n.close()


class TestCommand:
    def test_self_audit_exits_0_on_a_clean_log_and_1_naming_a_modified_tile(
            self, data_dir: DataDir) -> None:
        from click.testing import CliRunner

        from auditkeep.cli.main import cli

        populate(data_dir, commits=2)
        runner = CliRunner()
        args = ["self-audit", "--data", str(data_dir.root), "--seed", "1"]
        clean = runner.invoke(cli, args)
        assert clean.exit_code == 0, clean.output
        assert "self-audit (checkpoints, tiles, verify): ok" in clean.output
        a = Attacker(data_dir)
        try:
            (blob,) = a.execute("SELECT hashes FROM tiles WHERE level=0 AND idx=0")[0]
            b = bytearray(blob)
            b[0] ^= 0xFF
            a.execute("UPDATE tiles SET hashes=? WHERE level=0 AND idx=0", bytes(b))
        finally:
            a.close()
        bad = runner.invoke(cli, [*args, "--json"])
        assert bad.exit_code == 1
        got = orjson.loads(bad.output.splitlines()[0])
        assert got["ok"] is False and "verify" in got["failed"]
        assert "self-audit failed" in bad.output
