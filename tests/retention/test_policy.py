"""Retention policies: periods, the configuration file's `retention:` section (every
problem with its path and line) and the body of `PUT /v1/retention`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditkeep.errors import ValidationError
from auditkeep.pipeline.config import check_config, parse_config
from auditkeep.retention.policy import (
    CATEGORIES,
    SOURCE_API,
    SOURCE_BUILTIN,
    Keep,
    Layer,
    effective,
    layer_from_body,
    parse_days,
)


class TestPeriods:
    @pytest.mark.parametrize(("text", "days"), [
        (400, 400), ("400", 400), ("400d", 400), ("12w", 84), ("3y", 1095), (" 2D ", 2),
        (None, None), ("forever", None), ("never", None)])
    def test_periods_are_days(self, text: object, days: int | None) -> None:
        assert parse_days(text) == (Keep(days), None)

    @pytest.mark.parametrize("text", [0, -1, "0d", "1h", "3 years", True, 1.5, [], "99999y"])
    def test_other_periods_are_refused_saying_what_was_expected(self, text: object) -> None:
        keep, why = parse_days(text)
        assert keep is None and why and ("days" in why)


class TestConfig:
    def test_a_full_section(self) -> None:
        cfg = parse_config("""
retention:
  schedule: 30m
  default: 10y
  categories: {auth: 400d, data_access: 90d}
  require_archive: false
  tenants:
    acme: {categories: {data_access: 30d}, default: forever}
""")
        r = cfg.retention
        assert r.schedule == 1800.0
        assert r.defaults == Layer(Keep(3650), {"auth": Keep(400), "data_access": Keep(90)},
                                   False)
        assert r.tenants["acme"] == Layer(Keep(None), {"data_access": Keep(30)})
        p = effective("acme", r.layers("acme"), archive=True)
        assert p.keep("data_access") == Keep(30) and p.keep("auth") == Keep(400)
        assert p.keep("system") == Keep(None)  # the tenant's default beats the file's
        assert p.require_archive is False

    def test_defaults_without_a_section(self) -> None:
        r = parse_config("{}").retention
        assert r.schedule == 3600.0 and r.tenants == {}
        p = effective("x", r.layers("x"), archive=False)
        assert not p.purges_anything() and p.default.source == SOURCE_BUILTIN
        assert parse_config("retention: {schedule: off}").retention.schedule is None

    def test_every_problem_is_reported_with_its_path_and_line(self) -> None:
        problems = check_config("""retention:
  schedule: 5s
  default: 0
  categories: {auth: 400x, sales: 3d}
  require_archive: maybe
  color: blue
  tenants:
    BAD: {}
    acme: {categories: [1], when: now}
""", "a.yaml")
        found = {(p.path, p.line) for p in problems}
        assert found == {
            ("retention.schedule", 2), ("retention.default", 3),
            ("retention.categories.auth", 4), ("retention.categories.sales", 4),
            ("retention.require_archive", 5), ("retention.color", 6),
            ("retention.tenants.BAD", 8), ("retention.tenants.acme.categories", 9),
            ("retention.tenants.acme.when", 9)}
        assert any("unknown category 'sales'" in p.message for p in problems)


class TestBody:
    def test_a_good_body(self) -> None:
        layer = layer_from_body(b'{"default": "3y", "categories": {"auth": 400, '
                                b'"admin": null}, "require_archive": true}')
        assert layer == Layer(Keep(1095), {"auth": Keep(400), "admin": Keep(None)}, True)
        p = effective("t", [(layer, SOURCE_API)], archive=False)
        assert p.require_archive is False  # nothing to wait for without an archive
        assert set(p.categories) == set(CATEGORIES)

    def test_bad_bodies_name_each_field(self) -> None:
        with pytest.raises(ValidationError) as e:
            layer_from_body(b'{"categories": {"auth": "x", "a/b": 1}, "default": true}')
        assert [p.pointer for p in e.value.problems] == [
            "/body/default", "/body/categories/auth", "/body/categories/a~1b"]
        with pytest.raises(ValidationError) as e:
            layer_from_body(b'{"categories": 3}')
        assert [p.pointer for p in e.value.problems] == ["/body/categories"]

    def test_cutoffs_are_whole_utc_days_on_received(self) -> None:
        p = effective("t", [(Layer(categories={"auth": Keep(2)}), SOURCE_API)], archive=False)
        now = datetime(2026, 5, 10, 17, 30, tzinfo=UTC)
        assert p.cutoffs(now) == {"auth": "2026-05-08T00:00:00.000000Z"}
