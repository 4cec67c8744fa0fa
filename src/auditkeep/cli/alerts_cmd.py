"""`auditkeep alerts list|show|ack`: the detection engine's alerts, from the server."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.render import console, scalar
from auditkeep.detect.rules import LEVELS

STATUSES = ("open", "acked")
LIST_COLUMNS = ("id", "created", "level", "status", "rule", "title", "count", "group")
DELIVERY_COLUMNS = ("sink", "status", "attempts", "next_attempt", "last_error", "updated")
#: The whole alert's fields in the order `show` prints them (events and deliveries follow
#: as their own tables).
SHOW_FIELDS = ("id", "tenant", "rule", "title", "level", "severity", "status", "count",
               "created", "updated", "first_time", "last_time", "acked_by", "acked_at",
               "group", "tags", "dedup_key", "suppressed_by", "routes", "origin",
               "logged_seq", "details")

_tenant = click.option("--tenant", default=None, help="Admin tokens: the tenant to read.")
_as_json = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")


def _path(alert_id: str, *rest: str) -> str:
    return "/".join(["/v1/alerts", quote(alert_id, safe=""), *rest])


def _echo_json(body: Any) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def _table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for c in columns:
        table.add_column(Text(c), overflow="fold")
    for row in rows:
        table.add_row(*(Text(scalar(row.get(c))) for c in columns))
    return table


@click.group()
def alerts() -> None:
    """Alerts the detection rules raised: list, show, acknowledge (docs/rules.md)."""


@alerts.command("list")
@url_option
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--level", type=click.Choice(LEVELS), default=None)
@click.option("--rule", default=None, help="Only this rule's alerts (its id).")
@click.option("--since", default=None, help="Created at or after: RFC 3339, or 15m / 24h / 7d.")
@click.option("--until", default=None, help="Created before: RFC 3339, or 15m / 24h / 7d.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next page: a previous page's cursor.")
@_tenant
@_as_json
def list_(url: str, token: str | None, status: str | None, level: str | None,
          rule: str | None, since: str | None, until: str | None, limit: int,
          cursor: str | None, tenant: str | None, as_json: bool) -> None:
    """Alerts, newest first."""
    with Api(url, token) as api:
        body = api.get_json("/v1/alerts", status=status, level=level, rule=rule, since=since,
                            until=until, limit=limit, cursor=cursor, tenant=tenant)
    if as_json:
        _echo_json(body)
        return
    if not body["alerts"]:
        click.echo("no alerts")
        return
    out = console()
    out.print(_table(LIST_COLUMNS, body["alerts"]))
    if body.get("next_cursor"):
        out.print(Text(f"more: --cursor {body['next_cursor']}"))


def _print_alert(out: Console, alert: dict[str, Any]) -> None:
    fields = Table(box=None, show_header=False)
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    for name in SHOW_FIELDS:
        value = alert.get(name)
        if value not in (None, "", [], {}):
            fields.add_row(Text(name), Text(scalar(value)))
    out.print(fields)
    events = alert.get("events") or []
    out.print()
    out.print(Text(f"events ({len(events)} linked of {alert.get('count')} counted)"))
    if events:
        out.print(_table(("log", "seq", "id"), events))
    deliveries = alert.get("deliveries") or []
    out.print()
    out.print(Text(f"deliveries ({len(deliveries)})"))
    if deliveries:
        out.print(_table(DELIVERY_COLUMNS, deliveries))


@alerts.command()
@url_option
@click.argument("alert_id", metavar="ID")
@_tenant
@_as_json
def show(url: str, token: str | None, alert_id: str, tenant: str | None,
         as_json: bool) -> None:
    """One alert: its fields, the events it links and its deliveries."""
    with Api(url, token) as api:
        body = api.get_json(_path(alert_id), tenant=tenant)
    if as_json:
        _echo_json(body)
        return
    _print_alert(console(), body)


@alerts.command()
@url_option
@click.argument("alert_id", metavar="ID")
@click.option("--note", default=None, help="Why: kept with the alert and the access log.")
@_tenant
@_as_json
def ack(url: str, token: str | None, alert_id: str, note: str | None, tenant: str | None,
        as_json: bool) -> None:
    """Acknowledge an alert (needs the audit scope; recorded in the access log)."""
    with Api(url, token) as api:
        body = api.request("POST", _path(alert_id, "ack"),
                           params={"tenant": tenant} if tenant else None,
                           json={"note": note} if note is not None else None).json()
    if as_json:
        _echo_json(body)
        return
    click.echo(f"acked {body['id']} ({body['rule']}) by {body.get('acked_by')} "
               f"at {body.get('acked_at')}")
