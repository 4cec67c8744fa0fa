"""Sigma rules: the public SigmaHQ Kubernetes-audit and CloudTrail rules load or are
refused with a reason; each loaded one accepts an event made from it and refuses near
misses; and the semantics (case, wildcards, modifiers, correlations) one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sigma.collection import SigmaCollection

from auditkeep.detect.rules import RuleError
from auditkeep.detect.ruleset import load_text
from auditkeep.detect.sigma import RAW_FORMATS, load_sigma
from auditkeep.detect.view import EventView
from tests.detect.sigma_events import ABSENT, assignments, raw_object

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "sigma"
FILES = sorted(CORPUS.rglob("*.yml")) if CORPUS.is_dir() else []
RECORD = {"action": "x.y", "actor": {"id": "a", "type": "user"}, "outcome": "success"}


def view(fmt: str | None, obj: Any) -> EventView:
    return EventView.of_raw_object(dict(RECORD), fmt, obj) if fmt else EventView(dict(RECORD))


@pytest.mark.skipif(not FILES, reason=f"the SigmaHQ sample rules are not at {CORPUS} "
                    "(they stay outside the repository)")
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_public_rule_loads_and_matches_what_it_describes(path: Path) -> None:
    text = path.read_text()
    try:
        (rule,) = load_sigma(text, path.name)
    except RuleError as exc:
        pytest.skip(f"refused: {exc.reason}")
    (parsed,) = SigmaCollection.from_yaml(text).rules
    fmt = RAW_FORMATS[(parsed.logsource.product, parsed.logsource.service)]
    assign = assignments(parsed)
    good = raw_object(assign)
    assert rule.matcher(view(fmt, good)), (good, path.name)
    assert not rule.matcher(view(None, good)), "matched an event with no raw object"
    other = next(f for f in RAW_FORMATS.values() if f != fmt)
    assert not rule.matcher(view(other, good)), "matched another source's raw object"
    if rule.discriminator is not None:
        found = view(fmt, good).values(rule.discriminator.path)
        assert any(str(v).casefold() in rule.discriminator.values for v in found)
    # near misses: without any one required field, the rule must not match
    required = [p for p, v in assign.items() if v is not ABSENT]
    misses = 0
    for p in required:
        if not rule.matcher(view(fmt, raw_object({k: v for k, v in assign.items() if k != p}))):
            misses += 1
    assert misses >= 1, f"no single missing field makes {path.name} refuse the event"


def one(detection: str, logsource: str = "product: aws\n  service: cloudtrail") -> Any:
    (rule,) = load_sigma(f"title: t\nid: 00000000-0000-4000-8000-000000000001\n"
                         f"logsource:\n  {logsource}\ndetection:\n{detection}", "t.yml")
    return rule


def ct(obj: dict[str, Any]) -> EventView:
    return view("aws.cloudtrail", obj)


def test_strings_are_case_insensitive_unless_cased() -> None:
    r = one("  sel:\n    eventName: CreateUser\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "createuser"}))
    assert not r.matcher(ct({"eventName": "CreateUsers"}))
    r = one("  sel:\n    eventName|cased: CreateUser\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "CreateUser"}))
    assert not r.matcher(ct({"eventName": "createuser"}))


def test_wildcards_modifiers_and_lists() -> None:
    r = one("  sel:\n    eventName|startswith: Create\n    userAgent|contains|all:\n"
            "      - boto\n      - linux\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "CreateKey", "userAgent": "Boto3/1 Linux"}))
    assert not r.matcher(ct({"eventName": "CreateKey", "userAgent": "Boto3/1 mac"}))
    r = one("  sel:\n    eventName: 'Get?ey*'\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "GetKeyPolicy"}))
    assert not r.matcher(ct({"eventName": "GetKy"}))
    r = one("  sel:\n    resources.ARN|endswith: ':secret'\n  condition: sel\n")
    assert r.matcher(ct({"resources": [{"ARN": "a"}, {"ARN": "b:secret"}]}))
    r = one("  sel:\n    eventName: 'a\\*b'\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "a*b"})) and not r.matcher(ct({"eventName": "axb"}))


def test_regex_cidr_numbers_exists_null_fieldref() -> None:
    r = one("  sel:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: sel\n")
    assert r.matcher(ct({"sourceIPAddress": "10.1.2.3"}))
    assert not r.matcher(ct({"sourceIPAddress": "192.168.0.1"}))
    assert not r.matcher(ct({"sourceIPAddress": "AWS Internal"}))
    r = one("  sel:\n    userIdentity.arn|re: '^arn:aws:sts::\\d+:assumed-role/'\n"
            "  condition: sel\n")
    assert r.matcher(ct({"userIdentity": {"arn": "arn:aws:sts::123:assumed-role/x"}}))
    assert not r.matcher(ct({"userIdentity": {"arn": "arn:aws:iam::123:user/x"}}))
    r = one("  sel:\n    responseElements.count|gte: 10\n  condition: sel\n")
    assert r.matcher(ct({"responseElements": {"count": 12}}))
    assert r.matcher(ct({"responseElements": {"count": "10"}}))
    assert not r.matcher(ct({"responseElements": {"count": 9}}))
    r = one("  sel:\n    errorCode|exists: false\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "x"})) and not r.matcher(ct({"errorCode": "Denied"}))
    r = one("  sel:\n    errorCode: null\n  condition: sel\n")
    assert r.matcher(ct({"eventName": "x"})) and not r.matcher(ct({"errorCode": "Denied"}))
    r = one("  sel:\n    userIdentity.userName|fieldref: requestParameters.userName\n"
            "  condition: sel\n")
    assert r.matcher(ct({"userIdentity": {"userName": "bob"},
                         "requestParameters": {"userName": "bob"}}))
    assert not r.matcher(ct({"userIdentity": {"userName": "bob"},
                             "requestParameters": {"userName": "eve"}}))


def test_refusals_name_the_reason() -> None:
    with pytest.raises(RuleError, match="logsource product=windows"):
        one("  sel:\n    Image: x\n  condition: sel\n", "product: windows")
    with pytest.raises(RuleError, match="keyword"):
        one("  keywords:\n    - evil\n  condition: keywords\n")
    with pytest.raises(RuleError, match="Sigma"):
        one("  sel:\n    a|nosuchmodifier: x\n  condition: sel\n")
    with pytest.raises(RuleError, match="modifier 'TimestampHour'"):
        one("  sel:\n    eventTime|hour: 3\n  condition: sel\n")


def test_number_like_values_are_not_used_to_index_a_rule() -> None:
    r = one("  sel:\n    errorCode: '403'\n  condition: sel\n")
    assert r.discriminator is None and r.matcher(ct({"errorCode": 403}))
    r = one("  sel:\n    eventName: GetObject\n  condition: sel\n")
    assert r.discriminator is not None


def test_our_own_events_through_the_auditkeep_logsource() -> None:
    r = one("  sel:\n    action|startswith: orders.\n    actor.type: service\n"
            "  condition: sel\n", "product: auditkeep")
    assert r.matcher(EventView({"action": "orders.delete",
                                "actor": {"id": "j", "type": "service"}}))
    assert not r.matcher(EventView({"action": "orders.delete",
                                    "actor": {"id": "j", "type": "user"}}))


CORRELATIONS = """
title: failed login
id: 00000000-0000-4000-8000-00000000000a
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin, errorMessage|contains: Failed}
  condition: sel
