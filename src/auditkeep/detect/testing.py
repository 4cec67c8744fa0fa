"""Test cases a rule file carries: events in, expected alerts out (`auditkeep rules test`).

    tests:
      - name: twenty-one exports in ten minutes fire once
        events:
          - repeat: 21                 # the same event 21 times, a second apart
            event: {action: orders.export, actor: {id: bob, type: user}, outcome: success}
          - k8s: {...}                 # a Kubernetes audit event, mapped by the k8s source
          - cloudtrail: {...}          # a CloudTrail record, mapped by the CloudTrail source
          - after: 20m                 # the clock moves on (silence rules)
        expect:
          - {rule: bulk-export, count: 1, group: {actor.id: bob}}
        # `expect: []` asserts that nothing fires

Events go through the real ingest path (validation, `prepare`, the sources' mappers),
then through the same evaluator the engine runs, with its own clock: event N is at
the test's start + N seconds unless it says `time`. Every rule of the file is in force.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from auditkeep.detect.evaluator import Evaluator, Fired
from auditkeep.detect.rules import parse_duration
from auditkeep.detect.ruleset import RuleFile, RuleSet
from auditkeep.detect.view import EventView
from auditkeep.errors import AuditkeepError
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "default"


@dataclass(slots=True)
class CaseResult:
    file: str
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)


def run_file(rf: RuleFile) -> list[CaseResult]:
    return [run_case(rf, i, case) for i, case in enumerate(rf.tests)]


def run_case(rf: RuleFile, i: int, case: Any) -> CaseResult:
    name = case.get("name", f"tests[{i}]") if isinstance(case, dict) else f"tests[{i}]"
    result = CaseResult(rf.path, str(name), False)
    if not isinstance(case, dict) or not isinstance(case.get("events"), list) or \
            not isinstance(case.get("expect"), list):
        result.problems.append("a test case needs `events` (a list) and `expect` (a list)")
        return result
    try:
        result.fired = _feed(rf, case["events"])
    except (AuditkeepError, ValueError, TypeError) as exc:
        result.problems.append(f"events: {exc}")
        return result
    result.problems = _compare(case["expect"], result.fired)
    result.ok = not result.problems
    return result


def _feed(rf: RuleFile, items: list[Any]) -> list[Fired]:
    ev = Evaluator(RuleSet([rf]))
    clock = START
    seq = 0
    fired: list[Fired] = []
    ev.watch([TENANT], clock.timestamp())
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"an event is a mapping, got {item!r}")
        if "after" in item:
            step = parse_duration(item["after"])
            if step is None:
                raise ValueError(f"after: {item['after']!r} is not a duration such as 20m")
            clock += timedelta(seconds=step)
            fired += ev.tick(clock.timestamp())
            continue
        repeat = int(item.get("repeat", 1))
        one = item.get("event", item)
        for _ in range(repeat):
            clock += timedelta(seconds=1)
            view = _view(one, clock, seq)
            seq += 1
            fired += ev.feed(view, TENANT)
            fired += ev.tick(clock.timestamp())
    return fired


def _view(item: dict[str, Any], clock: datetime, seq: int) -> EventView:
    stamp = clock.isoformat().replace("+00:00", "Z")
    fmt, raw_obj = None, None
    if "k8s" in item:
        from auditkeep.sources.k8s import K8sEventMapper

        raw_obj = item["k8s"]
        event, fmt = K8sEventMapper()(raw_obj, "/k8s"), "k8s.audit"
    elif "cloudtrail" in item:
        from auditkeep.sources.cloudtrail import map_record

        raw_obj = item["cloudtrail"]
        event, fmt = map_record(raw_obj, "/cloudtrail"), "aws.cloudtrail"
    else:
        event = {k: v for k, v in item.items() if k not in ("repeat",)}
    if event is None:
        raise ValueError(f"the {fmt} source skips this object: it makes no event")
    event.setdefault("time", stamp)
    decoded = decode_events(orjson.dumps([event]), ndjson=False)
    pending = prepare(decoded, tenant=TENANT, submitter="rules-test", may_set_tenant=False)[0]
    record = dict(pending.fields, seq=seq, received=stamp)
    if fmt is None:
        return EventView(record, log=TENANT, seq=seq)
    return EventView.of_raw_object(record, fmt, raw_obj, log=TENANT)


def _compare(expect: list[Any], fired: list[Fired]) -> list[str]:
    problems: list[str] = []
    got = Counter(f.rule.id for f in fired)
    wanted: Counter[str] = Counter()
    for i, e in enumerate(expect):
        if not isinstance(e, dict) or not isinstance(e.get("rule"), str):
            problems.append(f"expect[{i}]: needs `rule`")
            continue
        rule, count = e["rule"], int(e.get("count", 1))
        wanted[rule] += count
        group = e.get("group")
        if group is not None:
            matching = [f for f in fired if f.rule.id == rule and
                        all(f.group.get(k) == v for k, v in group.items())]
            if len(matching) != count:
                problems.append(f"rule {rule}: expected {count} alert(s) for group {group}, "
                                f"got {len(matching)} (groups fired: "
                                f"{[f.group for f in fired if f.rule.id == rule]})")
    for rule in sorted(set(got) | set(wanted)):
        if got[rule] != wanted[rule] and not any(p.startswith(f"rule {rule}:")
                                                  for p in problems):
            problems.append(f"rule {rule}: expected {wanted[rule]} alert(s), got {got[rule]}")
    return problems
