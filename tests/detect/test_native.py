"""Native rule files: what loads, what is refused and why, and their own test cases
(including every shipped default rule file's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditkeep.detect.native import discriminator
from auditkeep.detect.rules import Discriminator, RuleError
from auditkeep.detect.ruleset import RuleSet, load_text, rule_paths
from auditkeep.detect.testing import run_file
from auditkeep.detect.view import EventView
from auditkeep.query.lang import parse

DEFAULTS = Path(__file__).parents[2] / "src" / "auditkeep" / "detect" / "default_rules"


@pytest.mark.parametrize("path", rule_paths(DEFAULTS), ids=lambda p: p.name)
def test_every_shipped_rule_file_passes_its_own_tests(path: Path) -> None:
    rf = load_text(path.read_text(), path.name)
    assert rf.tests, f"{path.name} ships without test cases"
    results = run_file(rf)
    assert [r.problems for r in results if not r.ok] == []


def test_the_shipped_rules_cover_the_seed_examples() -> None:
    ids = {r.id for p in rule_paths(DEFAULTS) for r in load_text(p.read_text(), p.name).rules}
    assert {"iam-policy-change", "bulk-export-by-actor", "k8s-privileged-exec",
            "service-account-deletes", "audit-pipeline-quiet"} <= ids


def test_a_wrong_expectation_fails_with_what_happened() -> None:
    rf = load_text("""
rules:
  - {id: d, query: 'action:orders.delete', group_by: [actor.id]}
tests:
  - name: expects two but one fires
    events:
      - {action: orders.delete, actor: {id: a, type: user}, outcome: success}
    expect:
      - {rule: d, count: 2}
  - name: expects the wrong group
    events:
      - {action: orders.delete, actor: {id: a, type: user}, outcome: success}
    expect:
      - {rule: d, group: {actor.id: b}}
  - name: expects nothing
    events:
      - {action: orders.delete, actor: {id: a, type: user}, outcome: success}
    expect: []
  - name: an invalid event is a failure, not a pass
    events:
      - {action: orders.delete, outcome: success}
    expect: []
""", "t.yml")
    results = run_file(rf)
    assert [r.ok for r in results] == [False, False, False, False]
    assert "expected 2 alert(s), got 1" in results[0].problems[0]
    assert "group {'actor.id': 'b'}" in results[1].problems[0]
    assert "expected 0 alert(s), got 1" in results[2].problems[0]
    assert results[3].problems[0].startswith("events:")


@pytest.mark.parametrize(("body", "reason"), [
    ("rules: []", "non-empty list"),
    ("rules:\n  - {id: 'a b', query: '*'}", "`id` must be"),
    ("rules:\n  - {id: a, query: 'action:('}", "query:"),
    ("rules:\n  - {id: a, kind: temporal}", "Sigma correlations"),
    ("rules:\n  - {id: a, kind: threshold, window: 10m, count: '< 3'}", "silence rule"),
    ("rules:\n  - {id: a, kind: threshold, window: soon, count: '> 3'}", "duration"),
    ("rules:\n  - {id: a, kind: new_value}", "needs `fields`"),
    ("rules:\n  - {id: a, period: 10m}", "for silence rules"),
    ("rules:\n  - {id: a, level: urgent}", "level 'urgent'"),
    ("rules:\n  - {id: a, group_by: [actor.email]}", "personal data"),
    ("rules:\n  - {id: a, querry: x}", "unknown key 'querry'"),
    ("just: text", "neither a native rule file"),
    ("rules: [\n", "not YAML"),
])
def test_refusals_say_why(body: str, reason: str) -> None:
    with pytest.raises(RuleError) as info:
        load_text(body, "bad.yml")
    assert reason in str(info.value) and "bad.yml" in str(info.value)


def test_duplicate_ids_across_files_are_refused() -> None:
    a = load_text("rules:\n  - {id: same}", "a.yml")
    b = load_text("rules:\n  - {id: same}", "b.yml")
    with pytest.raises(RuleError, match=r"already used in a\.yml"):
        RuleSet([a, b])


def test_discriminators_are_necessary_conditions() -> None:
    assert discriminator(parse("action:a.b outcome:failure")) == \
        Discriminator("action", frozenset({"a.b"}))
    assert discriminator(parse("(action:a OR action:b) actor:x")) == \
        Discriminator("action", frozenset({"a", "b"}))
    assert discriminator(parse("action:a OR outcome:failure")) is None
    assert discriminator(parse("action:a*")) is None
    assert discriminator(parse("NOT action:a")) is None


def test_the_rule_set_only_tries_rules_an_event_can_match() -> None:
    rs = RuleSet([load_text("""
rules:
  - {id: del, query: 'action:orders.delete'}
  - {id: any, query: 'outcome:failure OR actor.type:service'}
""", "t.yml")])
    view = EventView({"action": "orders.read", "outcome": "success",
                      "actor": {"id": "a", "type": "user"}})
    assert [r.id for r in rs.candidates(view)] == ["any"]
    view = EventView({"action": "orders.delete", "outcome": "success",
                      "actor": {"id": "a", "type": "user"}})
    assert sorted(r.id for r in rs.candidates(view)) == ["any", "del"]
