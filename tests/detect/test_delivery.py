"""Delivery against real receivers on loopback ports: a webhook that fails then accepts,
one that always fails (dead letters, then retry), a permanent 400, Slack and PagerDuty
payloads, and email to a real SMTP server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller

from auditkeep.detect.alerting import AlertingConfig, parse_alerting
from auditkeep.detect.alerts import Alert
from auditkeep.detect.delivery import Dispatcher, backoff, iso, plan_deliveries
from auditkeep.detect.sinks import verify_signature
from auditkeep.storage.base import DetectCommit
from auditkeep.storage.memory import MemoryBackend
from tests.receivers import Receiver

SECRET = "s3cret"
T0 = 1_796_637_600.0  # 2026-12-07T10:00:00Z


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def make_alert(level: str = "high") -> Alert:
    stamp = iso(T0)
    return Alert("0b7c2a4e-0000-8000-8000-000000000001", "default", "deletes",
                 "Order deleted", level, 'deletes|{"actor.id":"alice"}', stamp, stamp,
                 stamp, stamp, count=2, tags=["destruction"], group={"actor.id": "alice"},
                 severity="error")


def setup(text: str, alert: Alert | None = None
          ) -> tuple[MemoryBackend, AlertingConfig, Dispatcher, Clock, Alert]:
    store = MemoryBackend()
    cfg = parse_alerting(text, "alerting.yaml")
    a = alert or make_alert()
    a.routes = cfg.route(a)
    store.detect_commit(DetectCommit(alerts=[a.record()],
                                     deliveries=plan_deliveries(a, cfg, iso(T0))))
    clock = Clock()
    return store, cfg, Dispatcher(store, lambda: cfg, clock=clock, jitter=lambda: 1.0), clock, a


def hook_config(url: str, attempts: int = 5) -> str:
    return f"""
sinks:
  hook: {{type: webhook, url: "{url}", secret: {SECRET}, headers: {{X-Team: secops}}}}
routes:
  - {{match: {{levels: [high]}}, sinks: [hook]}}
retry: {{attempts: {attempts}, backoff: 2s, max_backoff: 10m}}
"""


class TestWebhook:
    def test_retries_with_backoff_then_delivers_signed(self, receivers: list[Receiver]
                                                       ) -> None:
        rx = Receiver([503, 503])
        receivers.append(rx)
        store, _, d, clock, a = setup(hook_config(rx.url))
        assert d.run_once() == 1
        (p,) = store.deliveries("default")
        assert p.status == "pending" and p.attempts == 1 and "HTTP 503" in (p.last_error or "")
        assert p.next_attempt == iso(T0 + 2)
        assert d.run_once() == 0  # not due yet
        clock.t = T0 + 2
        assert d.run_once() == 1
        (p,) = store.deliveries("default")
        assert p.next_attempt == iso(T0 + 2 + 4)  # doubled
        clock.t = T0 + 6
        assert d.run_once() == 1
        (p,) = store.deliveries("default")
        assert p.status == "delivered" and p.attempts == 3 and p.last_error is None
        assert len(rx.posts) == 3
        headers, body = rx.posts[-1]
        assert headers["x-auditkeep-delivery"] == p.id and headers["x-team"] == "secops"
        assert headers["x-auditkeep-timestamp"] == str(int(T0 + 6))
        stamp, sig = headers["x-auditkeep-timestamp"], headers["x-auditkeep-signature"]
        assert sig.startswith("sha256=")
        assert verify_signature(SECRET, stamp, body, sig, now=T0 + 6)
        assert not verify_signature(SECRET, stamp, body.replace(b"alice", b"mallory"), sig,
                                    now=T0 + 6)
        assert not verify_signature("wrong", stamp, body, sig, now=T0 + 6)
        assert not verify_signature(SECRET, stamp, body, sig, now=T0 + 6 + 301)  # replayed
        got = orjson.loads(body)
        assert got["alert"]["id"] == a.id and got["sent"] == iso(T0 + 6)

    def test_always_failing_ends_dead_and_retry_revives_it(self, receivers: list[Receiver]
                                                           ) -> None:
        rx = Receiver([500] * 3)
        receivers.append(rx)
        store, _, d, clock, _ = setup(hook_config(rx.url, attempts=3))
        for _ in range(3):
            d.run_once()
            clock.t += 3600
        (dead,) = store.deliveries("default", status="dead")
        assert dead.attempts == 3 and "HTTP 500" in (dead.last_error or "")
        assert d.run_once() == 0
        revived = d.retry("default", dead.id)
        assert revived is not None and revived.status == "pending"
        assert d.retry("default", dead.id) is None  # no longer dead
        assert d.retry("other-tenant", dead.id) is None
        assert d.run_once() == 1  # the receiver has recovered
        assert store.deliveries("default", status="delivered")[0].id == dead.id

    def test_a_400_is_permanent(self, receivers: list[Receiver]) -> None:
        rx = Receiver([400])
        receivers.append(rx)
        store, _, d, _, _ = setup(hook_config(rx.url))
        d.run_once()
        (dead,) = store.deliveries("default", status="dead")
        assert dead.attempts == 1 and "HTTP 400" in (dead.last_error or "")

    def test_a_sink_no_longer_configured_is_dead(self, receivers: list[Receiver]) -> None:
        rx = Receiver([])
        receivers.append(rx)
        store, _, _, clock, _ = setup(hook_config(rx.url))
        d = Dispatcher(store, AlertingConfig, clock=clock)
        d.run_once()
        (dead,) = store.deliveries("default", status="dead")
        assert "no longer configured" in (dead.last_error or "") and rx.posts == []


class TestPlanning:
    def test_ids_are_deterministic_and_suppression_queues_nothing(self) -> None:
        cfg = parse_alerting("""
