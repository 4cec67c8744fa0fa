"""`aggregate`, `context`, `export` and `saved`: investigating from the terminal.

Also the pieces `search` shares with them: a query or a saved search (`QUERY`,
`--saved`, `--since`, `--until`, `--tenant`), table columns as dotted paths, and a
query syntax error shown with a caret under the column the server named.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click
import httpx
import orjson
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import Api, describe_problem, url_option
from auditkeep.cli.main import EXIT_FAILURE, CliError

QUERY_POINTER = "/query/query"  # where the server reports a query's syntax errors
DEFAULT_COLUMNS = ("seq", "time", "actor", "action", "resource", "outcome")
INTERVALS = ("auto", "1m", "5m", "15m", "1h", "6h", "1d", "7d")
SAVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SPARKS = "▁▂▃▄▅▆▇█"  # ▁ is an empty bucket; any event at all shows as ▂ or higher
EIGHTHS = "▏▎▍▌▋▊▉"
BAR_WIDTH = 30
MAX_CELL = 60  # widest column of a streamed (--all) table; longer cells fold


# --- errors -------------------------------------------------------------------------


class QueryProblem(CliError):
    """A query the server could not parse: the usual one line, then the query with a
    caret under the column the server named (and what it expected there)."""

    def __init__(self, message: str, query: str, column: int, expected: str | None) -> None:
        super().__init__(message, EXIT_FAILURE)
        self.query = query
        self.column = column
        self.expected = expected

    def show(self, file: Any = None) -> None:
        super().show(file)
        click.echo(caret(self.query, self.column, self.expected), err=True)


def caret(query: str, column: int, expected: str | None = None) -> str:
    """Two lines: the query, and `^` under its 1-based `column` (which may be one past
    the end, for a query that ends too early)."""
    shown = re.sub(r"[\t\r\n\v\f]", " ", query)
    pad = cell_len(shown[:max(column - 1, 0)])
    hint = f" expected {expected}" if expected else ""
    return f"  {shown}\n  {' ' * pad}^{hint}"


def problem(resp: httpx.Response, query: str | None) -> CliError:
    """The CliError for an error answer; a `QueryProblem` when it names a column of the
    query we sent."""
    message = describe_problem(resp)
    if query is not None and resp.status_code == 400:
        try:
            body = resp.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        for e in errors if isinstance(errors, list) else []:
            if isinstance(e, dict) and e.get("pointer") == QUERY_POINTER \
                    and isinstance(e.get("column"), int):
                expected = e.get("expected")
                return QueryProblem(message, query, e["column"],
                                    expected if isinstance(expected, str) else None)
    return CliError(message, EXIT_FAILURE)


class QueryApi(Api):
    """`Api` whose errors show a caret under a bad query, and that can stream a body."""

    def __enter__(self) -> QueryApi:
        return self

    def call(self, method: str, path: str, *, query: str | None = None,
             params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        resp = self.raw(method, path, params=_clean(params), **kw)
        if resp.status_code >= 400:
            raise problem(resp, query)
        return resp

    @contextmanager
    def stream(self, path: str, *, query: str | None, params: dict[str, Any]
               ) -> Iterator[httpx.Response]:
        with self._client.stream("GET", path, params=_clean(params)) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise problem(resp, query)
            yield resp


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


# --- what to select: a query or a saved search ----------------------------------------


def select_options(f: Any) -> Any:
    """`[QUERY] [--saved NAME] [--since] [--until] [--tenant]`, in that order in --help."""
    for opt in reversed((
            click.argument("query", required=False),
            click.option("--saved", default=None, metavar="NAME",
                         help="Run this saved search (its query, since and until)."),
            click.option("--since", help="RFC 3339, or 15m / 24h / 7d."),
            click.option("--until", help="RFC 3339, or 15m / 24h / 7d."),
            click.option("--tenant", default=None, help="Admin tokens: the tenant to read."))):
        f = opt(f)
    return f


def selection(query: str | None, saved: str | None, since: str | None, until: str | None,
              tenant: str | None) -> dict[str, Any]:
    """The query parameters that select events; QUERY and --saved exclude each other."""
    if query is not None and saved is not None:
        raise click.UsageError("give a QUERY or --saved NAME, not both",
                               click.get_current_context())
    if saved is not None:
        check_name(saved)
        return {"saved": saved, "since": since, "until": until, "tenant": tenant}
    return {"query": query or "", "since": since, "until": until, "tenant": tenant}


def check_name(name: str) -> str:
    if not SAVED_NAME.fullmatch(name):
        raise click.UsageError(
            f"{name!r} is not a saved search name (1-100 of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit)", click.get_current_context())
    return name


def saved_path(name: str) -> str:
    return f"/v1/saved-searches/{quote(check_name(name), safe='')}"


def column_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    cols = [c.strip() for c in value.split(",") if c.strip()]
    if not cols:
        raise click.UsageError("--columns needs at least one dotted path, e.g. time,actor.id",
                               click.get_current_context())
    return cols


# --- tables of events ---------------------------------------------------------------


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


@click.command()
@url_option
@select_options
@click.option("--group-by", default=None, metavar="F[,F2]",
              help="Count per value of one or two fields.")
@click.option("--top", type=click.IntRange(1, 1000), default=None,
              help="How many groups (server default 10).")
@click.option("--distinct", default=None, metavar="F", help="Count the distinct values of F.")
@click.option("--interval", type=click.Choice(INTERVALS), default=None,
              help="A histogram with buckets this wide (auto: at most 120 buckets).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def aggregate(url: str, token: str | None, query: str | None, saved: str | None,
              since: str | None, until: str | None, tenant: str | None,
              group_by: str | None, top: int | None, distinct: str | None,
              interval: str | None, fmt: str) -> None:
    """Count the events QUERY selects: total, top groups, distinct values, histogram."""
    params = selection(query, saved, since, until, tenant)
    params.update(group_by=group_by, top=top, distinct=distinct, interval=interval)
    with QueryApi(url, token) as api:
        body = api.call("GET", "/v1/aggregate", query=params.get("query"),
                        params=params).json()
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    print_aggregate(console(), body)


# --- context --------------------------------------------------------------------------


CONTEXT_BY = {"actor": ("actor.id",), "resource": ("resource.type", "resource.id"),
              "trace": ("trace_id",), "request": ("request_id",)}


@click.command()
@url_option
@click.argument("event_id")
@click.option("--by", type=click.Choice(list(CONTEXT_BY)), default="actor", show_default=True,
              help="Which events are context: same actor, resource, trace or request.")
@click.option("--before", type=click.IntRange(0, 100), default=10, show_default=True)
@click.option("--after", type=click.IntRange(0, 100), default=10, show_default=True)
@click.option("--columns", default=None, metavar="A,B,C",
              help="Table columns as dotted paths [default: seq,time,actor,action,"
                   "resource,outcome].")
@click.option("--tenant", default=None, help="Admin tokens: the tenant to read.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def context(url: str, token: str | None, event_id: str, by: str, before: int, after: int,
            columns: str | None, tenant: str | None, fmt: str) -> None:
    """The events just before and after EVENT_ID by the same actor, on the same resource,
    or in the same trace or request; the event itself is marked ▶."""
    cols = column_list(columns) or list(DEFAULT_COLUMNS)
    with QueryApi(url, token) as api:
        body = api.call("GET", f"/v1/events/{quote(event_id, safe='')}/context",
                        params={"by": by, "before": before, "after": after,
                                "tenant": tenant}).json()
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    event = body["event"]
    key = " ".join(f"{p}={cell(event, p)}" for p in CONTEXT_BY[by])
    out = console()
    out.print(Text(f"context by {by} ({key}): {len(body['before'])} before, "
                   f"{len(body['after'])} after"))
    EventTable(out, cols, marker=True).print([*body["before"], event, *body["after"]],
                                             mark=event.get("id"))


# --- export ---------------------------------------------------------------------------


def _copy(api: QueryApi, params: dict[str, Any], out: IO[bytes],
          written: Callable[[int], None]) -> None:
    """Stream the export body into `out`, a chunk at a time (constant memory)."""
    with api.stream("/v1/export", query=params.get("query"), params=params) as resp:
        for chunk in resp.iter_bytes():  # as they arrive: a network read at a time
            out.write(chunk)
            written(len(chunk))


@click.command()
@url_option
@select_options
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv", "parquet"]),
              default="ndjson", show_default=True)
@click.option("--mapping", type=click.Choice(["auditkeep", "ocsf", "ecs", "cadf"]),
              default="auditkeep", show_default=True,
              help="As stored, or mapped onto OCSF, ECS or CADF.")
@click.option("--columns", default=None, metavar="A,B,C",
              help="csv/parquet columns: dotted paths into the mapped record.")
@click.option("--max-rows", type=click.IntRange(1), default=None, help="Stop after N rows.")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Write here (via FILE.part, renamed when complete) [default: stdout].")
def export(url: str, token: str | None, query: str | None, saved: str | None,
           since: str | None, until: str | None, tenant: str | None, fmt: str, mapping: str,
           columns: str | None, max_rows: int | None, output: str | None) -> None:
    """Export every event QUERY selects as NDJSON, CSV or Parquet, streamed."""
    ctx = click.get_current_context()
    to_stdout = output in (None, "-")
    if to_stdout and fmt == "parquet" and sys.stdout.isatty():
        raise click.UsageError("parquet is binary: give -o FILE or redirect stdout", ctx)
    if columns is not None and fmt == "ndjson":
        raise click.UsageError("--columns applies to csv and parquet (ndjson has whole "
                               "records)", ctx)
    params = selection(query, saved, since, until, tenant)
    cols = column_list(columns)
    params.update(format=fmt, mapping=mapping, max_rows=max_rows,
                  columns=",".join(cols) if cols else None)
    size = [0]

    def written(n: int) -> None:
        size[0] += n

    def failed(exc: Exception, where: str) -> CliError:
        return CliError(f"export failed after {size[0]:,} bytes: {exc}{where}", EXIT_FAILURE)

    with QueryApi(url, token) as api:
        if to_stdout:
            out = sys.stdout.buffer
            try:
                _copy(api, params, out, written)
                out.flush()
            except httpx.HTTPError as exc:
                raise failed(exc, " (stdout has a partial export)") from None
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise CliError(f"stdout closed after {size[0]:,} bytes", EXIT_FAILURE) from None
            where = "stdout"
        else:
            dest = Path(str(output))
            part = dest.with_name(dest.name + ".part")
            try:
                with open(part, "wb") as f:
                    _copy(api, params, f, written)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(part, dest)
            except BaseException as exc:
                part.unlink(missing_ok=True)
                if isinstance(exc, httpx.HTTPError):
                    raise failed(exc, f" ({dest} not written)") from None
                raise
            where = str(dest)
    click.echo(f"exported {size[0]:,} bytes ({fmt}, {mapping}) to {where}", err=True)


# --- saved searches -------------------------------------------------------------------


@click.group()
def saved() -> None:
    """Saved searches: a named query with its window and columns, per tenant."""


tenant_option = click.option("--tenant", default=None, help="Admin tokens: the tenant.")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True)
SAVED_FIELDS = ("query", "since", "until", "columns", "description", "created_by", "updated")


@saved.command("list")
@url_option
@tenant_option
@format_option
def saved_list(url: str, token: str | None, tenant: str | None, fmt: str) -> None:
    """Every saved search of the tenant."""
    with QueryApi(url, token) as api:
        body = api.call("GET", "/v1/saved-searches", params={"tenant": tenant}).json()
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    if not body["saved"]:
        click.echo("no saved searches")
        return
    table = Table(box=None, header_style="bold")
    for col in ("name", "query", "since", "until", "columns", "updated"):
        table.add_column(col)
    for s in body["saved"]:
        table.add_row(*(Text(_field(s, c)) for c in ("name", "query", "since", "until",
                                                     "columns", "updated")))
    console().print(table)


def _field(s: dict[str, Any], key: str) -> str:
    value = s.get(key)
    if value is None:
        return ""
    return ",".join(value) if isinstance(value, list) else str(value)


@saved.command("show")
@url_option
@click.argument("name")
@tenant_option
@format_option
def saved_show(url: str, token: str | None, name: str, tenant: str | None, fmt: str) -> None:
    """One saved search."""
    with QueryApi(url, token) as api:
        body = api.call("GET", saved_path(name), params={"tenant": tenant}).json()
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"name: {body['name']}")
    for key in SAVED_FIELDS:
        if body.get(key) is not None:
            click.echo(f"{key}: {_field(body, key)}")


@saved.command("put")
@url_option
@click.argument("name")
@click.argument("query")
@click.option("--since", help="Its window: RFC 3339, or 15m / 24h / 7d.")
@click.option("--until")
@click.option("--columns", default=None, metavar="A,B,C",
              help="Its table columns (dotted paths).")
@click.option("--description", default=None)
@tenant_option
def saved_put(url: str, token: str | None, name: str, query: str, since: str | None,
              until: str | None, columns: str | None, description: str | None,
              tenant: str | None) -> None:
    """Create or replace saved search NAME (QUERY must parse)."""
    path = saved_path(name)
    body = {k: v for k, v in {"query": query, "since": since, "until": until,
                              "columns": column_list(columns),
                              "description": description}.items() if v is not None}
    with QueryApi(url, token) as api:
        api.call("PUT", path, query=query, params={"tenant": tenant}, json=body)
    click.echo(f"saved {name}: {query}")


@saved.command("delete")
@url_option
@click.argument("name")
@tenant_option
def saved_delete(url: str, token: str | None, name: str, tenant: str | None) -> None:
    """Delete saved search NAME."""
    with QueryApi(url, token) as api:
        api.call("DELETE", saved_path(name), params={"tenant": tenant})
    click.echo(f"deleted {name}")

