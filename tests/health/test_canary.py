"""`auditkeep canary` against one real server: every stage passes and is printed; with a
key that did not sign the log it fails, naming the stage."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.log.note import Signer
from tests.conftest import ServerProcess


def test_canary_passes_every_stage_then_fails_on_a_wrong_key(server: ServerProcess) -> None:
    token = server.admin_token
    runner = CliRunner()
    base = ["canary", "--url", server.url, "--token", token, "--timeout", "20"]
    first = runner.invoke(cli, base)
    assert first.exit_code == 0, first.output
    for stage in ("committed", "searchable", "proved", "consistent"):
        assert stage in first.output
    again = runner.invoke(cli, [*base, "--json"])  # now with a held checkpoint to extend
    assert again.exit_code == 0, again.output
    got = orjson.loads(again.output.splitlines()[0])
    assert got["ok"] is True and got["size"] >= 2 and got["seq"] == 1
    assert set(got["latencies"]) == {"committed", "searchable", "proved", "consistent"}
    other = Signer.generate("auditkeep.local/canary").verifier().to_string()
    bad = runner.invoke(cli, [*base, "--key", other])
    assert bad.exit_code == 1
    assert "canary failed at checkpoint" in bad.output or "failed at proved" in bad.output
