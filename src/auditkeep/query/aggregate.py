"""Aggregations over the search index: counts grouped by one or two fields, top-N, distinct
counts and a time histogram, all for the events a query selects in a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.query import fields
from auditkeep.query.ast import Node
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.sql import compile_where

MINUTE_US = 60_000_000
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
    def __init__(self, index: SearchIndex, log_id: int, node: Node, window: Window) -> None:
        self.index = index
        self.log_id = log_id
        self.window = window
        self.where = compile_where(node, rowid="e.rowid")
        self.win = window.conditions("e.")

    def _from(self) -> tuple[str, list[Any]]:
        return (f"events AS e WHERE e.log_id = ? AND {self.win.sql} AND {self.where.sql}",
                [self.log_id, *self.win.args, *self.where.args])

    def total(self) -> int:
        body, args = self._from()
        return int(self.index.execute(f"SELECT count(*) FROM {body}", args)[0][0])  # noqa: S608

    def groups(self, paths: list[str], top: int) -> list[tuple[list[Any], int]]:
        """The `top` most frequent value combinations of `paths` (one or two fields);
        an event with several values of a field (`targets.id`) counts once for each."""
        selects, joins, jargs = [], [], []
        for i, path in enumerate(paths):
            col = fields.COLUMNS.get(path)
            if col is not None:
                selects.append(f"e.{col.name}")
            else:
                joins.append(f"JOIN attrs AS a{i} ON a{i}.rowid = e.rowid AND a{i}.key = ?")
                jargs.append(path)
                selects.append(f"a{i}.value")
        body, args = self._from()
        body = body.replace("events AS e", "events AS e " + " ".join(joins), 1)
        keys = ", ".join(selects)
        sql = (f"SELECT {keys}, count(*) AS n FROM {body} GROUP BY {keys} "  # noqa: S608
               f"ORDER BY n DESC, {keys} LIMIT ?")
        rows = self.index.execute(sql, [*jargs, *args, top])
        return [(list(r[:-1]), int(r[-1])) for r in rows]

    def distinct(self, path: str) -> int:
        col = fields.COLUMNS.get(path)
        body, args = self._from()
        if col is not None:
            sql = f"SELECT count(DISTINCT e.{col.name}) FROM {body}"  # noqa: S608
            return int(self.index.execute(sql, args)[0][0])
        body = body.replace("events AS e", "events AS e JOIN attrs AS a ON a.rowid = e.rowid "
                            "AND a.key = ?", 1)
        sql = f"SELECT count(DISTINCT a.value) FROM {body}"  # noqa: S608
        return int(self.index.execute(sql, [path, *args])[0][0])

    def histogram(self, interval: str, now_us: int) -> Histogram:
        lo, hi = self.window.since_us, self.window.until_us
        if lo is None or hi is None:
            body, args = self._from()
            row = self.index.execute(f"SELECT min(e.time_us), max(e.time_us) FROM {body}",  # noqa: S608
                                     args)[0]
            lo = lo if lo is not None else (row[0] if row[0] is not None else now_us)
            hi = hi if hi is not None else max(now_us, (row[1] or 0) + 1)
        width = pick_interval(interval, hi - lo)
        if (hi - lo) // width > MAX_BUCKETS:
            raise ValidationError(
                f"interval: {interval} over this window gives more than {MAX_BUCKETS} buckets",
                problems=[FieldProblem("/query/interval", "too many buckets",
                                       "a wider interval or a narrower window", interval)])
        body, args = self._from()
        sql = (f"SELECT e.time_us / ? AS b, count(*) FROM {body} GROUP BY b")  # noqa: S608
        counts = {int(b): int(n) for b, n in self.index.execute(sql, [width, *args])}
        first, last = lo // width, (hi - 1) // width
        name = next((k for k, v in INTERVALS.items() if v == width), interval)
        return Histogram(name, width, [(b * width, counts.get(b, 0))
                                       for b in range(first, last + 1)])


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
