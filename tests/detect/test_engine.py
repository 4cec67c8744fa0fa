"""The engine on a real data directory: durable cursors, windows across restarts, noise
control, and the alert records appended to the tenant's log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.detect.alerts import ALERT_ACTION, Alert
from auditkeep.detect.engine import Engine
from auditkeep.detect.ruleset import RuleSource
from auditkeep.detect.service import AlertRecorder, install_default_rules
from auditkeep.errors import StorageError
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events

RULES = """
rules:
  - id: deletes
    title: Order deleted
    level: high
    tags: [destruction]
    query: 'action:orders.delete'
    group_by: [actor.id]
  - id: exports
    kind: threshold
    query: 'action:orders.export'
    group_by: [actor.id]
    window: 10m
    count: ">= 20"
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = open_node(DataDir(tmp_path / "data"), with_index=False)
    yield n
    n.close()


def rules_dir(tmp_path: Path, text: str = RULES, alerting: str | None = None) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "t.yml").write_text(text)
    if alerting is not None:
        (d / "alerting.yaml").write_text(alerting)
    return d


def emit(n: Node, events: list[dict[str, Any]], tenant: str = "default") -> None:
    decoded = decode_events(orjson.dumps(events), ndjson=False)
    pendings = prepare(decoded, tenant=tenant, submitter="test", may_set_tenant=False)
    n.logs.append(tenant, pendings).result(timeout=30)


def ev(action: str, actor: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"action": action, "actor": {"id": actor, "type": "user"}, "outcome": "success",
            **extra}


def alerts(n: Node, tenant: str = "default") -> list[Alert]:
    return [Alert.of(r) for r in n.store.alerts(tenant, limit=1000)]


def engine(n: Node, d: Path, **kw: Any) -> Engine:
    e = Engine(n.store, RuleSource(d), **kw)
    while e.run_once():
        pass
    return e


def test_a_match_fires_once_and_a_restart_does_not_fire_it_again(node: Node, tmp_path: Path
                                                                  ) -> None:
    d = rules_dir(tmp_path, alerting="group_window: 0s\n")
    emit(node, [ev("orders.delete"), ev("orders.read"), ev("orders.delete", "bob")])
    engine(node, d)
    got = alerts(node)
    assert sorted(a.group["actor.id"] for a in got) == ["alice", "bob"]
    assert all(a.rule == "deletes" and a.level == "high" for a in got)
    assert {e["seq"] for a in got for e in a.events} == {0, 2}
    engine(node, d)  # a restart: same store, new engine
    assert len(alerts(node)) == 2
    emit(node, [ev("orders.delete", "carol")])
    engine(node, d)
    assert len(alerts(node)) == 3


def test_a_threshold_window_survives_a_restart(node: Node, tmp_path: Path) -> None:
    d = rules_dir(tmp_path)
    emit(node, [ev("orders.export")] * 15)
    engine(node, d)
    assert alerts(node) == []
    emit(node, [ev("orders.export")] * 5)  # 20 in the window, across the restart
    engine(node, d)
    (a,) = alerts(node)
    assert a.rule == "exports" and a.count == 20 and len(a.events) == 20


