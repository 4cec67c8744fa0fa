"""Aggregations over the search index: counts grouped by one or two fields, top-N, distinct
counts and a time histogram, all for the events a query selects in a window.

Where the query is empty or tests one rolled-up column (`query.rollups`), whole minutes
(totals, histograms) and whole hours (group-bys) of the window are read from the rollups
and only the edges from the events; anything else scans the events the query selects.
Both give the same answer (a property test holds them together).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.query import fields, rollups
from auditkeep.query.ast import Node
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.rollups import HOUR_US, MINUTE_US
from auditkeep.query.sql import KEY_ID, Condition, compile_where

if TYPE_CHECKING:
    from auditkeep.query.pgindex import PgSearchIndex

#: Named intervals and what `auto` may pick, smallest first.
INTERVALS = {"1m": MINUTE_US, "5m": 5 * MINUTE_US, "15m": 15 * MINUTE_US,
             "1h": 60 * MINUTE_US, "6h": 360 * MINUTE_US, "1d": 1440 * MINUTE_US,
             "7d": 10_080 * MINUTE_US}
AUTO_BUCKETS = 120  # `auto` picks the smallest interval giving at most this many
MAX_BUCKETS = 5000


@dataclass(frozen=True, slots=True)
class Histogram:
    interval: str
    width_us: int
    buckets: list[tuple[int, int]]  # (start_us, count), every bucket in the window


class Aggregates(Protocol):
    """What the servers ask of an aggregator, whichever index answers."""

    def total(self) -> int: ...
    def groups(self, paths: list[str], top: int) -> list[tuple[list[Any], int]]: ...
    def distinct(self, path: str) -> int: ...
    def histogram(self, interval: str, now_us: int) -> Histogram: ...


def aggregator(index: SearchIndex | PgSearchIndex, log_id: int, node: Node,
               window: Window) -> Aggregates:
    """The aggregator of `index`'s kind: SQLite reads its rollups, PostgreSQL groups the
    events (`query.pgaggregate`); the answers are the same."""
    if isinstance(index, SearchIndex):
        return Aggregator(index, log_id, node, window)
    return index.aggregator(log_id, node, window)


def check_group_field(path: str, param: str) -> str:
    path = fields.ALIASES.get(path, path)
    why = fields.check_path(path)
    if why is None and path == "time":
        why = "group by time with interval=, not group_by"
    if why is not None:
        raise ValidationError(f"{param}: {why}", problems=[
            FieldProblem(f"/query/{param}", why, "a schema v1 field", path)])
    return path


class Aggregator:
    def __init__(self, index: SearchIndex, log_id: int, node: Node, window: Window, *,
                 rollups_: bool = True) -> None:
        self.index = index
        self.log_id = log_id
        self.window = window
        self.where = compile_where(node, rowid="e.rowid")
        plain = rollups_ and window.cursor is None and window.after is None
        self.counted = rollups.dim_filter(node, rollups.COUNT_DIMS) if plain else None
        self.grouped = rollups.dim_filter(node, rollups.GROUP_DIMS) if plain else None

    # -- scanning the events ------------------------------------------------------------

    def _from(self, lo: int | None = None, hi: int | None = None, *, whole: bool = True
              ) -> tuple[str, list[Any]]:
        """The events the query selects in the window (`whole`), or in [lo, hi)."""
        win = self.window.conditions("e.") if whole else \
            Window(lo, hi).conditions("e.")
        return (f"events AS e WHERE e.log_id = ? AND {win.sql} AND {self.where.sql}",
                [self.log_id, *win.args, *self.where.args])

    def _scan_total(self, body: tuple[str, list[Any]]) -> int:
        return int(self.index.execute(f"SELECT count(*) FROM {body[0]}", body[1])[0][0])  # noqa: S608

    def _scan_groups(self, paths: list[str], body: tuple[str, list[Any]],
                     top: int | None) -> list[tuple[list[Any], int]]:
        selects, joins, jargs = [], [], []
        for i, path in enumerate(paths):
            col = fields.COLUMNS.get(path)
            if col is not None:
                selects.append(f"e.{col.name}")
            else:
                joins.append(f"JOIN attrs AS a{i} ON a{i}.rowid = e.rowid AND a{i}.{KEY_ID}")
                jargs.append(path)
                selects.append(f"a{i}.value")
        sql, args = body
        sql = sql.replace("events AS e", "events AS e " + " ".join(joins), 1)
        keys = ", ".join(selects)
        limit = f" ORDER BY n DESC, {keys} LIMIT ?" if top is not None else ""
        rows = self.index.execute(
            f"SELECT {keys}, count(*) AS n FROM {sql} GROUP BY {keys}{limit}",  # noqa: S608
            [*jargs, *args, *([top] if top is not None else [])])
        return [(list(r[:-1]), int(r[-1])) for r in rows]

    # -- the answers --------------------------------------------------------------------

    def total(self) -> int:
        if self.counted is None:
            return self._scan_total(self._from())
        core, edges = rollups.cut(self.window.since_us, self.window.until_us, MINUTE_US)
        n = sum(self._scan_total(self._from(lo, hi, whole=False)) for lo, hi in edges)
        if core is not None:
            cond = self._counts(core)
            n += int(self.index.execute(f"SELECT coalesce(sum(n), 0) FROM counts WHERE {cond.sql}",  # noqa: S608
                                        cond.args)[0][0])
        return n

    def _counts(self, minutes: tuple[int | None, int | None]) -> Condition:
        """`counts` rows of the query's dim over whole minutes [first, end)."""
        assert self.counted is not None
        test, targs = self.counted.on("value")
        span, sargs = rollups.unit_range("minute", minutes)
        return Condition(f"log_id = ? AND dim = ? AND {test} AND {span}",
                         [self.log_id, self.counted.dim, *targs, *sargs])

    def _rolled_key(self, path: str) -> bool:
        """Whether `groups` holds `path` for this query (not retired for its dim)."""
        if self.grouped is None or (path in fields.COLUMNS and \
                path not in rollups.GROUP_COLUMNS):
            return False
        return not self.index.execute(
            "SELECT 1 FROM rollup_retired WHERE log_id = ? AND dim = ? AND key = ?",
            [self.log_id, self.grouped.dim, path])

    def groups(self, paths: list[str], top: int) -> list[tuple[list[Any], int]]:
        """The `top` most frequent value combinations of `paths` (one or two fields);
        an event with several values of a field (`targets.id`) counts once for each."""
        if len(paths) != 1 or not self._rolled_key(paths[0]):
            return self._scan_groups(paths, self._from(), top)
        tail = "GROUP BY value"
        if not rollups.cut(self.window.since_us, self.window.until_us, HOUR_US)[1]:
            # whole hours only: SQLite ranks and cuts (the absent-column marker sorting
            # first, as NULL does in a scan), instead of every value coming to Python
            tail += f" ORDER BY 2 DESC, typeof(value) <> 'blob', value LIMIT {int(top)}"
        counts: Counter[Any] = Counter()
        for value, n in self._rolled(paths[0], "SELECT value, sum(n)", tail):
            counts[value] += n
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], fields.sqlite_order(kv[0])))
        return [([v], n) for v, n in ranked[:top]]

    def _rolled(self, path: str, select: str, tail: str) -> list[Any]:
        """`select ... tail` over the rollup rows of whole hours plus the same over the
        events of the edges, as (value, n) rows."""
        assert self.grouped is not None
        core, edges = rollups.cut(self.window.since_us, self.window.until_us, HOUR_US)
        out: list[Any] = []
        for lo, hi in edges:
            out += [(r[0][0], r[1]) for r in self._scan_groups(
                [path], self._from(lo, hi, whole=False), None)]
        if core is not None:
            test, targs = self.grouped.on("dvalue")
            span, sargs = rollups.unit_range("hour", core)
            rows = self.index.execute(
                f"{select} FROM groups WHERE log_id = ? AND key = ? AND dim = ? AND {test} "
                f"AND {span} {tail}",
                [self.log_id, path, self.grouped.dim, *targs, *sargs])
            out += [(rollups.column_of(v), n) for v, n in rows]
        return out

    def distinct(self, path: str) -> int:
        if self._rolled_key(path):
            # count(DISTINCT) counts no NULL: an absent column is no value
            return len({fields.sqlite_order(v) for v, _ in self._rolled(
                path, "SELECT DISTINCT value, 0", "") if v is not None})
        col = fields.COLUMNS.get(path)
        body, args = self._from()
        if col is not None:
            sql = f"SELECT count(DISTINCT e.{col.name}) FROM {body}"  # noqa: S608
            return int(self.index.execute(sql, args)[0][0])
        body = body.replace("events AS e", "events AS e JOIN attrs AS a ON a.rowid = e.rowid "
                            f"AND a.{KEY_ID}", 1)
        sql = f"SELECT count(DISTINCT a.value) FROM {body}"  # noqa: S608
        return int(self.index.execute(sql, [path, *args])[0][0])

    def histogram(self, interval: str, now_us: int) -> Histogram:
        lo, hi, width = histogram_span(self.window, interval, now_us, self._time_bounds)
        counts: Counter[int] = Counter()
        scans: list[tuple[int | None, int | None]] = [(None, None)] \
            if self.counted is None else []
        core = None
        if self.counted is not None:
            core, scans = rollups.cut(self.window.since_us, self.window.until_us, MINUTE_US)
        for a, b in scans:
            body, args = self._from(a, b, whole=self.counted is None)
            sql = f"SELECT e.time_us / ? AS b, count(*) FROM {body} GROUP BY b"  # noqa: S608
            counts.update({int(k): int(n) for k, n in self.index.execute(sql, [width, *args])})
        if core is not None:
            cond = self._counts(core)
            sql = f"SELECT minute / ? AS b, sum(n) FROM counts WHERE {cond.sql} GROUP BY b"  # noqa: S608
            counts.update({int(k): int(n) for k, n in self.index.execute(
                sql, [width // MINUTE_US, *cond.args])})
        first, last = lo // width, (hi - 1) // width
        name = next((k for k, v in INTERVALS.items() if v == width), interval)
        return Histogram(name, width, [(b * width, counts.get(b, 0))
                                       for b in range(first, last + 1)])

    def _time_bounds(self) -> tuple[int | None, int | None]:
        """The oldest and newest time the query selects in the window. From the rollups,
        the first and last minute that count any, then exactly within those minutes."""
        if self.counted is None:
            body, args = self._from()
            row = self.index.execute(f"SELECT min(e.time_us), max(e.time_us) FROM {body}",  # noqa: S608
                                     args)[0]
            return row[0], row[1]
        core, _ = rollups.cut(self.window.since_us, self.window.until_us, MINUTE_US)
        cond = self._counts(core or (None, None))
        row = self.index.execute(f"SELECT min(minute), max(minute) FROM counts WHERE {cond.sql}",  # noqa: S608
                                 cond.args)[0]
        found: list[int] = []
        if row[0] is not None:  # the first and last whole minutes that hold any
            for m in {row[0], row[1]}:
                found += self._exact(m * MINUTE_US, (m + 1) * MINUTE_US)
        for lo, hi in rollups.cut(self.window.since_us, self.window.until_us, MINUTE_US)[1]:
            found += self._exact(lo, hi)
        return (min(found), max(found)) if found else (None, None)

    def _exact(self, lo: int | None, hi: int | None) -> list[int]:
        body, args = self._from(lo, hi, whole=False)
        row = self.index.execute(f"SELECT min(e.time_us), max(e.time_us) FROM {body}",  # noqa: S608
                                 args)[0]
        return [int(v) for v in row if v is not None]


def pick_interval(interval: str, span_us: int) -> int:
    if interval == "auto":
        for width in INTERVALS.values():
            if span_us / width <= AUTO_BUCKETS:
                return width
        return list(INTERVALS.values())[-1]
    named = INTERVALS.get(interval)
    if named is None:
        raise ValidationError(f"interval: unknown interval {interval!r}", problems=[
            FieldProblem("/query/interval", "unknown interval",
                         "auto, " + ", ".join(INTERVALS), interval)])
    return named


def histogram_span(window: Window, interval: str, now_us: int,
                   bounds: Callable[[], tuple[int | None, int | None]]) -> tuple[int, int, int]:
    """(lo, hi, bucket width) of a histogram over `window`: an open side is bounded by
    the matches' own times (`bounds()`), or now; too many buckets is a 400."""
    lo, hi = window.since_us, window.until_us
    if lo is None or hi is None:
        first, last = bounds()
        lo = lo if lo is not None else (first if first is not None else now_us)
        hi = hi if hi is not None else max(now_us, (last or 0) + 1)
    width = pick_interval(interval, hi - lo)
    if (hi - lo) // width > MAX_BUCKETS:
        raise ValidationError(
            f"interval: {interval} over this window gives more than {MAX_BUCKETS} buckets",
            problems=[FieldProblem("/query/interval", "too many buckets",
                                   "a wider interval or a narrower window", interval)])
    return lo, hi, width
