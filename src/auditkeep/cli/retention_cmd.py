"""`auditkeep retention show|set|plan|run`: retention policies and purges, through the
server (it holds the one writer of each log). docs/retention.md."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_USAGE, CliError
from auditkeep.cli.render import console

RUN_TIMEOUT = 3600.0  # a first purge of a large log takes a while; the server goes on anyway
_json = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")


def _echo_json(body: Any) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def human_bytes(n: int) -> str:
    """1023 B, 1.0 KiB, 12.3 MiB, ..."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover -- the loop always returns


def _days(days: int | None) -> str:
    return "forever" if days is None else f"{days}d"


@click.group()
def retention() -> None:
    """Retention policies by tenant and category, the dry run and the purge (admin)."""


@retention.command("show")
@url_option
@click.option("--tenant", default="default", show_default=True)
@_json
def show(url: str, token: str | None, tenant: str, as_json: bool) -> None:
    """The tenant's effective policy: days per category and where each came from."""
    with Api(url, token) as api:
        body = api.get_json("/v1/retention", tenant=tenant)
    if as_json:
        _echo_json(body)
        return
    _print_policy(body)


def _print_policy(body: dict[str, Any]) -> None:
    d = body["default"]
    click.echo(f"tenant {body['tenant']}: default {_days(d['days'])} ({d['source']})")
    table = Table(box=None, header_style="bold")
    for c in ("category", "keep", "from"):
        table.add_column(Text(c))
    for name, part in body["categories"].items():
        table.add_row(Text(name), Text(_days(part["days"])), Text(part["source"]))
    console().print(table)
    ra = body["require_archive"]
    click.echo(f"purge waits for the archive: {'yes' if ra['value'] else 'no'} "
               f"({ra['source']})")
    stored = body.get("stored")
    if stored:
        click.echo(f"set over the API by {stored['updated_by']} at {stored['updated']}")


@retention.command("set")
@url_option
@click.option("--tenant", default="default", show_default=True)
@click.option("--category", "categories", multiple=True, metavar="NAME=DAYS",
              help="Keep this category so long: auth=400d, data_access=90d, admin=forever "
                   "(repeatable).")
@click.option("--default", "default", default=None, metavar="DAYS",
              help="Keep other categories so long (400d, 12w, 3y, forever).")
@click.option("--require-archive/--no-require-archive", default=None,
              help="Purge only what the cold archive holds (the default when one is set).")
@_json
def set_(url: str, token: str | None, tenant: str, categories: tuple[str, ...],
         default: str | None, require_archive: bool | None, as_json: bool) -> None:
    """Set the tenant's own policy (it replaces the one set before; what it leaves out
    comes from the configuration file)."""
    body: dict[str, Any] = {}
    cats: dict[str, Any] = {}
    for item in categories:
        name, sep, days = item.partition("=")
        if not sep or not name.strip() or not days.strip():
            raise CliError(f"--category {item!r}: expected NAME=DAYS, e.g. auth=400d",
                           EXIT_USAGE)
        cats[name.strip()] = _value(days)
    if cats:
        body["categories"] = cats
    if default is not None:
        body["default"] = _value(default)
    if require_archive is not None:
        body["require_archive"] = require_archive
    with Api(url, token) as api:
        answer = api.request("PUT", "/v1/retention", params={"tenant": tenant},
                             json=body).json()
    if as_json:
        _echo_json(answer)
        return
    _print_policy(answer)


def _value(days: str) -> Any:
    text = days.strip()
    return None if text.lower() in ("forever", "never", "null") else text


@retention.command("plan")
@url_option
@click.option("--tenant", default=None, help="Only this tenant (default: every tenant).")
@_json
def plan(url: str, token: str | None, tenant: str | None, as_json: bool) -> None:
    """Dry run: what a purge would remove now, by tenant and category, with sizes."""
    with Api(url, token) as api:
        body = api.get_json("/v1/retention/plan", tenant=tenant)
    if as_json:
        _echo_json(body)
        return
    rows = [(log, name, c) for log in body["logs"] for name, c in log["categories"].items()]
    if not rows:
        click.echo("nothing is due for purge")
        return
    table = Table(box=None, header_style="bold")
    for c in ("tenant", "log", "category", "events", "entries", "raw", "personal", "held",
              "waiting archive", "seq ranges"):
        table.add_column(Text(c), justify="right" if c in ("events", "entries", "raw",
                                                            "personal", "held") else "left")
    for log, name, c in rows:
        ranges = ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in c["ranges"][:3])
        if c["range_count"] > 3:
            ranges += f" (+{c['range_count'] - 3})"
        table.add_row(Text(log["tenant"]), Text(log["log"]), Text(name), Text(str(c["events"])),
                      Text(human_bytes(c["entry_bytes"])), Text(human_bytes(c["raw_bytes"])),
                      Text(str(c["personal_values"])), Text(str(c["held"])),
                      Text(str(c["waiting_archive"])), Text(ranges))
    console().print(table)
    click.echo(f"{body['events']} events would be purged")


@retention.command("run")
@url_option
@click.option("--tenant", default=None, help="Only this tenant (default: every tenant).")
@click.option("--yes", is_flag=True, help="Do not ask (a purge cannot be undone, except "
                                          "from the archive).")
@_json
def run(url: str, token: str | None, tenant: str | None, yes: bool, as_json: bool) -> None:
    """Purge what is due now; each purge is recorded in the log it purged."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("retention run purges for good: pass --yes", EXIT_USAGE)
        click.confirm("Purge every event that is due now?", abort=True)
    with Api(url, token, timeout=RUN_TIMEOUT) as api:
        body = api.request("POST", "/v1/retention/run",
                           params={"tenant": tenant} if tenant else None).json()
    if as_json:
        _echo_json(body)
        return
    for p in body["purges"]:
        cats = ", ".join(f"{k} {v}" for k, v in p["categories"].items())
        click.echo(f"{p['log']}: purged {p['events']} events ({cats}; "
                   f"{human_bytes(p['entry_bytes'])} of entries, "
                   f"{human_bytes(p['raw_bytes'])} raw), seq {p['first_seq']}..{p['last_seq']}; "
                   f"record {p['record_id']} at seq {p['record_seq']}")
    click.echo(f"purged {body['events']} events")
