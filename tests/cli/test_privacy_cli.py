"""`erase`, `subjects export` and `scan-pii` as a user runs them (subprocesses against a
real server and data directory)."""

from __future__ import annotations

import orjson

from tests.cli.test_cli import ak, env_for
from tests.conftest import ServerProcess
from tests.server.test_reads import token, wait_searchable

LEAKY = {"action": "support.ticket", "outcome": "success",
         "actor": {"id": "agent-7", "type": "user", "email": "gina@example.org"},
         "metadata": {"note": "customer wrote from pat.leak@example.com",
                      "callback": "https://x.example/cb?token=abcdef0123456789"}}


def test_erase_export_scan_and_verify(server: ServerProcess) -> None:
    env = env_for(server)
    r = ak("emit", "--file", "-", env=env, stdin=orjson.dumps(LEAKY).decode())
    assert r.returncode == 0, r.stderr
    with server.client() as c:
        wait_searchable(c, 1)
    privacy = {**env, "AUDITKEEP_TOKEN": token(server, "privacy")}
    r = ak("subjects", "export", "gina@example.org", env=privacy)
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    assert orjson.loads(line)["record"]["actor"]["email"] == "gina@example.org"
    assert "1 events of subject pn_" in r.stderr
    r = ak("erase", "--subject", "gina@example.org", env=privacy)
    assert r.returncode == 2 and "--legal-basis" in r.stderr
    r = ak("erase", "--subject", "gina@example.org", "--legal-basis", "Art. 17", env=env)
    assert r.returncode == 0, r.stderr
    assert "erased subject pn_" in r.stdout and "1 events, 1 personal values" in r.stdout
    r = ak("erase", "--subject", "gina@example.org", "--legal-basis", "Art. 17", env=env)
    assert r.returncode == 0 and "nothing held" in r.stdout
    reader = {**env, "AUDITKEEP_TOKEN": token(server, "read")}
    r = ak("erase", "--subject", "x", "--legal-basis", "y", env=reader)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "privacy" in r.stderr
    server.stop()
    data = str(server.data.root)
    r = ak("scan-pii", "--data", data)
    assert r.returncode == 1, r.stdout + r.stderr  # the note and the callback leak
    assert "/metadata/note" in r.stdout and "email" in r.stdout
    assert "pat.leak" not in r.stdout and "abcdef0123456789" not in r.stdout
    report = orjson.loads(ak("scan-pii", "--data", data, "--json").stdout)
    rules = {(f["path"], f["rule"]) for f in report["findings"]}
    assert ("/metadata/note", "email") in rules
    assert ("/metadata/callback", "secret_param") in rules
    assert all(f["action"] == "support.ticket" for f in report["findings"])
    assert ak("scan-pii", "--data", data, "--detector", "ssn").returncode == 0
    r = ak("scan-pii", "--data", data, "--detector", "tarot")
    assert r.returncode == 2 and "unknown detector 'tarot'" in r.stderr
    r = ak("verify", "--data", data)
    assert r.returncode == 0 and "1 erased by 1 erasure record" in r.stdout
