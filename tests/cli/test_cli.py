"""The CLI end to end: a real server process, the `auditkeep` commands against it."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from tests.conftest import ServerProcess


def ak(*args: str, env: dict[str, str] | None = None, stdin: str | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditkeep", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, input=stdin,
                          timeout=60, check=False)


def env_for(server: ServerProcess) -> dict[str, str]:
    return {"AUDITKEEP_URL": server.url, "AUDITKEEP_TOKEN": server.admin_token}


class TestClientCommands:
    def test_emit_search_and_proof(self, server: ServerProcess) -> None:
        env = env_for(server)
        r = ak("emit", "--action", "orders.delete", "--actor", "alice", "--resource", "order:42",
               env=env)
        assert r.returncode == 0, r.stderr
        assert "seq 0" in r.stdout
        lines = "\n".join(orjson.dumps({"action": "users.login", "actor": {
            "id": f"u{i}", "type": "user"}, "outcome": "failure"}).decode() for i in range(3))
        r = ak("emit", "--file", "-", env=env, stdin=lines)
        assert r.returncode == 0, r.stderr
        assert "seq 3" in r.stdout
        import time

        time.sleep(1.0)
        r = ak("search", "--action", "users.*", "--format", "ndjson", env=env)
        assert r.returncode == 0, r.stderr
        found = [orjson.loads(x) for x in r.stdout.splitlines()]
        assert [e["seq"] for e in found] == [3, 2, 1]
        r = ak("search", "--actor", "alice", env=env)
        assert "orders.delete" in r.stdout and "order:42" in r.stdout
        r = ak("proof", "--seq", "2", env=env)
        assert r.returncode == 0, r.stderr
        assert "signature verified" in r.stdout and r.stdout.strip().endswith("ok")

    def test_consistency_from_a_held_checkpoint(self, server: ServerProcess, tmp_path) -> None:
        env = env_for(server)
        ak("emit", "--action", "a.b", "--actor", "x", env=env)
        held = tmp_path / "cp.txt"
        with server.client() as c:
            held.write_text(c.get("/v1/logs/default/checkpoint").text)
        for _ in range(3):
            ak("emit", "--action", "a.b", "--actor", "x", env=env)
        r = ak("proof", "--since-checkpoint", str(held), env=env)
        assert r.returncode == 0, r.stderr
        assert "extends your checkpoint of size 1" in r.stdout


class TestMistakes:
    def test_user_mistakes_are_one_line_and_nonzero(self, server: ServerProcess,
                                                    tmp_path) -> None:
        env = env_for(server)
        cases = [
            (["emit", "--action", "a.b"], env),
            (["emit", "--action", "a.b", "--actor", "x", "--metadata", "{nope"], env),
            (["emit", "--action", "a b", "--actor", "x"], env),
            (["search", "--since", "yesterday"], env),
            (["verify", "--data", str(tmp_path / "nothing")], {}),
            (["tokens", "create", "--data", str(server.data.root), "--scope", "read"], {}),
            (["emit", "--action", "a.b", "--actor", "x"], {"AUDITKEEP_URL": server.url,
                                                           "AUDITKEEP_TOKEN": "ak_wrong"}),
            (["emit", "--action", "a.b", "--actor", "x"], {"AUDITKEEP_URL": "http://127.0.0.1:9",
                                                           "AUDITKEEP_TOKEN": "x"}),
        ]
        for args, e in cases:
            r = ak(*args, env=e)
            assert r.returncode != 0, args
            assert "Traceback" not in r.stderr, (args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


class TestAdmin:
    def test_tokens_create_list_revoke(self, server: ServerProcess) -> None:
        d = str(server.data.root)
        r = ak("tokens", "create", "--data", d, "--tenant", "acme", "--scope", "ingest",
               "--name", "ci")
        assert r.returncode == 0, r.stderr
        secret = r.stdout.strip()
        token_id = r.stderr.split()[1].rstrip(":")
        with server.client(secret) as c:
            assert c.post("/v1/events", json={"action": "a.b", "actor": {
                "id": "x", "type": "user"}, "outcome": "success"}).status_code == 201
        listed = ak("tokens", "list", "--data", d).stdout
        assert token_id in listed and secret not in listed
        assert ak("tokens", "revoke", "--data", d, token_id).returncode == 0
        with server.client(secret) as c:
            assert c.get("/v1/logs/acme/checkpoint").status_code == 401

    def test_keys_list_shows_verifier_strings(self, server: ServerProcess) -> None:
        r = ak("keys", "list", "--data", str(server.data.root))
        assert r.returncode == 0
        assert "auditkeep.local/default+" in r.stdout


class TestDataDirectory:
    def test_secrets_are_private(self, server: ServerProcess) -> None:
        d = server.data
        assert d.root.stat().st_mode & 0o077 == 0
        assert d.admin_token.stat().st_mode & 0o777 == 0o600
        for key in d.keys.glob("*.key"):
            assert key.stat().st_mode & 0o777 == 0o600


class TestUsage:
    def test_usage_mistakes_are_one_line_with_exit_2(self) -> None:
        for args in (["nosuch"], ["emit", "--bogus"], ["search", "--limit", "5000"],
                     ["tokens", "create", "--scope", "wizard", "--tenant", "a"]):
            r = ak(*args)
            assert r.returncode == 2, args
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert r.stderr.startswith("auditkeep: ")

    def test_help_exits_zero(self) -> None:
        r = ak("--help")
        assert r.returncode == 0
        assert "verify" in r.stdout
