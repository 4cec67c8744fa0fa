"""`aggregate`, `context`, `export` and `saved`: investigating from the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click
import httpx
import orjson
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import url_option
from auditkeep.cli.main import EXIT_FAILURE, CliError
from auditkeep.cli.query_api import (
    DEFAULT_COLUMNS,
    INTERVALS,
    QueryApi,
    column_list,
    saved_path,
    select_options,
    selection,
)
from auditkeep.cli.render import EventTable, cell, console, print_aggregate


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

