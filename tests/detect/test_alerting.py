"""alerting.yaml: every problem reported with its path, routing, suppression, severity."""

from __future__ import annotations

import pytest

from auditkeep.detect.alerting import (
    AlertingConfig,
    PagerDutySinkConfig,
    WebhookSinkConfig,
    parse_alerting,
    parse_duration,
)
from auditkeep.detect.alerts import Alert
from auditkeep.errors import ConfigError

GOOD = """
sinks:
  hook: {type: webhook, url: "https://example.com/h", secret_env: AK_HOOK, timeout: 3}
  slack: {type: slack, url: "https://hooks.slack.com/services/x"}
  email: {type: smtp, host: smtp.example.com, from: ak@example.com, to: [a@example.com]}
  pager: {type: pagerduty, routing_key: abc}
routes:
  - match: {levels: [critical, high], tags: [attack.*]}
    sinks: [pager, slack]
    continue: true
  - match: {levels: [critical, high]}
    sinks: [slack, hook]
  - match: {levels: [medium, low]}
    sinks: [email]
severity: {high: critical}
group_window: 5m
suppress:
  - name: deploy
    from: 2026-12-07T10:00:00Z
    until: 2026-12-07T11:00:00Z
    match: {rules: [deploy-*]}
retry: {attempts: 3, backoff: 0.5s, max_backoff: 1m}
"""


def alert(level: str = "high", tags: list[str] | None = None, rule: str = "r") -> Alert:
    return Alert("id", "default", rule, "T", level, "k", "2026-12-07T10:30:00.000Z",
                 "2026-12-07T10:30:00.000Z", "", "", tags=tags or [])


class TestParse:
    def test_the_full_file_parses(self) -> None:
        cfg = parse_alerting(GOOD, "alerting.yaml")
        assert cfg.sinks["hook"] == WebhookSinkConfig("hook", "https://example.com/h",
                                                      None, "AK_HOOK", {}, 3.0)
        assert isinstance(cfg.sinks["pager"], PagerDutySinkConfig)
        assert cfg.sinks["pager"].url == "https://events.pagerduty.com/v2/enqueue"
        assert cfg.group_window == 300 and cfg.retry.attempts == 3
        assert cfg.retry.backoff == 0.5 and cfg.retry.max_backoff == 60

    def test_defaults_without_a_file(self) -> None:
        cfg = AlertingConfig()
        assert cfg.sinks == {} and cfg.group_window == 600
        assert parse_alerting("", "a.yaml") == cfg
        assert cfg.route(alert()) == []

    def test_every_problem_is_reported_with_its_path(self) -> None:
        text = """
sinks:
  hook: {type: webhook, url: "ftp://x", secret: a, secret_env: B}
  odd: {type: carrier-pigeon}
  pd: {type: pagerduty}
routes:
  - match: {levels: [urgent]}
    sinks: [nowhere]
severity: {high: loud}
group_window: soon
suppress:
  - {name: w, from: "2026-12-07T11:00:00Z", until: "2026-12-07T10:00:00Z"}
retry: {attempts: 0}
colour: blue
"""
        with pytest.raises(ConfigError) as info:
            parse_alerting(text, "alerting.yaml")
        msg = str(info.value)
        for where in ("sinks.hook.url", "sinks.hook.secret", "sinks.odd.type", "sinks.pd:",
                      "routes[0].match.levels[0]", "routes[0].sinks[0]", "severity.high",
                      "group_window", "suppress[0].until", "retry.attempts", "colour"):
            assert where in msg, where
        assert "no sink named 'nowhere'" in msg
        assert msg.startswith("alerting.yaml: 11 problems:")
        pointers = {p.pointer for p in info.value.problems}
        assert "/routes/0/sinks/0" in pointers and "/sinks/hook/url" in pointers
        assert "alerting.yaml:3:" in msg  # with line numbers

    def test_durations(self) -> None:
        assert [parse_duration(x) for x in ("30s", "10m", "2h", "1d", "0.2s", "250ms")] == [
            30, 600, 7200, 86400, 0.2, 0.25]
        assert parse_duration("10 minutes") is None


class TestRouting:
    cfg = parse_alerting(GOOD, "alerting.yaml")

    def test_first_match_wins_unless_continue(self) -> None:
        assert self.cfg.route(alert("high", ["attack.t1078"])) == ["pager", "slack", "hook"]
        assert self.cfg.route(alert("critical", ["other"])) == ["slack", "hook"]
        assert self.cfg.route(alert("low")) == ["email"]
        assert self.cfg.route(alert("informational")) == []

    def test_rules_and_tenants_match(self) -> None:
        cfg = parse_alerting("""
sinks: {s: {type: slack, url: "https://x"}}
routes:
  - {match: {rules: [auth-*], tenants: [acme]}, sinks: [s]}
""", "a.yaml")
        a = alert(rule="auth-brute")
        assert cfg.route(a) == []
        a.tenant = "acme"
        assert cfg.route(a) == ["s"]
        a.rule = "orders"
        assert cfg.route(a) == []

    def test_suppression_windows(self) -> None:
        a = alert(rule="deploy-rollout")
        assert self.cfg.suppressed_by(a, "2026-12-07T10:30:00Z") == "deploy"
        assert self.cfg.suppressed_by(a, "2026-12-07T11:00:00.000Z") is None
        assert self.cfg.suppressed_by(a, "2026-12-07T09:59:59Z") is None
        assert self.cfg.suppressed_by(alert(rule="other"), "2026-12-07T10:30:00Z") is None

    def test_severity_map(self) -> None:
        assert self.cfg.severity_of("high") == "critical"  # overridden
        assert self.cfg.severity_of("medium") == "warning"
        assert AlertingConfig().severity_of("high") == "error"
        assert AlertingConfig().severity_of("informational") == "info"
