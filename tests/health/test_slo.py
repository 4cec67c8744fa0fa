"""Burn rates from hand-made counter series, multi-window alerting (both windows must
exceed), bounded sample memory, and the `slos:` configuration section."""

from __future__ import annotations

from typing import Any

import pytest

from auditkeep.health.burn import BURN_ALERTS, CounterRing, burn_rate
from auditkeep.health.slo import SloEvaluator
from auditkeep.pipeline.config import ConfigProblem
from auditkeep.pipeline.config_ops import DEFAULT_SLOS, SloConfig, parse_slos

T0 = 1_796_637_600.0
MIN = 60.0
HOUR = 3600.0


class Counters:
    """Cumulative counters that a test moves by hand."""

    def __init__(self) -> None:
        self.good = 0.0
        self.total = 0.0

    def add(self, good: float, bad: float) -> None:
        self.good += good
        self.total += good + bad

    def __call__(self) -> tuple[float, float]:
        return self.good, self.total


class TestBurn:
    def test_burn_rate_is_error_ratio_over_budget(self) -> None:
        ring = CounterRing(HOUR, MIN)
        ring.add(T0, 0, 0)
        ring.add(T0 + MIN, 990, 1000)  # 1% bad
        assert ring.error_ratio(HOUR) == pytest.approx(0.01)
        assert burn_rate(0.01, 99.9) == pytest.approx(10.0)
        assert burn_rate(None, 99.9) is None

    def test_window_starts_at_the_sample_before_it(self) -> None:
        ring = CounterRing(HOUR, MIN)
        c = Counters()
        for i in range(61):  # an hour of good events, then one bad minute
            ring.add(T0 + i * MIN, *c())
            c.add(100, 0)
        c.add(0, 100)
        ring.add(T0 + 61 * MIN, *c())
        assert ring.error_ratio(MIN) == pytest.approx(100 / 200)
        assert ring.error_ratio(5 * MIN) == pytest.approx(100 / 600)

    def test_no_events_burn_nothing(self) -> None:
        ring = CounterRing(HOUR, MIN)
        ring.add(T0, 5, 5)
        assert ring.error_ratio(HOUR) is None  # one sample: nothing to compare
        ring.add(T0 + MIN, 5, 5)
        assert ring.error_ratio(HOUR) == 0.0

    def test_memory_is_bounded_by_the_longest_window(self) -> None:
        ring = CounterRing(HOUR, MIN)
        for i in range(10_000):
            ring.add(T0 + i * MIN, i, i)
        assert len(ring) <= HOUR / MIN + 2


class TestEvaluator:
    def make(self) -> tuple[SloEvaluator, Counters, list[dict[str, Any]]]:
        raised: list[dict[str, Any]] = []
        c = Counters()
        slo = SloConfig("searchable", 99.9, "searchable", 5.0)
        ev = SloEvaluator((slo,), {"searchable": c}, lambda **kw: raised.append(kw),
                          interval=MIN, clock=lambda: T0)
        return ev, c, raised

    def test_fast_burn_pages_only_when_both_windows_exceed(self) -> None:
        ev, c, raised = self.make()
        t = T0
        for _ in range(60):  # an hour at 2% bad: burn 20 over 1 h and 5 min
            ev.run_once(t)
            c.add(980, 20)
            t += MIN
        (status,) = ev.run_once(t)
        assert status.burn["1h"] == pytest.approx(20.0)
        assert "1h" in status.firing
        page = next(r for r in raised if r["rule"] == "auditkeep.slo.searchable.1h")
        assert page["level"] == "critical" and page["dedup"] == "searchable"
        assert page["details"]["burn_rate"]["1h"] == pytest.approx(20.0)
        for _ in range(6):  # the last 5 min are clean: the long window still burns
            c.add(1000, 0)
            t += MIN
            raised.clear()
            (status,) = ev.run_once(t)
        assert status.burn["5m"] == 0.0 and status.burn["1h"] > 14.4
        assert "1h" not in status.firing
        assert not [r for r in raised if r["rule"].endswith(".1h")]

    def test_a_short_spike_alone_does_not_page(self) -> None:
        ev, c, raised = self.make()
        t = T0
        for _ in range(60):
            ev.run_once(t)
            c.add(1000, 0)
            t += MIN
        c.add(900, 100)  # one bad minute: 5 min burns ~20, 1 h ~1.7
        (status,) = ev.run_once(t)
        assert status.burn["5m"] > 14.4 and status.burn["1h"] < 14.4
        assert "1h" not in status.firing and "6h" not in status.firing
        assert not [r for r in raised if r["details"]["action"] == "page"]

    def test_ticket_when_three_days_and_six_hours_exceed_one(self) -> None:
        ev, c, raised = self.make()
        t = T0
        for _ in range(int(72 * HOUR / (30 * MIN)) + 1):  # 3 d at 0.2% bad: burn 2
            ev.run_once(t)
            c.add(998, 2)
            t += 30 * MIN
        (status,) = ev.run_once(t)
        assert status.firing == ["3d"]
        assert raised[-1]["rule"] == "auditkeep.slo.searchable.3d"
        assert raised[-1]["level"] == "medium"
        assert raised[-1]["details"]["action"] == "ticket"
        assert status.budget_remaining is not None and status.budget_remaining < 0.0

    def test_windows_are_the_workbooks(self) -> None:
        assert [(a.long, a.short, a.factor, a.level) for a in BURN_ALERTS] == [
            (HOUR, 5 * MIN, 14.4, "critical"), (6 * HOUR, 30 * MIN, 6.0, "high"),
            (72 * HOUR, 6 * HOUR, 1.0, "medium")]


