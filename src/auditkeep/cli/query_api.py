"""What the investigation commands share: a query or a saved search (`QUERY`, `--saved`,
`--since`, `--until`, `--tenant`), table columns as dotted paths, and a query syntax
error shown with a caret under the column the server named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import click
import httpx
from rich.cells import cell_len

from auditkeep.cli.http import Api, describe_problem
from auditkeep.cli.main import EXIT_FAILURE, CliError

QUERY_POINTER = "/query/query"  # where the server reports a query's syntax errors
DEFAULT_COLUMNS = ("seq", "time", "actor", "action", "resource", "outcome")
INTERVALS = ("auto", "1m", "5m", "15m", "1h", "6h", "1d", "7d")
SAVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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


