"""Terminal output of the investigation commands: event tables with chosen columns,
proportional bars and sparklines."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

import orjson
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

SPARKS = "▁▂▃▄▅▆▇█"  # ▁ is an empty bucket; any event at all shows as ▂ or higher
EIGHTHS = "▏▎▍▌▋▊▉"
BAR_WIDTH = 30
MAX_CELL = 60  # widest column of a streamed (--all) table; longer cells fold

def lookup(obj: Any, path: str) -> Any:
    """A dotted path into a record (`actor.id`, `metadata.amount`, `resources.0.uid`)."""
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def cell(event: dict[str, Any], column: str) -> str:
    """The text of one cell. `actor` is the actor's id and `resource` is `type:id` (as the
    default table has always shown them); any other object or list is compact JSON."""
    if column == "actor":
        return str(lookup(event, "actor.id") or "")
    if column == "resource":
        res = event.get("resource")
        return f"{res.get('type')}:{res.get('id')}" if isinstance(res, dict) else ""
    return scalar(lookup(event, column))


def scalar(value: Any) -> str:
    """A value as text: nothing for null, JSON spelling for booleans, objects and lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def console() -> Console:
    """stdout; wide when it is not a terminal, so piped tables do not wrap at 80."""
    return Console(width=200 if not sys.stdout.isatty() else None, highlight=False)


class EventTable:
    """Prints events as a table. `streamed`: one page at a time under one header, the
    first page fixing the column widths so that later pages line up (`--all`)."""

    def __init__(self, out: Console, columns: Iterable[str], *, marker: bool = False,
                 streamed: bool = False) -> None:
        self.out = out
        self.columns = list(columns)
        self.marker = marker
        self.streamed = streamed
        self.widths: list[int] | None = None

    def print(self, events: list[dict[str, Any]], *, mark: str | None = None) -> None:
        headers = ([""] if self.marker else []) + self.columns
        rows = []
        for e in events:
            row = [cell(e, c) for c in self.columns]
            if self.marker:
                row.insert(0, "▶" if mark is not None and e.get("id") == mark else "")
            rows.append(row)
        first = self.widths is None
        if self.streamed and self.widths is None:
            self.widths = [min(MAX_CELL, max([cell_len(h)] + [cell_len(r[i]) for r in rows]))
                           for i, h in enumerate(headers)]
        table = Table(box=None, header_style="bold", show_header=first or not self.streamed)
        for i, h in enumerate(headers):
            table.add_column(Text(h), overflow="fold",
                             width=self.widths[i] if self.streamed and self.widths else None)
        for row in rows:
            marked = self.marker and row[0] != ""
            table.add_row(*(Text(v) for v in row), style="bold reverse" if marked else None)
        self.out.print(table)


# --- aggregate ------------------------------------------------------------------------


def bar(count: int, top: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `count/top` of `width` cells, to an eighth of a cell."""
    if top <= 0 or count <= 0:
        return ""
    eighths = max(1, round(count / top * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest - 1] if rest else "")


def sparkline(counts: list[int]) -> str:
    """One block per count, scaled to the largest; zero is ▁, any other count ▂ to █."""
    top = max(counts, default=0)
    return "".join(SPARKS[0] if c <= 0 else SPARKS[max(1, math.ceil(c * 7 / top))]
                   for c in counts)


def histogram_lines(h: dict[str, Any], max_width: int) -> list[str]:
    """The histogram as a heading, a sparkline (buckets merged when there are more than
    `max_width`) with its max count, and the first and last bucket's start time."""
    buckets = h.get("buckets") or []
    interval = h.get("interval", "?")
    if not buckets:
        return [f"events per {interval}: no buckets (no events in this log)"]
    per = math.ceil(len(buckets) / max_width)
    counts = [sum(b["count"] for b in buckets[i:i + per]) for i in range(0, len(buckets), per)]
    merged = f", {per} buckets per block" if per > 1 else ""
    first, last = buckets[0]["start"], buckets[-1]["start"]
    spark = sparkline(counts)
    gap = len(spark) - len(first) - len(last)
    times = f"{first}{' ' * gap}{last}" if gap >= 2 else f"{first} → {last}"
    return [f"events per {interval} ({len(buckets)} buckets{merged})",
            f"{spark}  max {max(counts)} per {'block' if per > 1 else interval}", times]


def print_aggregate(out: Console, body: dict[str, Any]) -> None:
    total = int(body.get("total") or 0)
    out.print(f"total: {total} event{'s' if total != 1 else ''}")
    groups = body.get("groups")
    if groups is not None:
        keys = body.get("group_by") or ["key"]
        top = max((g["count"] for g in groups), default=0)
        table = Table(box=None, header_style="bold")
        for k in keys:
            table.add_column(Text(k))
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        table.add_column("")
        for g in groups:
            values = [Text("(none)", style="dim") if v is None else Text(scalar(v))
                      for v in g["key"]]
            share = f"{100 * g['count'] / total:.1f}%" if total else ""
            table.add_row(*values, str(g["count"]), share, bar(g["count"], top))
        out.print()
        if groups:
            out.print(table)
        else:
            out.print("no groups")
    for field, n in (body.get("distinct") or {}).items():
        out.print(f"distinct {field}: {n}")
    if body.get("histogram") is not None:
        out.print()
        for line in histogram_lines(body["histogram"], max(10, min(120, out.width - 2))):
            out.print(Text(line), overflow="ignore", crop=False)


