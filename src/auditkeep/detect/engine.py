"""The detection engine: a post-commit consumer that follows every log by `seq`.

Each pass reads what was committed since its cursors, feeds it to the rules
(detect/evaluator.py), turns firings into alerts (noise control: one open alert per
rule and group within the grouping window, suppression windows, routes) and makes the
cursors, changed window state, alerts and queued deliveries durable in one
`detect_commit`. A restart resumes from the stored cursors with the stored state: a
pass is either wholly stored or not at all, so nothing is missed or fired twice.

A new log is read from seq 0: a rules directory added to an existing data directory
evaluates the history once. The engine's own alert records are skipped (by action and
submitter: a producer sending that action is evaluated like any other).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson

from auditkeep.background import BackgroundLoop
from auditkeep.detect.alerting import AlertingConfig, parse_alerting
from auditkeep.detect.alerts import ALERT_ACTION, ENGINE_ACTOR, Alert, alert_id, dedup_key
from auditkeep.detect.delivery import plan_deliveries
from auditkeep.detect.evaluator import Evaluator, Fired, epoch, iso
from auditkeep.detect.ruleset import RuleSource
from auditkeep.detect.view import EventView
from auditkeep.errors import ConfigError
from auditkeep.log.service import ACCESS_SUFFIX, tenant_of
from auditkeep.storage.base import Backend, DeliveryRecord, DetectCommit

log = logging.getLogger(__name__)

BATCH = 5_000  # events per log per pass
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Engine(BackgroundLoop):
    def __init__(self, store: Backend, rules: RuleSource, *,
                 clock: Callable[[], float] = time.time, batch: int = BATCH,
                 idle_wait: float = 0.25) -> None:
        super().__init__("detect", idle_wait)
        self._store = store
        self._rules = rules
        self._clock = clock
        self._batch = batch
        self._listeners: list[Callable[[], None]] = []
        self._generation = -1
        self._evaluator: Evaluator | None = None
        self._alerting = AlertingConfig()
        self._cursors: dict[int, int] | None = None
        self.evaluated = 0
        self.alerts_created = 0
        self._new = 0
        self._none_open: set[tuple[str, str]] = set()

    # running -----------------------------------------------------------------------

    def on_alerts(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def step(self) -> bool:
        return self.run_once()

    def forget(self) -> None:
        """Drop the cached cursors and window state: the next pass reloads them from the
        store (where another process may have moved them while this one did not run)."""
        self._evaluator = None
        self._cursors = None

    def lag(self) -> dict[str, int]:
        cursors = self._cursors if self._cursors is not None else self._store.detect_cursors()
        return {i.name: i.size - cursors.get(i.id, 0) for i in self._store.list_logs()}

    def wait_caught_up(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(v <= 0 for v in self.lag().values()):
                return True
            self.notify()
            time.sleep(0.02)
        return False

    # one pass -------------------------------------------------------------------------

    def _prepare(self) -> Evaluator:
        ruleset = self._rules.current()
        if self._evaluator is None or self._rules.generation != self._generation:
            state = self._evaluator.state if self._evaluator is not None else \
                Evaluator.decode_state(self._store.detect_state())
            self._evaluator = Evaluator(ruleset, state)
            self._generation = self._rules.generation
            try:
                text = self._rules.alerting_text
                self._alerting = parse_alerting(text, "alerting.yaml") if text else \
                    AlertingConfig()
            except ConfigError:  # RuleSource checked it before swapping: not reached
                log.exception("alerting configuration")
        if self._cursors is None:
            self._cursors = self._store.detect_cursors()
        return self._evaluator

    def run_once(self) -> bool:
        """One pass over every log that is behind, then the silence clock. True if it
        read anything."""
        ev = self._prepare()
        assert self._cursors is not None
        now = self._clock()
        fired: list[Fired] = []
        advanced: dict[int, int] = {}
        tenants: list[str] = []
        try:
            for info in self._store.list_logs():
                if not info.name.endswith(ACCESS_SUFFIX):
                    tenants.append(info.name)
                start = self._cursors.get(info.id, 0)
                if start >= info.size:
                    continue
                end = min(info.size, start + self._batch)
                fired.extend(self._feed(ev, info.id, info.name, start, end))
                advanced[info.id] = end
            ev.watch(tenants, now)
            fired.extend(ev.tick(now))
            if not advanced and not fired and not ev.dirty:
                return False
            alerts, deliveries = self._alerts(fired, now)
            self._store.detect_commit(DetectCommit(
                advanced, ev.take_dirty(), [a.record() for a in alerts], deliveries))
        except BaseException:
            self._evaluator = None  # what the store holds is the truth: reload it
            self._cursors = None
            self._none_open.clear()
            raise
        self._cursors.update(advanced)
        self.alerts_created += self._new
        if alerts:
            for listener in self._listeners:
                listener()
        return bool(advanced)

    def _feed(self, ev: Evaluator, log_id: int, name: str, start: int, end: int
              ) -> list[Fired]:
        tenant = tenant_of(name)
        raws = self._store.read_raws(log_id, start, end)
        out: list[Fired] = []
        for b in self._store.read_bundles(log_id, start, end):
            for i, entry in enumerate(b.entries):
                seq = b.first_seq + i
                if not start <= seq < end or not entry:  # b"": purged by retention
                    continue
                rec = orjson.loads(entry)
                if rec.get("action") == ALERT_ACTION and rec.get("submitter") == ENGINE_ACTOR:
                    continue  # our own record (a producer cannot claim this submitter)
                self.evaluated += 1
                view = EventView(rec, log=name, seq=seq, raw=raws.get(seq))
                for f in ev.feed(view, tenant):
                    f.received = epoch(str(rec.get("received", "")))
                    out.append(f)
        return out

    def _alerts(self, fired: list[Fired], now: float) -> tuple[list[Alert], list[DeliveryRecord]]:
        """Firings -> new alerts, or updates of the open alert they group into."""
        cfg = self._alerting
        stamp = iso(now)
        self._new = 0
        touched: dict[tuple[str, str], Alert] = {}
        deliveries: list[DeliveryRecord] = []
        for f in fired:
            key = dedup_key(f.rule.id, f.group)
            open_ = touched.get((f.tenant, key))
            if open_ is None and cfg.group_window > 0 and (f.tenant, key) not in self._none_open:
                rec = self._store.open_alert(f.tenant, key)
                open_ = Alert.of(rec) if rec is not None else None
                if open_ is None:
                    # Only this engine opens alerts, so "none open" stays true until it
                    # opens one (bounded: a burst of new groups must not grow it forever).
                    if len(self._none_open) > 100_000:
                        self._none_open.clear()
                    self._none_open.add((f.tenant, key))
            if open_ is not None and open_.status == "open" and cfg.group_window > 0 and \
                    epoch(open_.created) > now - cfg.group_window:
                open_.count += max(f.count, 1)
                open_.updated = stamp
                for _t, lg, seq, eid in f.links:
                    open_.link(lg, seq, eid)
                if f.links:
                    open_.last_time = iso(max(epoch(open_.last_time), f.links[-1][0]))
                touched[(f.tenant, key)] = open_
                continue
            alert = self._new_alert(f, key, stamp, now, f.received)
            self._none_open.discard((f.tenant, key))
            self._new += 1
            touched[(f.tenant, key)] = alert
            deliveries.extend(plan_deliveries(alert, cfg, stamp))
        return list(touched.values()), deliveries

    def _new_alert(self, f: Fired, key: str, stamp: str, now: float, received: float
                   ) -> Alert:
        r = f.rule
        times = [x[0] for x in f.links] or [now]
        alert = Alert(
            id=alert_id(f.tenant, key, f.trigger), tenant=f.tenant, rule=r.id, title=r.title,
            level=r.level, dedup_key=key, created=stamp, updated=stamp,
            first_time=iso(min(times)), last_time=iso(max(times)), count=max(f.count, 1),
            tags=list(r.tags), group=f.group, details=dict(f.details), origin=r.origin)
        if f.count == 0:
            alert.count = 1
        for _t, lg, seq, eid in f.links:
            alert.link(lg, seq, eid)
        if received:
            alert.details["latency_s"] = round(max(now - received, 0.0), 4)
        cfg = self._alerting
        alert.severity = cfg.severity_of(r.level)
        alert.routes = cfg.route(alert)
        alert.suppressed_by = cfg.suppressed_by(alert, stamp)
        return alert