sinks: {a: {type: slack, url: "https://x"}, b: {type: slack, url: "https://y"}}
routes: [{sinks: [a, b]}]
suppress: [{name: deploy, from: 2026-12-07T10:00:00Z, until: 2026-12-07T11:00:00Z}]
""", "a.yaml")
        a = make_alert()
        later = T0 + 7200
        first = plan_deliveries(a, cfg, later)
        assert [x.sink for x in first] == ["a", "b"]
        assert [x.id for x in first] == [x.id for x in plan_deliveries(a, cfg, later)]
        assert len({x.id for x in first}) == 2
        assert plan_deliveries(a, cfg, T0 + 60) == []

    def test_backoff_is_capped_and_jittered(self) -> None:
        policy = parse_alerting("retry: {backoff: 2s, max_backoff: 10s}", "a").retry
        assert [backoff(policy, n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
        assert backoff(policy, 1, 0.0) == 1.0


class TestPayloads:
    def test_slack_and_pagerduty_shapes(self, receivers: list[Receiver]) -> None:
        rx = Receiver([])
        receivers.append(rx)
        store, _, d, _, a = setup(f"""
ui_url: https://audit.example.com/
sinks:
  slack: {{type: slack, url: "{rx.url}"}}
  pager: {{type: pagerduty, routing_key: RK, url: "{rx.url}"}}
routes: [{{match: {{levels: [high]}}, sinks: [slack, pager]}}]
""")
        assert d.run_once() == 2
        assert {x.status for x in store.deliveries("default")} == {"delivered"}
        bodies = [orjson.loads(b) for _, b in rx.posts]
        slack = next(b for b in bodies if "blocks" in b)
        assert slack["text"] == "[high] Order deleted"
        flat = orjson.dumps(slack["blocks"]).decode()
        assert "deletes" in flat and "*Count*\\n2" in flat
        assert f"https://audit.example.com/alerts/{a.id}?tenant=default" in flat
        pd = next(b for b in bodies if "routing_key" in b)
        assert pd["routing_key"] == "RK" and pd["event_action"] == "trigger"
        assert pd["dedup_key"] == a.dedup_key
        assert set(pd["payload"]) == {"summary", "source", "severity", "timestamp",
                                      "component", "group", "class", "custom_details"}
        assert pd["payload"]["severity"] == "error" and pd["payload"]["component"] == "deletes"
        assert pd["links"][0]["href"].startswith("https://audit.example.com/alerts/")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


class TestSmtp:
    def test_email_reaches_a_real_smtp_server(self) -> None:
        inbox = Inbox()
        with socket.socket() as probe:  # the Controller's ready check cannot use port 0
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ctl = Controller(inbox, hostname="127.0.0.1", port=port)
        ctl.start()
        try:
            store, _, d, _, _ = setup(f"""
sinks:
  email: {{type: smtp, host: 127.0.0.1, port: {port}, starttls: false,
           from: ak@example.com, to: [secops@example.com]}}
routes: [{{sinks: [email]}}]
""")
            assert d.run_once() == 1
            deadline = time.monotonic() + 5
            while not inbox.messages and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            ctl.stop()
        assert store.deliveries("default")[0].status == "delivered"
        (env,) = inbox.messages
        text = env.content.decode()
        assert env.rcpt_tos == ["secops@example.com"] and env.mail_from == "ak@example.com"
        assert "Subject: [auditkeep] high Order deleted" in text
        assert "Rule:    deletes" in text and "actor.id = alice" in text