---
title: ok login
id: 00000000-0000-4000-8000-00000000000b
name: ok_login
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin, responseElements.ConsoleLogin: Success}
  condition: sel
---
title: brute force
id: 00000000-0000-4000-8000-00000000000c
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [sourceIPAddress]
  timespan: 5m
  condition: {gte: 5}
level: high
---
title: many users from one ip
id: 00000000-0000-4000-8000-00000000000d
correlation:
  type: value_count
  rules: [failed_login]
  group-by: [sourceIPAddress]
  timespan: 1h
  condition: {field: userIdentity.userName, gt: 3}
---
title: failed then ok
id: 00000000-0000-4000-8000-00000000000e
correlation:
  type: temporal_ordered
  rules: [failed_login, ok_login]
  group-by: [sourceIPAddress]
  timespan: 10m
"""


def test_correlations_load_into_windowed_rules() -> None:
    rules = {r.title: r for r in load_text(CORRELATIONS, "c.yml").rules}
    bf = rules["brute force"]
    assert bf.kind == "threshold" and bf.window == 300 and bf.level == "high"
    assert bf.group_by == ("raw.sourceIPAddress",) and bf.condition is not None
    assert (bf.condition.op, bf.condition.n) == ("gte", 5)
    vc = rules["many users from one ip"]
    assert vc.kind == "value_count" and vc.value_field == ("raw.userIdentity.userName",)
    to = rules["failed then ok"]
    assert to.kind == "temporal_ordered" and [m.title for m in to.members] == \
        ["failed login", "ok login"]
    assert not rules["failed login"].generate  # a correlation's base rule

