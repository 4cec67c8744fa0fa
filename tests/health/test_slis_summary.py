"""Slis.latency_summary (health/slis.py): the quantiles the operations dashboard shows,
estimated from the /metrics buckets the way Prometheus' histogram_quantile does."""

from __future__ import annotations

import pytest

from auditkeep.health.slis import Slis


class TestLatencySummary:
    def test_quantiles_interpolate_within_their_bucket_over_every_tenant_and_source(
            self) -> None:
        s = Slis()
        s.observe_delivery("committed", "acme", "api", 0.3, count=10)  # bucket (0, 0.5]
        s.observe_delivery("committed", "other", "k8s", 1.5, count=10)  # bucket (1, 2]
        got = s.latency_summary()["delivery"]["committed"]
        assert got["count"] == 20
        assert got["p50"] == pytest.approx(0.5)  # rank 10: the top of the first bucket
        assert got["p99"] == pytest.approx(1.98)  # rank 19.8: 1 + 9.8/10 of (1, 2]

    def test_a_quantile_above_every_bound_is_the_largest_bound(self) -> None:
        s = Slis()
        s.query("search", 0.02)
        s.query("search", 100.0)
        s.query("search", 100.0)
        got = s.latency_summary(qs=(0.99,))["query"]["search"]
        assert got == {"count": 3, "p99": 10.0}

    def test_nothing_observed_is_nothing_listed(self) -> None:
        assert Slis().latency_summary() == {"delivery": {}, "query": {}}
