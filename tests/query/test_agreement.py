"""The SQL back ends and the in-memory predicate agree: random queries over random events
select the same events through the real search index (a SQLite file, and PostgreSQL)
and in Python."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.lang import parse
from auditkeep.query.pgindex import PgSearchIndex
from auditkeep.query.predicate import matches

WORDS = ["alice", "bob", "svc-1", "Zoë", "orders/1", "orders/2", "a*b", "x[1]", "1000", "10",
         "disk full", "iam.user.create", "", "ä", "true"]
ACTIONS = ["iam.user.create", "iam.role.delete", "orders.refund", "orders.read", "iam"]
scalars = st.one_of(st.integers(-5, 2000), st.sampled_from([0.5, 1000.0, -2.25]),
                    st.sampled_from(WORDS), st.booleans(), st.none())
meta_values = st.one_of(scalars, st.lists(scalars, max_size=3),
                        st.dictionaries(st.sampled_from(["k", "j"]), scalars, max_size=2))


@st.composite
def records(draw: Any, seq: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "seq": seq, "id": f"id-{seq}",
        "time": f"2026-11-0{draw(st.integers(1, 4))}T{draw(st.integers(0, 23)):02d}:00:00Z",
        "actor": {"id": draw(st.sampled_from(["alice", "bob", "svc-1", "Zoë"])),
                  "type": draw(st.sampled_from(["user", "service"])),
                  "email": {"$c": "commitment"}},
        "action": draw(st.sampled_from(ACTIONS)),
        "outcome": draw(st.sampled_from(["success", "failure", "denied"])),
        "category": draw(st.sampled_from(["admin", "auth", "data_change"])),
    }
    for key, strat in (
        ("severity", st.sampled_from(["info", "critical"])),
        ("resource", st.fixed_dictionaries({"type": st.sampled_from(["order", "user"]),
                                            "id": st.sampled_from(WORDS[:8])})),
        ("trace_id", st.sampled_from(["t1", "t2"])),
        ("reason", st.sampled_from(["disk full", "Zoë asked", "rotate 1000 keys"])),
        ("metadata", st.dictionaries(st.sampled_from(["amount", "tags", "flag", "note", "n"]),
                                     meta_values, max_size=4)),
        ("targets", st.lists(st.fixed_dictionaries({"type": st.just("user"),
                                                    "id": st.sampled_from(WORDS[:5])}),
                             min_size=1, max_size=2)),
    ):
        if draw(st.booleans()):
            rec[key] = draw(strat)
    if draw(st.booleans()):
        rec["actor"]["impersonator"] = {"id": "root", "type": "user"}
    return rec


FIELDS = ["actor", "actor.id", "actor.type", "action", "outcome", "category", "severity",
          "resource.type", "resource.id", "trace_id", "reason", "metadata.amount",
          "metadata.tags", "metadata.flag", "metadata.note", "metadata.n.k", "targets.id",
          "raw.verb", "raw.user.name", "id"]
VALUES = ["alice", "Zoë", "orders/1", "1000", "10", "-5", "0.5", "true", "iam.*", "orders/*",
          "*a*", "i?m.*", "\\*", '"a*b"', '"disk full"', "x\\[1\\]", "*", "critical", "user"]
BOUNDS = [("0", "100"), ("-5", "1000"), ("10", "*"), ("*", "0.5"), ("a", "p"), ("*", "b"),
          ("orders/1", "z"), ("alice", "*")]


def _term() -> st.SearchStrategy[str]:
    field_term = st.builds(lambda f, v: f"{f}:{v}", st.sampled_from(FIELDS),
                           st.sampled_from(VALUES))
    seq_term = st.builds(lambda n: f"seq:{n}", st.integers(0, 12))
    rng = st.builds(lambda f, b, o, c: f"{f}:{o}{b[0]} TO {b[1]}{c}",
                    st.sampled_from(FIELDS[10:]), st.sampled_from(BOUNDS),
                    st.sampled_from("[{"), st.sampled_from("]}"))
    cmp = st.builds(lambda f, op, v: f"{f}:{op}{v}", st.sampled_from(FIELDS[10:17]),
                    st.sampled_from([">", ">=", "<", "<="]),
                    st.sampled_from(["10", "1000", "0.5", "a", "orders/1"]))
    times = st.sampled_from(["time:[2026-11-02 TO 2026-11-03]", "time:>2026-11-02T12:00:00Z",
                             "time:2026-11-01", "time:{2026-11-01T05:00:00Z TO *]",
                             "time:<=2026-11-03T00:00:00Z"])
    exists = st.builds(lambda f: f"_exists_:{f}", st.sampled_from(
        ["actor.impersonator", "resource", "metadata", "metadata.n", "trace_id", "raw",
         "severity", "targets"]))
    text = st.sampled_from(["alice", "ali*", '"disk full"', "orders", "1000", "zoe", "Zoë",
                            "rotate", "iam user", "svc-1", "k*"])
    return st.one_of(field_term, seq_term, rng, cmp, times, exists, text)


queries = st.recursive(
    _term(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} AND {b}", inner, inner),
        st.builds(lambda a, b: f"({a}) OR ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} {b}", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
        st.builds(lambda a: f"-{a}", inner),
    ),
    max_leaves=5,
)

RAWS = [{"verb": "delete", "user": {"name": "alice"}}, {"verb": "get"}, None]


#: A fresh, empty log: an index and the log id to write (SQLite: a new file for each;
#: PostgreSQL: one schema for the test, a new log id for each, as opening is slower).
FreshLog = Callable[[], tuple[SearchIndex | PgSearchIndex, int]]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[FreshLog]:
    opened: list[SearchIndex | PgSearchIndex] = []
    if request.param == "postgresql":
        shared = PgSearchIndex(request.getfixturevalue("pg_url"))
        opened.append(shared)
        ids = itertools.count(1)

        def fresh() -> tuple[SearchIndex | PgSearchIndex, int]:
            return shared, next(ids)
    else:
        def fresh() -> tuple[SearchIndex | PgSearchIndex, int]:
            while opened:
                opened.pop().close()
            opened.append(SearchIndex(Path(tmp_path_factory.mktemp("ix")) / "search.db"))
            return opened[-1], 1
    yield fresh
    for index in opened:
        index.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data(), qs=st.lists(queries, min_size=1, max_size=8))
def test_sql_and_memory_select_the_same_events(fresh_log: FreshLog, data: Any,
                                               qs: list[str]) -> None:
    recs = [data.draw(records(seq)) for seq in range(12)]
    raws = {r["seq"]: RAWS[r["seq"] % 3] for r in recs if RAWS[r["seq"] % 3] is not None}
    index, log_id = fresh_log()
    index.add(log_id, recs, len(recs), raws)
    for q in qs:
        node = parse(q)
        in_sql = sorted(s for _, s in index.search(log_id, node, Window(), limit=100))
        in_memory = sorted(r["seq"] for r in recs if matches(node, r, raws.get(r["seq"])))
        assert in_sql == in_memory, q


def test_the_generated_queries_are_not_trivial(tmp_path: Path) -> None:
    """Guard against an agreement test that passes because everything matches nothing:
    over a deterministic sample of generated queries, many select some but not all."""
    sizes: list[tuple[int, int]] = []

    @settings(max_examples=60, database=None, derandomize=True, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data(), q=queries)
    def sample(data: Any, q: str) -> None:
        recs = [data.draw(records(seq)) for seq in range(12)]
        index = SearchIndex(tmp_path / f"s{len(sizes)}.db")
        index.add(1, recs, len(recs))
        sizes.append((len(index.search(1, parse(q), Window(), limit=100)), len(recs)))
        index.close()

    sample()
    assert sum(0 < n < total for n, total in sizes) >= 15, sizes
