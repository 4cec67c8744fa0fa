"""The SLO evaluator: samples each SLO's good/total counters on a schedule, computes
its burn rates over the windows of health/burn.py, and raises a system alert
(`auditkeep.slo.<name>.<window>`) while both windows of a pair burn too fast.

`n.options["slo"]` in a running server (started with the other background jobs);
`GET /v1/slos` and `/metrics` read `status()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from auditkeep.background import BackgroundLoop
from auditkeep.health.burn import BURN_ALERTS, BurnAlert, CounterRing, budget_remaining, burn_rate
from auditkeep.pipeline.config_ops import SloConfig

if TYPE_CHECKING:
    from auditkeep.datadir import Node

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
PERIOD_SAMPLES = 720  # the period's ring (budget remaining): one sample per period/720

Counter = Callable[[], tuple[float, float]]  # cumulative (good, total)
Raise = Callable[..., Any]  # raise_system_alert's keywords, without the node


@dataclass(slots=True)
class SloStatus:
    name: str
    sli: str
    objective: float
    within: float | None
    burn: dict[str, float | None]  # window ("5m", "1h", ...) -> burn rate
    budget_remaining: float | None
    firing: list[str]  # burn alerts whose both windows exceed their factor

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def window_name(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class _Tracked:
    __slots__ = ("config", "counter", "period", "ring")

    def __init__(self, config: SloConfig, counter: Counter, span: float,
                 interval: float) -> None:
        self.config = config
        self.counter = counter
        self.ring = CounterRing(span, interval)
        self.period = CounterRing(config.period, max(config.period / PERIOD_SAMPLES, interval))


class SloEvaluator(BackgroundLoop, Collector):
    """Every `interval` s: sample, compute, alert. `counters` maps each SLO's name to
    its counter; `raise_alert` takes raise_system_alert's keywords. As a Prometheus
    collector it exports the last pass's figures (labels: SLO names, window names)."""

    def __init__(self, slos: tuple[SloConfig, ...], counters: Mapping[str, Counter],
                 raise_alert: Raise, *, interval: float = DEFAULT_INTERVAL,
                 alerts: tuple[BurnAlert, ...] = BURN_ALERTS,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("slo", interval)
        self.interval = interval
        self._alerts = alerts
        self._raise = raise_alert
        self._clock = clock
        self._lock = threading.Lock()
        span = max(a.long for a in alerts)
        self._slos = [_Tracked(s, counters[s.name], span, interval) for s in slos]
        self._status: list[SloStatus] = []
        self.raised = 0

    def step(self) -> bool:
        self.run_once()
        return False

    def status(self) -> list[SloStatus]:
        with self._lock:
            return list(self._status)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objective = GaugeMetricFamily("auditkeep_slo_objective_ratio",
                                      "The SLO's objective (0.999 for 99.9%)", labels=["slo"])
        burn = GaugeMetricFamily("auditkeep_slo_burn_rate",
                                 "Error budget burn rate over the window (1: spent "
                                 "exactly over the period)", labels=["slo", "window"])
        budget = GaugeMetricFamily("auditkeep_slo_error_budget_remaining_ratio",
                                   "Share of the period's error budget left (1: all, "
                                   "0 or below: spent)", labels=["slo"])
        firing = GaugeMetricFamily("auditkeep_slo_burn_alert_firing",
                                   "1 while both windows of the burn alert exceed its "
                                   "factor", labels=["slo", "alert"])
        for st in self.status():
            objective.add_metric([st.name], st.objective / 100.0)
            for w, v in st.burn.items():
                if v is not None:
                    burn.add_metric([st.name, w], v)
            if st.budget_remaining is not None:
                budget.add_metric([st.name], st.budget_remaining)
            for a in self._alerts:
                firing.add_metric([st.name, a.name], 1.0 if a.name in st.firing else 0.0)
        yield from (objective, burn, budget, firing)

    def run_once(self, now: float | None = None) -> list[SloStatus]:
        t = self._clock() if now is None else now
        out: list[SloStatus] = []
        for s in self._slos:
            try:
                good, total = s.counter()
            except NoSlis:  # listed, with no figures yet
                out.append(self._evaluate(s))
                continue
            except Exception:  # one broken counter must not stop the other SLOs
                log.exception("SLO %s: reading its counter", s.config.name)
                out.append(self._evaluate(s))
                continue
            s.ring.add(t, good, total)
            s.period.add(t, good, total)
            out.append(self._evaluate(s))
        with self._lock:
            self._status = out
        return out

    def _evaluate(self, s: _Tracked) -> SloStatus:
        c = s.config
        burn: dict[str, float | None] = {}
        for w in sorted({x for a in self._alerts for x in (a.short, a.long)}):
            burn[window_name(w)] = burn_rate(s.ring.error_ratio(w), c.objective)
        budget = budget_remaining(s.period, c.objective, c.period)
        firing = []
        for a in self._alerts:
            long_, short = burn[window_name(a.long)], burn[window_name(a.short)]
            if long_ is None or short is None or long_ <= a.factor or short <= a.factor:
                continue
            firing.append(a.name)
            details = {"slo": c.name, "sli": c.sli, "objective": c.objective,
                       "within_s": c.within, "action": a.action, "factor": a.factor,
                       "burn_rate": {window_name(a.long): round(long_, 4),
                                     window_name(a.short): round(short, 4)},
                       "budget_remaining": None if budget is None else round(budget, 6)}
            try:
                self._raise(rule=f"auditkeep.slo.{c.name}.{a.name}", level=a.level,
                            title=f"SLO {c.name} burning its error budget {long_:.1f}x "
                                  f"over {window_name(a.long)} ({a.action})",
                            details=details, dedup=c.name, tags=["auditkeep.slo"])
                self.raised += 1
            except Exception:
                log.exception("SLO %s: raising its %s alert", c.name, a.name)
        return SloStatus(c.name, c.sli, c.objective, c.within, burn, budget, firing)


def slo_job(n: Node, slos: tuple[SloConfig, ...], *, interval: float = DEFAULT_INTERVAL
            ) -> SloEvaluator | None:
    """The evaluator over the node's SLIs (`n.options["slis"]`, health/slis.py, looked
    up at each sample: the app sets them up after the background jobs start); None
    without SLOs."""
    from auditkeep.health.alerts import raise_system_alert

    if not slos:
        return None

    def counter(c: SloConfig) -> Counter:
        def read() -> tuple[float, float]:
            slis = n.options.get("slis")
            if slis is None:
                raise NoSlis(c.sli)
            good, total = slis.good_total(c.sli, c.within)
            return float(good), float(total)
        return read

    def raise_alert(**kw: Any) -> Any:
        return raise_system_alert(n, **kw)

    return SloEvaluator(slos, {s.name: counter(s) for s in slos}, raise_alert,
                        interval=interval)


class NoSlis(LookupError):
    """The node has no SLIs yet (before the app is built): the sample is skipped."""


__all__ = ["DEFAULT_INTERVAL", "SloEvaluator", "SloStatus", "slo_job", "window_name"]
