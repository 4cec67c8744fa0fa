"""The configuration file's `witnesses:` section: every problem, with its path."""

from __future__ import annotations

from auditkeep.pipeline.config import check_config, parse_config
from auditkeep.pipeline.config_keeping import WitnessConfig
from auditkeep.witness.cosignature import WitnessSigner

A = WitnessSigner.generate("witness.test/a").vkey
B = WitnessSigner.generate("witness.test/b").vkey


def test_entries_become_witness_configs() -> None:
    cfg = parse_config(f"witnesses:\n  - url: https://a.test/\n    vkey: {A}\n"
                       f"  - name: bee\n    url: http://b.test\n    vkey: {B}\n"
                       "    timeout: 3\n    interval: 60\n    logs: [acme, acme._access]\n")
    assert cfg.witnesses == (WitnessConfig("witness.test/a", "https://a.test/", A),
                             WitnessConfig("bee", "http://b.test", B, 3.0, 60.0,
                                           ("acme", "acme._access")))


def test_no_section_means_no_witnesses() -> None:
    assert parse_config("").witnesses == ()


def test_every_problem_is_reported_with_its_path() -> None:
    log_vkey = "example.test/log+1c8e6ab6+AdlWG5nwY4iWGWakH+dnqOrRG/0rmcTYe5wn2ihvo3Mf"
    text = (f"witnesses:\n"
            f"  - url: ftp://a.test\n    vkey: {A}\n"          # 0: bad url
            f"  - url: https://b.test\n"                       # 1: no vkey
            f"  - url: https://c.test\n    vkey: {log_vkey}\n"  # 2: a log key, not 0x04
            f"  - url: https://d.test\n    vkey: {B}\n    timeout: 0\n    colour: red\n"
            f"  - url: https://e.test\n    vkey: {A}\n"          # 4: same key as 0? 0 failed
            f"  - url: https://f.test\n    vkey: {A}\n"          # 5: same key as 4
            f"  - url: https://g.test\n    vkey: {B}\n    logs: [ok, Bad]\n")
    problems = {(p.path, p.line) for p in check_config(text)}
    paths = {p for p, _ in problems}
    assert {"witnesses[0].url", "witnesses[1].vkey", "witnesses[2].vkey",
            "witnesses[3].timeout", "witnesses[3].colour", "witnesses[5].name",
            "witnesses[6].logs[1]"} <= paths
    assert all(line is not None for _, line in problems)


def test_a_mapping_instead_of_a_list() -> None:
    (p,) = check_config(f"witnesses:\n  url: https://a.test\n  vkey: {A}\n")
    assert p.path == "witnesses" and "expected a list" in p.message
