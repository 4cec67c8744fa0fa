"""`auditkeep witness keygen / vkey / serve`: keys on disk, one-line mistakes."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.witness.cosignature import WitnessSigner, WitnessVerifier


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_keygen_writes_a_secret_and_prints_the_vkey(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    code, out, _ = run("witness", "keygen", "witness.test/w1", "-o", str(key))
    assert code == 0
    signer = WitnessSigner.parse(key.read_text().strip())
    assert out.strip() == signer.vkey
    assert WitnessVerifier.parse(out.strip()).name == "witness.test/w1"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert run("witness", "vkey", "--key", str(key))[1].strip() == signer.vkey


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    key.write_text("precious")
    code, _, err = run("witness", "keygen", "witness.test/w1", "-o", str(key))
    assert code == 2 and "refusing to overwrite" in err
    assert key.read_text() == "precious"


def test_keygen_refuses_a_bad_name(tmp_path: Path) -> None:
    code, _, err = run("witness", "keygen", "has space", "-o", str(tmp_path / "w.key"))
    assert code == 2 and err.count("\n") == 1 and "space" in err


def test_serve_mistakes_are_one_line(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    run("witness", "keygen", "witness.test/w1", "-o", str(key))
    wvkey = WitnessSigner.parse(key.read_text().strip()).vkey
    cases = [
        (["--key", str(tmp_path / "missing.key"), "--log", wvkey], "cannot read"),
        (["--key", str(key), "--log", "nonsense"], "--log"),
        (["--key", str(key), "--log", wvkey], "not 0x01"),  # a witness key is no log key
    ]
    for args, says in cases:
        code, _, err = run("witness", "serve", *args, "--data", str(tmp_path / "d"))
        assert code == 2, (args, err)
        assert says in err and err.count("\n") == 1, err
