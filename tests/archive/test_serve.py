"""`auditkeep serve` with an `archive:` section: the scheduled archiver seals ranges as
they are covered, and the CLI lists, runs and verifies them (one real server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.server.helpers import event, verifiers


def ak(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditkeep", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


def test_the_scheduled_archiver_seals_and_the_cli_verifies(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(f"archive: {{url: {archive}, range: 256, schedule: 1s}}\n")
    srv = start_server(DataDir(tmp_path / "data"), "--config", str(cfg))
    try:
        with srv.client() as c:
            assert c.post("/v1/events?tenant=acme", json=[event(i) for i in range(300)]
                          ).status_code == 201
            deadline = time.monotonic() + 20
            while not (ranges := c.get("/v1/archive").json()["ranges"]):
                assert time.monotonic() < deadline, "nothing archived within 20 s"
                time.sleep(0.2)
            keys = [v.to_string() for v in verifiers(c) if v.name.endswith("/acme")]
        assert [(r["log"], r["first"], r["end"]) for r in ranges] == [("acme", 0, 256)]
        env = {"AUDITKEEP_URL": srv.url, "AUDITKEEP_TOKEN": srv.admin_token}
        listed = ak("archive", "list", env=env)
        assert listed.returncode == 0 and "acme [0, 256)" in listed.stdout, listed.stderr
        ran = ak("archive", "run", env=env)
        assert ran.returncode == 0 and "0 range(s) sealed" in ran.stdout, ran.stderr
        checked = ak("archive", "verify", str(archive), *[a for k in keys for a in ("--key", k)],
                     env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "acme [0, 256): 256 entries: ok" in checked.stdout
    finally:
        srv.stop()
