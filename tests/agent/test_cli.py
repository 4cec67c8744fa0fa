"""`auditkeep agent run|status`: one-line errors, and the status as a table or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
from click.testing import CliRunner

from auditkeep.cli.main import cli

STATUS = {
    "pid": 0, "started": "2024-01-01T00:00:00.000Z", "updated": "2024-01-01T00:00:01.000Z",
    "url": "http://127.0.0.1:8180", "last_error": "cannot reach the server: ConnectError()",
    "counters": {"read": 10, "events": 9, "filtered": 0, "invalid": 1, "blocked": 0,
                 "sent": 7, "retried": 4, "spooled_bytes": 321, "dropped": 0, "rejected": 0,
                 "duplicates": 2, "pending": 2},
    "files": [{"path": "/var/log/audit.log", "format": "k8s-audit", "offset": 4096,
               "line": 10, "lag_bytes": 0, "rotated_open": 0, "rotations": 1,
               "truncations": 0}],
}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["agent", *args])
    return res.exit_code, res.output


def test_status_as_a_table(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_bytes(orjson.dumps(STATUS))
    code, out = run("status", "--state", str(tmp_path))
    assert code == 0, out
    assert out.startswith("agent not running, updated ")
    assert "last error: cannot reach the server: ConnectError()" in out
    for row in ("lines read", "retried", "spooled bytes (unsent)", "invalid lines",
                "/var/log/audit.log", "k8s-audit", "4096"):
        assert row in out


def test_status_as_json_says_whether_the_agent_runs(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_bytes(orjson.dumps({**STATUS, "pid": os.getpid(),
                                                         "updated": _now()}))
    code, out = run("status", "--state", str(tmp_path), "--json")
    assert code == 0, out
    got = json.loads(out)
    assert got["running"] is True and got["counters"]["spooled_bytes"] == 321


def test_status_without_an_agent(tmp_path: Path) -> None:
    code, out = run("status", "--state", str(tmp_path))
    assert code == 1
    assert out == f"auditkeep: no agent status in {tmp_path} (no agent has run with it)\n"


def test_a_bad_config_file_is_one_line_with_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("url: http://x\ntoken: t\nstate_dir: s\nfiles:\n"
                   "  - {path: a.log, format: json}\n  - {path: b.log, format: xml}\n"
                   "on_full: maybe\n")
    code, out = run("run", "--config", str(cfg))
    assert code == 2
    assert out == (f"auditkeep: {cfg}: 2 problems: files[1].format: expected one of json, "
                   "k8s-audit, got 'xml'; on_full: expected one of block, drop, got 'maybe'\n")


def test_config_or_flags_not_both(tmp_path: Path) -> None:
    code, out = run("run", "--config", str(tmp_path / "a.yaml"), "--file", "x")
    assert code == 2 and "give --config or --file/--format/--state, not both" in out


def test_one_format_for_all_files_or_one_each(tmp_path: Path) -> None:
    code, out = run("run", "--url", "http://x", "--token", "t", "--state", str(tmp_path),
                    "--file", "a", "--file", "b", "--file", "c", "--format", "json",
                    "--format", "k8s-audit")
    assert code == 2 and "--format: give it once for all files or once per --file" in out


def test_flags_are_checked_like_a_file(tmp_path: Path) -> None:
    code, out = run("run", "--url", "localhost:8180", "--token", "t", "--state",
                    str(tmp_path), "--file", "a.log", "--format", "json")
    assert code == 2
    assert out == ("auditkeep: flags: 1 problem: url: expected an http:// or https:// URL, "
                   "got 'localhost:8180'\n")


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