def test_a_failed_pass_is_repeated_whole_without_duplicates(node: Node, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    d = rules_dir(tmp_path, alerting="group_window: 0s\n")
    emit(node, [ev("orders.export")] * 19 + [ev("orders.delete")])
    e = Engine(node.store, RuleSource(d))
    real = node.store.detect_commit

    def broken(commit: Any) -> None:
        raise StorageError("disk full")
    monkeypatch.setattr(node.store, "detect_commit", broken)
    with pytest.raises(StorageError):
        e.run_once()
    assert alerts(node) == [] and node.store.detect_cursors() == {}
    monkeypatch.setattr(node.store, "detect_commit", real)
    emit(node, [ev("orders.export")])
    while e.run_once():
        pass
    assert sorted(a.rule for a in alerts(node)) == ["deletes", "exports"]
    assert next(a for a in alerts(node) if a.rule == "exports").count == 20


def test_matches_group_into_the_open_alert_until_it_is_acked(node: Node, tmp_path: Path
                                                            ) -> None:
    d = rules_dir(tmp_path, alerting="group_window: 1h\n")
    emit(node, [ev("orders.delete")] * 3)
    engine(node, d)
    (a,) = alerts(node)
    assert a.count == 3 and [x["seq"] for x in a.events] == [0, 1, 2]
    a.status = "acked"
    node.store.update_alert(a.record())
    emit(node, [ev("orders.delete")])
    engine(node, d)
    got = alerts(node)
    assert sorted(x.status for x in got) == ["acked", "open"]


def test_suppression_windows_store_alerts_without_delivering(node: Node, tmp_path: Path
                                                            ) -> None:
    alerting = """
sinks:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}
routes:
  - match: {levels: [high]}
    sinks: [hook]
suppress:
  - name: deploy
    from: 2000-01-01T00:00:00Z
    until: 2100-01-01T00:00:00Z
    match: {rules: [deletes]}
group_window: 0s
"""
    d = rules_dir(tmp_path, RULES.replace("count: \">= 20\"", "count: \">= 2\"") +
                  "    level: high\n", alerting)
    emit(node, [ev("orders.delete"), ev("orders.export"), ev("orders.export")])
    engine(node, d)
    by_rule = {a.rule: a for a in alerts(node)}
    assert by_rule["deletes"].suppressed_by == "deploy"
    assert by_rule["exports"].suppressed_by is None
    assert by_rule["exports"].routes == ["hook"]
    queued = node.store.deliveries("default", limit=10)
    assert [q.alert_id for q in queued] == [by_rule["exports"].id]


def test_alert_records_go_to_the_log_once_with_their_links(node: Node, tmp_path: Path
                                                          ) -> None:
    d = rules_dir(tmp_path)
    emit(node, [ev("orders.delete")])
    engine(node, d)
    recorder = AlertRecorder(node.store, node.logs, None)
    assert recorder.run_once()
    assert not recorder.run_once()
    (a,) = alerts(node)
    assert a.logged_seq == 1
    entry = orjson.loads(node.store.read_bundles(node.store.get_log("default").id, 1, 2)[0]
                         .entries[-1])
    assert entry["action"] == ALERT_ACTION and entry["category"] == "policy"
    assert entry["id"] == a.id
    assert entry["metadata"]["events"] == [{"log": "default", "seq": 0, "id": a.events[0]["id"]}]
    # the engine reads its own record and does not evaluate it
    e = engine(node, d)
    assert len(alerts(node)) == 1 and e.evaluated == 0
    # a producer sending that action is not the engine: it is evaluated
    emit(node, [ev(ALERT_ACTION)])
    e.run_once()
    assert e.evaluated == 1


def test_a_quiet_source_fires_by_the_clock(node: Node, tmp_path: Path) -> None:
    d = rules_dir(tmp_path, """
rules:
  - id: quiet
    kind: silence
    query: 'source.service:*'
    group_by: [source.service]
    period: 15m
""")
    emit(node, [ev("app.login", source={"service": "vpn"})])
    now = [__import__("time").time()]
    e = engine(node, d, clock=lambda: now[0])
    assert alerts(node) == []
    now[0] += 16 * 60
    e.run_once()
    (a,) = alerts(node)
    assert a.rule == "quiet" and a.group == {"source.service": "vpn"}
    assert a.details["period_s"] == 900
    now[0] += 16 * 60
    e.run_once()
    assert len(alerts(node)) == 1  # once, until events resume and stop again


def test_the_default_rules_are_installed_once_and_load(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    assert install_default_rules(d)
    names = sorted(p.name for p in d.iterdir())
    assert "iam.yml" in names and "pipeline.yml" in names
    (d / "iam.yml").unlink()
    assert not install_default_rules(d)  # a user's deletion stays deleted
    source = RuleSource(d)
    assert source.error is None
    assert "audit-pipeline-quiet" in {r.id for r in source.ruleset.rules}


def test_a_bad_change_keeps_the_running_rules(tmp_path: Path) -> None:
    d = rules_dir(tmp_path)
    source = RuleSource(d, check_every=0)
    assert source.error is None and len(source.ruleset.rules) == 2
    (d / "bad.yml").write_text("rules:\n  - id: x\n    query: 'action:('\n")
    assert not source.refresh(force=True)
    assert "bad.yml" in (source.error or "") and len(source.ruleset.rules) == 2
    (d / "bad.yml").unlink()
    assert source.refresh(force=True) and source.error is None


SIGMA_CORRELATION = """
title: deny
id: 00000000-0000-4000-8000-0000000000a1
name: deny
logsource: {product: auditkeep}
detection:
  sel: {outcome: denied}
  condition: sel
---
title: grant
id: 00000000-0000-4000-8000-0000000000a2
name: grant
logsource: {product: auditkeep}
detection:
  sel: {action: iam.role.grant}
  condition: sel
---
title: denied then granted
id: 00000000-0000-4000-8000-0000000000a3
correlation:
  type: temporal_ordered
  rules: [deny, grant]
  group-by: [actor.id]
  timespan: 1h
level: critical
"""


def test_a_sigma_correlation_window_survives_a_restart(node: Node, tmp_path: Path) -> None:
    d = rules_dir(tmp_path, SIGMA_CORRELATION)
    emit(node, [{**ev("iam.role.grant", "eve")}])  # grant before deny: not in order
    emit(node, [{**ev("orders.read", "eve"), "outcome": "denied"}])
    engine(node, d)
    assert alerts(node) == []
    emit(node, [ev("iam.role.grant", "eve"), ev("iam.role.grant", "bob")])
    engine(node, d)  # a new engine: the chain "deny seen" came from the store
    (a,) = alerts(node)
    assert a.title == "denied then granted" and a.level == "critical" and a.origin == "sigma"
    assert a.group == {"actor.id": "eve"} and [x["seq"] for x in a.events] == [1, 2]