def problems(value: Any) -> list[ConfigProblem]:
    from auditkeep.pipeline.config import _Check

    c = _Check()
    parse_slos(c, value)
    return c.report("auditkeep.yaml")


class TestConfig:
    def test_absent_section_gives_the_defaults(self) -> None:
        from auditkeep.pipeline.config import _Check

        assert parse_slos(_Check(), None) == DEFAULT_SLOS
        assert {s.name for s in DEFAULT_SLOS} == {"ingest", "searchable"}

    def test_an_entry_is_read(self) -> None:
        from auditkeep.pipeline.config import _Check

        c = _Check()
        got = parse_slos(c, [{"name": "searchable", "objective": 99.9, "sli": "searchable",
                              "within": "5s", "period": "30d"},
                             {"name": "ingest", "objective": 99.95, "sli": "ingest_success"}])
        assert c.problems == []
        assert got == (SloConfig("searchable", 99.9, "searchable", 5.0, 30 * 86400.0),
                       SloConfig("ingest", 99.95, "ingest_success"))

    def test_every_problem_is_named(self) -> None:
        got = {(p.path, p.message.split(":")[0].split(" (")[0]) for p in problems([
            {"name": "a", "objective": 100, "sli": "searchable"},
            {"name": "a", "objective": 99, "sli": "nope", "color": 1},
            {"objective": 99, "sli": "ingest_success", "within": "5s", "period": "1h"}])}
        paths = {p for p, _ in got}
        assert {"slos[0].objective", "slos[0].within", "slos[1].name", "slos[1].sli",
                "slos[1].color", "slos[2].name", "slos[2].within", "slos[2].period"} <= paths

    def test_in_the_file_problems_carry_their_line(self, tmp_path: Any) -> None:
        from auditkeep.errors import ConfigError
        from auditkeep.pipeline.config import load_config

        f = tmp_path / "auditkeep.yaml"
        f.write_text("slos:\n  - name: x\n    objective: 99.9\n    sli: searchable\n")
        with pytest.raises(ConfigError) as exc:
            load_config(f)
        assert "within" in str(exc.value) and ":2" in str(exc.value)


def test_an_slo_whose_counter_fails_is_listed_without_figures() -> None:
    def broken() -> tuple[float, float]:
        raise ValueError("unknown SLI")

    ev = SloEvaluator((SloConfig("x", 99.0, "query", 1.0),), {"x": broken},
                      lambda **kw: None, interval=MIN)
    (status,) = ev.run_once(T0)
    assert status.name == "x" and status.firing == []
    assert set(status.burn.values()) == {None} and status.budget_remaining is None
