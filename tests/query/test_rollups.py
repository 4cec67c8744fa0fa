"""Rollups agree with a full scan: totals, group-bys, distinct counts and histograms of
random queries over random events and windows, read through the rollups and by scanning
every event the query selects, are the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkeep.errors import ValidationError
from auditkeep.query import rollups
from auditkeep.query.aggregate import Aggregator
from auditkeep.query.fields import time_us
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.lang import parse

BASE = time_us("2026-11-01T00:00:00Z")
MIN = 60_000_000
HOUR = 60 * MIN
ACTIONS = ["iam.user.create", "iam.role.delete", "orders.refund", "orders.read"]


def _stamp(us: int) -> str:
    import datetime as dt

    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).isoformat(
        timespec="microseconds") + "Z"


@st.composite
def record(draw: Any, seq: int) -> dict[str, Any]:
    t = BASE + draw(st.integers(0, 5 * HOUR))  # out of log order, over five hours
    rec: dict[str, Any] = {
        "seq": seq, "id": f"id-{seq}", "time": _stamp(t),
        "actor": {"id": draw(st.sampled_from(["alice", "bob", "svc-1", "Zoë"])),
                  "type": draw(st.sampled_from(["user", "service"]))},
        "action": draw(st.sampled_from(ACTIONS)),
        "outcome": draw(st.sampled_from(["success", "failure", "denied"])),
        "category": draw(st.sampled_from(["admin", "data_change"])),
        "metadata": {"tags": draw(st.lists(st.sampled_from(["a", "b", "c", 1, 2.5]),
                                           max_size=3)),
                     "region": draw(st.sampled_from(["eu", "us", 7])),
                     "n": draw(st.integers(0, 40))},
    }
    if draw(st.booleans()):
        rec["severity"] = draw(st.sampled_from(["info", "critical"]))
    if draw(st.booleans()):
        rec["source"] = {"service": draw(st.sampled_from(["billing", "iam"]))}
    return rec


QUERIES = ["", "action:orders.refund", "action:iam.*", "action:(orders.read OR iam.user.create)",
           "outcome:failure", "outcome:(failure OR denied)", "severity:critical",
           "severity:*", "source.service:bil*", "action:i?m.*", "actor:alice",
           "actor:alice AND outcome:failure", "metadata.region:eu", "NOT outcome:success"]
PATHS = ["actor.id", "action", "outcome", "severity", "source.service", "metadata.tags",
         "metadata.region", "metadata.n", "resource.id"]
edges = st.one_of(st.none(), st.integers(-HOUR, 6 * HOUR).map(lambda d: BASE + d),
                  st.integers(-2, 7).map(lambda h: BASE + h * HOUR))


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(1, 60), cap=st.sampled_from([2, 5, 10_000]))
def test_rollups_agree_with_a_full_scan(tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch,
                                        data: Any, n: int, cap: int) -> None:
    monkeypatch.setattr(rollups, "CAP", {"": cap, "action": cap})  # small caps retire keys
    recs = [data.draw(record(seq)) for seq in range(n)]
    index = SearchIndex(Path(tmp_path_factory.mktemp("ix")) / "search.db")
    try:
        done = 0
        while done < n:  # batches, some in two passes as the indexer writes them
            k = data.draw(st.integers(1, 20))
            batch = recs[done:done + k]
            if data.draw(st.booleans()):
                index.add(1, batch, done + len(batch))
            else:
                index.add(1, batch, done + len(batch), fields=False)
                index.add_fields(1, batch, done + len(batch))
            done += len(batch)
        for _ in range(6):
            q = data.draw(st.sampled_from(QUERIES))
            lo, hi = data.draw(edges), data.draw(edges)
            window = Window(lo, hi)
            fast = Aggregator(index, 1, parse(q), window)
            slow = Aggregator(index, 1, parse(q), window, rollups_=False)
            assert fast.total() == slow.total(), (q, window)
            path = data.draw(st.sampled_from(PATHS))
            top = data.draw(st.sampled_from([1, 3, 100]))
            assert fast.groups([path], top) == slow.groups([path], top), (q, window, path)
            assert fast.distinct(path) == slow.distinct(path), (q, window, path)
            now = BASE + 6 * HOUR
            for interval in ("auto", "1m", "1h"):
                if lo is not None and hi is not None and hi - lo > 4000 * MIN and \
                        interval == "1m":
                    continue
                try:
                    want = slow.histogram(interval, now)
                except ValidationError:  # too many buckets: both must refuse
                    with pytest.raises(ValidationError):
                        fast.histogram(interval, now)
                    continue
                assert fast.histogram(interval, now) == want, (q, window, interval)
    finally:
        index.close()


def test_a_key_with_too_many_values_in_an_hour_is_retired(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollups, "CAP", {"": 3, "action": 3})
    index = SearchIndex(tmp_path / "search.db")
    try:
        recs = [{"seq": i, "id": f"id-{i}", "time": _stamp(BASE + i * MIN),
                 "actor": {"id": "alice", "type": "user"}, "action": "orders.refund",
                 "outcome": "success", "category": "data_change",
                 "metadata": {"n": i, "region": "eu"}} for i in range(10)]
        index.add(1, recs, 10)
        retired = index.execute("SELECT dim, key FROM rollup_retired ORDER BY 1, 2", [])
        assert [tuple(r) for r in retired] == [("", "metadata.n"), ("action", "metadata.n")]
        assert index.execute("SELECT count(*) FROM groups WHERE key = 'metadata.n'", []) == [(0,)]
        agg = Aggregator(index, 1, parse(""), Window(BASE, BASE + HOUR))
        assert agg.groups(["metadata.region"], 5) == [(["eu"], 10)]  # from the rollup
        assert agg.groups(["metadata.n"], 2) == [([0], 1), ([1], 1)]  # by a scan
    finally:
        index.close()
