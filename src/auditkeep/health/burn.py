"""Burn rates of an SLO's error budget over sliding windows, from sampled cumulative
good/total counters (the Google SRE workbook, ch. 5, multi-window multi-burn-rate).

A burn rate over a window is the window's error ratio divided by the budget
(1 - objective): 1 spends the budget exactly over the SLO period; 14.4 spends 2% of a
30-day budget in an hour. Samples are kept one per interval up to the longest window
(a bounded ring), so memory does not grow with uptime.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """Fire when both the long and the short window burn faster than `factor`."""

    name: str  # the rule's last part: auditkeep.slo.<slo>.<name>
    long: float  # seconds
    short: float
    factor: float
    level: str  # alerting.yaml routes by level: critical/high page, medium tickets
    action: str  # "page" | "ticket"


BURN_ALERTS = (
    BurnAlert("1h", HOUR, 5 * 60.0, 14.4, "critical", "page"),
    BurnAlert("6h", 6 * HOUR, 30 * 60.0, 6.0, "high", "page"),
    BurnAlert("3d", 72 * HOUR, 6 * HOUR, 1.0, "medium", "ticket"),
)


class CounterRing:
    """(time, good, total) samples of cumulative counters, at most one per `interval`,
    kept for `span` seconds (plus one older sample, the window's start)."""

    __slots__ = ("_samples", "interval", "span")

    def __init__(self, span: float, interval: float) -> None:
        self.span = span
        self.interval = interval
        self._samples: deque[tuple[float, float, float]] = deque(
            maxlen=int(span / interval) + 2)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, t: float, good: float, total: float) -> None:
        if len(self._samples) >= 2 and t - self._samples[-2][0] < self.interval:
            self._samples[-1] = (t, good, total)  # within an interval: the newest moves on
        else:
            self._samples.append((t, good, total))
        while len(self._samples) > 2 and self._samples[1][0] <= t - self.span:
            self._samples.popleft()

    def error_ratio(self, window: float) -> float | None:
        """Bad / total over the last `window` seconds (from the newest sample at or
        before its start, else the oldest); None without two samples or no events."""
        if len(self._samples) < 2:
            return None
        t, good, total = self._samples[-1]
        start = self._samples[0]
        for s in self._samples:
            if s[0] <= t - window:
                start = s
            else:
                break
        d_total = total - start[2]
        if d_total <= 0:  # no events (or a counter reset): nothing burnt
            return 0.0 if d_total == 0 else None
        d_bad = max(d_total - (good - start[1]), 0.0)
        return min(d_bad / d_total, 1.0)


def burn_rate(error_ratio: float | None, objective: float) -> float | None:
    """The error ratio as a multiple of the budget (`objective` in percent)."""
    if error_ratio is None:
        return None
    return error_ratio / (1.0 - objective / 100.0)


def budget_remaining(ring: CounterRing, objective: float, period: float) -> float | None:
    """The share of the period's error budget not yet spent (1: all, 0 or below:
    spent), over what the ring holds of the period."""
    ratio = ring.error_ratio(period)
    rate = burn_rate(ratio, objective)
    return None if rate is None else 1.0 - rate


__all__ = ["BURN_ALERTS", "BurnAlert", "CounterRing", "budget_remaining", "burn_rate"]
