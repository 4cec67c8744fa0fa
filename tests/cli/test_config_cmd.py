"""`auditkeep config check FILE`: a summary and exit 0, or every problem and exit 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from auditkeep.cli.main import cli

GOOD = """\
sources:
  generic:
    - name: github
      map: {action: /action, actor.id: /sender/login, actor.type: {const: user},
            outcome: {const: success}}
pipeline:
  - normalise
  - sample: {rate: 0.1, actions: ["k8s.*.get"]}
tenants:
  acme: {pipeline: [validate]}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_good_file_is_summarised(tmp_path: Path) -> None:
    path = tmp_path / "auditkeep.yaml"
    path.write_text(GOOD)
    code, out, err = run("config", "check", str(path))
    assert (code, out, err) == (0, "ok: 1 tenant, 3 stages, 1 generic source\n", "")


def test_an_empty_file_is_good(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert run("config", "check", str(path))[:2] == (0, "ok: 0 tenants, 0 stages, "
                                                        "0 generic sources\n")


def test_every_problem_one_a_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "auditkeep.yaml"
    path.write_text("pipeline:\n  - sample: {rate: 1.5}\n  - redcat\n"
                    "tenants:\n  acme: {pipeline: [{sample: {rate: -1}}], extends: x}\n")
    code, out, err = run("config", "check", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:2:14: pipeline[0].sample.rate: expected a number from 0 to 1, got 1.5",
        f"{path}:3:5: pipeline[1]: unknown stage 'redcat' (expected one of validate, "
        "normalise, enrich, sample, redact)",
        f"{path}:5:31: tenants.acme.pipeline[0].sample.rate: expected a number from 0 to 1, "
        "got -1",
        f"{path}:5:44: tenants.acme.extends: expected one of global, none, got 'x'",
    ]
    assert err == f"auditkeep: {path}: 4 problems\n"


def test_a_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("pipeline: [normalise\n")
    code, out, err = run("config", "check", str(path))
    assert code == 1
    assert out.startswith(f"{path}:2:1: (top): not valid YAML: ")
    assert err == f"auditkeep: {path}: 1 problem\n"


def test_files_that_cannot_be_checked(tmp_path: Path) -> None:
    code, _, err = run("config", "check", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"pipeline: [caf\xe9]\n")
    code, _, err = run("config", "check", str(path))
    assert (code, err) == (1, f"auditkeep: {path}: not UTF-8 text (byte 14)\n")
