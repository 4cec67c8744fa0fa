"""Agent configuration: YAML or flags, every problem reported at once with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditkeep.agent
from auditkeep.agent.config import (
    DEFAULT_K8S_STAGES,
    AgentConfig,
    FileConfig,
    config_from_flags,
    load_config,
    parse_config,
)
from auditkeep.errors import ConfigError

FULL = """
url: http://127.0.0.1:8180
token_file: secrets/token
tenant: acme
state_dir: state
poll_interval: 0.5
rotate_wait: 2
metrics_port: 9464
spool_limit: 1048576
on_full: block
files:
  - path: /var/log/kube-apiserver/audit.log
    format: k8s-audit
    stages: [ResponseComplete, Panic, ResponseStarted]
  - path: app/audit.jsonl
    format: json
    start_at: end
"""


def test_exported_members() -> None:
    assert auditkeep.agent.__all__ == sorted(auditkeep.agent.__all__)
    for name in auditkeep.agent.__all__:
        assert hasattr(auditkeep.agent, name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_a_full_file_becomes_typed_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("ak_secret\n")
    cfg = load_config(write(tmp_path, FULL), env={})
    assert cfg == AgentConfig(
        url="http://127.0.0.1:8180", token="ak_secret", tenant="acme",
        state_dir=tmp_path / "state", poll_interval=0.5, rotate_wait=2.0, metrics_port=9464,
        spool_limit=1 << 20, on_full="block",
        files=(FileConfig(Path("/var/log/kube-apiserver/audit.log"), "k8s-audit",
                          ("ResponseComplete", "Panic", "ResponseStarted"), "beginning"),
               FileConfig(tmp_path / "app" / "audit.jsonl", "json", None, "end")))


def test_defaults_and_the_token_from_the_environment(tmp_path: Path) -> None:
    cfg = parse_config({"url": "https://audit.example", "state_dir": "/s",
                        "files": [{"path": "/a.log", "format": "k8s-audit"}]},
                       env={"AUDITKEEP_TOKEN": "ak_env"})
    assert cfg.token == "ak_env"
    assert cfg.files[0].stages == DEFAULT_K8S_STAGES
    assert cfg.files[0].start_at == "beginning"
    assert (cfg.poll_interval, cfg.rotate_wait, cfg.on_full) == (0.25, 5.0, "block")
    assert cfg.metrics_port is None


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    text = """
url: ftp://x
token: ak_1
token_file: t
poll_interval: fast
metrics_port: 70000
colour: blue
files:
  - path: /a.log
    format: json
    stages: [ResponseComplete]
  - path: /b.log
    format: xml
  - format: k8s-audit
    stages: [Done]
  - /c.log
  - path: /a.log
    format: json
    start_at: middle
"""
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    got = [(p.pointer, p.detail) for p in err.value.problems]
    assert got == [
        ("/colour", "unknown key (expected one of url, token, token_file, tenant, state_dir, "
                    "files, poll_interval, rotate_wait, max_line_bytes, metrics_port, "
                    "metrics_address, spool_limit, on_full, batch_size, batch_age)"),
        ("/url", "expected an http:// or https:// URL, got 'ftp://x'"),
        ("/token_file", "give token or token_file, not both"),
        ("/token_file", f"cannot read {tmp_path / 't'}: No such file or directory"),
        ("/state_dir", "required"),
        ("/files/0/stages", "only for format k8s-audit"),
        ("/files/1/format", "expected one of json, k8s-audit, got 'xml'"),
        ("/files/2/path", "required"),
        ("/files/2/stages/0", "expected one of RequestReceived, ResponseStarted, "
                              "ResponseComplete, Panic, got 'Done'"),
        ("/files/3", "expected a mapping with path and format, got '/c.log'"),
        ("/files/4/start_at", "expected one of beginning, end, got 'middle'"),
        ("/files/4/path", "/a.log is already followed by files[0]"),
        ("/metrics_port", "expected an integer from 1 to 65535, got 70000"),
        ("/poll_interval", "expected a number from 0.01 to 60, got 'fast'"),
    ]
    message = err.value.detail
    assert message.startswith(f"{tmp_path / 'agent.yaml'}: 14 problems: colour: unknown key")
    assert "files[1].format: expected one of json, k8s-audit, got 'xml'" in message
    assert "\n" not in message


def test_a_missing_token_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"url": "http://x", "state_dir": "s"}, env={})
    assert [p.pointer for p in err.value.problems] == ["/token", "/files"]


def test_yaml_syntax_errors_say_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml:4:1: not valid YAML: expected .,. or .\]."):
        load_config(write(tmp_path, "url: x\nfiles:\n  - [unclosed\n"), env={})


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping of settings, got a list"):
        load_config(write(tmp_path, "- a\n- b\n"), env={})


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_flags_build_the_same_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from_flags = config_from_flags(url="http://h:1", token="ak_1", state_dir="st",
                                   files=[("audit.log", "k8s-audit"), ("/x.jsonl", "json")],
                                   env={})
    from_yaml = load_config(write(tmp_path, """
url: http://h:1
token: ak_1
state_dir: st
files:
  - {path: audit.log, format: k8s-audit}
  - {path: /x.jsonl, format: json}
"""), env={})
    assert from_flags == from_yaml


def test_flags_are_checked_by_the_same_rules() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_flags(url=None, token=None, state_dir=None, files=[], env={})
    assert err.value.detail == ("flags: 4 problems: url: required; token: required (or "
                                "token_file, or $AUDITKEEP_TOKEN); state_dir: required; "
                                "files: required: a list of files to follow")
