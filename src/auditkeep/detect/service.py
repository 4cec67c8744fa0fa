"""Detection in a running server: the rules directory, the engine, the alert records
in the tenants' logs, and delivery to sinks — each a thread that can lag, never lose.

- The engine stores alerts (detect/engine.py).
- The recorder appends each stored alert to its tenant's log as an event of category
  `policy` (action `auditkeep.alert.fired`) whose id is the alert's id, so a record
  written twice after a crash is answered as a duplicate, and marks the alert with the
  record's seq. It also observes each alert's latency (event received -> alert stored)
  for `auditkeep_alert_latency_seconds`.
- The dispatcher sends queued deliveries (detect/delivery.py).
"""

from __future__ import annotations

import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from prometheus_client import Histogram

from auditkeep.background import BackgroundLoop
from auditkeep.detect.alerting import AlertingConfig, parse_alerting
from auditkeep.detect.alerts import ALERT_ACTION, ENGINE_ACTOR, Alert
from auditkeep.detect.delivery import Dispatcher
from auditkeep.detect.engine import LATENCY_BUCKETS, Engine
from auditkeep.detect.ruleset import RuleSource
from auditkeep.log.service import LogService
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.storage.base import Backend

log = logging.getLogger(__name__)

_SEVERITY = {"informational": "info", "low": "notice", "medium": "warning",
             "high": "critical", "critical": "critical"}


def install_default_rules(directory: Path) -> bool:
    """Create the rules directory with the shipped rule set, the first time only."""
    if directory.exists():
        return False
    directory.mkdir(parents=True, mode=0o700)
    shipped = resources.files("auditkeep.detect") / "default_rules"
    for item in shipped.iterdir():
        if item.name.endswith((".yml", ".yaml")):
            with resources.as_file(item) as src:
                shutil.copyfile(src, directory / item.name)
    return True


class AlertRecorder(BackgroundLoop):
    def __init__(self, store: Backend, logs: LogService, latency: Histogram | None,
                 *, idle_wait: float = 0.5) -> None:
        super().__init__("alert-recorder", idle_wait)
        self._store = store
        self._logs = logs
        self._latency = latency
        self.recorded = 0

    def step(self) -> bool:
        return self.run_once()

    def run_once(self) -> bool:
        pending = [Alert.of(rec) for rec in self._store.unlogged_alerts(500)]
        by_tenant: dict[str, list[Alert]] = {}
        for alert in pending:
            by_tenant.setdefault(alert.tenant, []).append(alert)
        for tenant, alerts in by_tenant.items():  # one append (one commit) a tenant
            pendings = prepare([alert_event(a) for a in alerts], tenant=tenant,
                               submitter=ENGINE_ACTOR, may_set_tenant=True)
            result = self._logs.append(tenant, pendings).result(timeout=60)
            for alert, receipt in zip(alerts, result.receipts, strict=True):
                self._store.set_alert_logged(alert.id, receipt.seq)
                self.recorded += 1
                latency = alert.details.get("latency_s")
                if self._latency is not None and isinstance(latency, int | float):
                    self._latency.observe(latency)
        return bool(pending)


def alert_event(alert: Alert) -> Event:
    """The alert as an event of its tenant's log: who (the engine) did what (fired rule
    R) to what (the alert), linking the events that matched by log, seq and id."""
    return Event(
        id=alert.id,
        action=ALERT_ACTION,
        actor=Actor(id=ENGINE_ACTOR, type="service"),
        outcome="success",
        category="policy",
        severity=_SEVERITY.get(alert.level, "warning"),  # type: ignore[arg-type]
        resource=Resource(type="alert", id=alert.id, name=alert.title[:200] or alert.rule),
        reason=f"rule {alert.rule} ({alert.level})",
        metadata={"rule": alert.rule, "level": alert.level, "count": alert.count,
                  "group": alert.group, "events": alert.events, "origin": alert.origin,
                  "dedup_key": alert.dedup_key, "first_time": alert.first_time,
                  "last_time": alert.last_time, "details": alert.details},
    )


class Detection:
    """What `serve` runs for detection; `node.options["detection"]` in the app."""

    def __init__(self, store: Backend, logs: LogService, rules_dir: Path, *,
                 registry: Any = None) -> None:
        self.rules = RuleSource(rules_dir)
        self.latency = Histogram("auditkeep_alert_latency_seconds",
                                 "Event received to alert stored", buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.engine = Engine(store, self.rules)
        self.recorder = AlertRecorder(store, logs, self.latency)
        self.dispatcher = Dispatcher(store, self.alerting)
        self.engine.on_alerts(self.recorder.notify)
        self.engine.on_alerts(self.dispatcher.notify)
        logs.on_commit(self.engine.notify)

    def alerting(self) -> AlertingConfig:
        text = self.rules.alerting_text
        return parse_alerting(text, "alerting.yaml") if text else AlertingConfig()

    def start(self) -> None:
        self.engine.forget()  # a restart (a background lease regained) reads the store anew
        self.engine.start()
        self.recorder.start()
        self.dispatcher.start()

    def stop(self) -> None:
        self.engine.stop()
        self.recorder.stop()
        self.dispatcher.stop()
