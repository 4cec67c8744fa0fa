"""`auditkeep rules check|test`: offline, one line per problem, exit 1 on any."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEFAULTS = Path(__file__).parents[2] / "src" / "auditkeep" / "detect" / "default_rules"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditkeep", "rules", *args],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_rules_check_and_pass_their_tests() -> None:
    r = run("check", str(DEFAULTS))
    assert r.returncode == 0 and r.stdout.startswith("ok: 6 rules in 5 files"), r.stdout
    r = run("test", str(DEFAULTS))
    assert r.returncode == 0, r.stdout
    assert "PASS" in r.stdout and "FAIL" not in r.stdout
    assert r.stdout.strip().endswith("rule tests passed")


def test_a_failing_case_says_what_differed(tmp_path: Path) -> None:
    f = tmp_path / "t.yml"
    f.write_text("""
rules:
  - {id: d, query: 'action:orders.delete'}
tests:
  - name: wrongly expects silence
    events:
      - {action: orders.delete, actor: {id: a, type: user}, outcome: success}
    expect: []
""")
    r = run("test", str(f))
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "rule d: expected 0 alert(s), got 1" in r.stdout
    assert r.stderr.strip() == "auditkeep: 1 of 1 rule test(s) failed"


def test_a_refused_file_is_one_line_with_its_reason(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("title: x\nlogsource: {product: windows}\ndetection:\n"
                 "  sel: {Image: x}\n  condition: sel\n")
    r = run("check", str(f))
    assert r.returncode == 1
    assert "bad.yml" in r.stdout and "logsource product=windows" in r.stdout
    assert r.stderr.strip() == "auditkeep: 1 rule file refused"
