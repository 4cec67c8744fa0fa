"""Alerts that auditkeep raises about itself (SLO burn, canary, self-audit), sent down
the same path as detection alerts.

`raise_system_alert` stores an `AlertRecord` (and one `DeliveryRecord` per sink its
route picks in `alerting.yaml`) in one `store.detect_commit`, exactly as the detection
engine does. So the alert is listed by `GET /v1/alerts`, is delivered by the running
dispatcher with its retries and dead letters, is held by suppression windows, and is
appended to its tenant's log by the alert recorder (action `auditkeep.alert.fired`,
submitter `auditkeep-detect`, which the engine does not evaluate again).

Noise control is the engine's: a repeat with the same rule and `dedup` within the
grouping window (`group_window`, default 10 min) folds into the open alert (its
`count` goes up and its `details` become the latest), and nothing new is delivered.

The alert model has no resolved state (only open and acked, acked by a person), so
there is no `resolve_system_alert`: while a condition holds, its alert is raised again
on every check, grouped into one open alert a grouping window, and delivered again
once per window; when the condition ends the alerts stop. An operator acks the open
alert (`POST /v1/alerts/{id}/ack`) once it is dealt with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from auditkeep.detect.alerting import AlertingConfig, to_epoch
from auditkeep.detect.alerts import Alert, alert_id, dedup_key
from auditkeep.detect.delivery import iso, plan_deliveries
from auditkeep.detect.rules import LEVELS
from auditkeep.errors import ConfigError
from auditkeep.storage.base import AlertRecord, DetectCommit

if TYPE_CHECKING:
    from auditkeep.datadir import Node

log = logging.getLogger(__name__)

SYSTEM_ORIGIN = "system"  # Alert.origin of these alerts ("native" | "sigma" for rules)
SYSTEM_TAG = "auditkeep.system"  # every system alert carries it (routes can match it)
_LOCK = "system_alert_lock"  # n.options key: one raise at a time per node


def alerting_config(n: Node) -> AlertingConfig:
    """The routes and sinks in force: those of the running detection (its rules
    directory's alerting.yaml); none (stored, not delivered) without detection."""
    detection = n.options.get("detection")
    if detection is None:
        return AlertingConfig()
    try:
        config: AlertingConfig = detection.alerting()
    except ConfigError:  # the rule source keeps the last good text: not reached
        log.exception("alerting configuration")
        return AlertingConfig()
    return config


def raise_system_alert(n: Node, *, rule: str, level: str, title: str,
                       details: dict[str, Any], tenant: str = "default",
                       dedup: str | None = None, tags: Sequence[str] = (),
                       now: float | None = None) -> AlertRecord | None:
    """Raise an alert about auditkeep itself through the detection alert path.

    `rule` is a dotted id (`auditkeep.slo.searchable.1h`); `level` one of the rule
    levels (informational, low, medium, high, critical), which alerting.yaml routes
    and maps to a severity; `dedup` separates alerts of one rule (e.g. a log name).
    Returns the new alert's record, or None when it folded into the open alert of the
    same rule and `dedup` within the grouping window (nothing new is delivered).
    Raises ValueError for a level that is not one of the levels."""
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {', '.join(LEVELS)}, got {level!r}")
    if not rule:
        raise ValueError("rule: expected a non-empty rule id")
    t = time.time() if now is None else now
    stamp = iso(t)
    group: dict[str, Any] = {"dedup": dedup} if dedup is not None else {}
    key = dedup_key(rule, group)
    config = alerting_config(n)
    lock: threading.Lock = n.options.setdefault(_LOCK, threading.Lock())
    with lock:
        open_rec = n.store.open_alert(tenant, key) if config.group_window > 0 else None
        if open_rec is not None:
            grouped = Alert.of(open_rec)
            if grouped.status == "open" and \
                    to_epoch(grouped.created) > t - config.group_window:
                grouped.count += 1
                grouped.updated = stamp
                grouped.last_time = stamp
                grouped.details = dict(details)
                n.store.detect_commit(DetectCommit(alerts=[grouped.record()]))
                return None
        alert = Alert(
            id=alert_id(tenant, key, stamp), tenant=tenant, rule=rule, title=title,
            level=level, dedup_key=key, created=stamp, updated=stamp, first_time=stamp,
            last_time=stamp, tags=[SYSTEM_TAG, *(x for x in tags if x != SYSTEM_TAG)],
            group=group, details=dict(details), origin=SYSTEM_ORIGIN)
        alert.severity = config.severity_of(level)
        alert.routes = config.route(alert)
        alert.suppressed_by = config.suppressed_by(alert, stamp)
        record = alert.record()
        n.store.detect_commit(DetectCommit(alerts=[record],
                                           deliveries=plan_deliveries(alert, config, stamp)))
    _hand_on(n)
    return record


def _hand_on(n: Node) -> None:
    """Wake the recorder and dispatcher of the running detection; without detection,
    append the alert record to the tenant's log here (nothing would otherwise)."""
    detection = n.options.get("detection")
    if detection is not None:
        detection.recorder.notify()
        detection.dispatcher.notify()
        return
    from auditkeep.detect.service import AlertRecorder

    AlertRecorder(n.store, n.logs, None).run_once()


__all__ = ["SYSTEM_ORIGIN", "SYSTEM_TAG", "alerting_config", "raise_system_alert"]
