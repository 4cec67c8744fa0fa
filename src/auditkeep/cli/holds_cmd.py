"""`auditkeep holds create|list|show|release`: legal holds through the HTTP API
(docs/holds.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.render import console

_tenant = click.option("--tenant", default=None,
                       help="Admin tokens: the tenant (list: default every tenant).")
_json = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")


def _params(tenant: str | None) -> dict[str, str] | None:
    return {"tenant": tenant} if tenant else None


def _echo_json(body: Any) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def _window(h: dict[str, Any]) -> str:
    if not h.get("since") and not h.get("until"):
        return "all time"
    return f"{h.get('since') or '…'} to {h.get('until') or '…'}"


@click.group()
def holds() -> None:
    """Legal holds: matching events are never purged by retention until released."""


@holds.command("create")
@url_option
@click.option("--query", required=True, help="The events to hold (search query language).")
@click.option("--reason", required=True, help="Why, for the record (e.g. the matter number).")
@click.option("--since", default=None, help="Only events at or after this RFC 3339 time.")
@click.option("--until", default=None, help="Only events before this RFC 3339 time.")
@_tenant
@_json
def create(url: str, token: str | None, query: str, reason: str, since: str | None,
           until: str | None, tenant: str | None, as_json: bool) -> None:
    """Create a legal hold; the hold is recorded in the tenant's log. Needs admin."""
    body: dict[str, Any] = {"query": query, "reason": reason}
    if since:
        body["since"] = since
    if until:
        body["until"] = until
    with Api(url, token) as api:
        hold = api.request("POST", "/v1/holds", params=_params(tenant), json=body).json()
    if as_json:
        _echo_json(hold)
        return
    click.echo(f"created hold {hold['id']} in tenant {hold['tenant']} ({_window(hold)}); "
               f"recorded at seq {hold['record_seq']}")


@holds.command("list")
@url_option
@click.option("--all", "everything", is_flag=True, help="Released holds too.")
@_tenant
@_json
def list_(url: str, token: str | None, everything: bool, tenant: str | None,
          as_json: bool) -> None:
    """Active holds (with --all, released ones too), oldest first. Needs audit or admin."""
    with Api(url, token) as api:
        body = api.get_json("/v1/holds", tenant=tenant,
                            active=None if everything else "true")
    if as_json:
        _echo_json(body)
        return
    if not body["holds"]:
        click.echo("no holds" if everything else "no active holds")
        return
    table = Table(box=None, header_style="bold")
    for c in ("id", "tenant", "status", "window", "query", "reason", "created"):
        table.add_column(Text(c), overflow="fold")
    for h in body["holds"]:
        status = "active" if h["active"] else f"released {h['released']}"
        table.add_row(Text(h["id"]), Text(h["tenant"]), Text(status), Text(_window(h)),
                      Text(h["query"]), Text(h["reason"]), Text(h["created"]))
    console().print(table)


@holds.command("show")
@url_option
@click.argument("hold_id", metavar="ID")
@_tenant
@_json
def show(url: str, token: str | None, hold_id: str, tenant: str | None, as_json: bool) -> None:
    """One hold and how many events match it in hot storage (access-logged)."""
    with Api(url, token) as api:
        h = api.get_json(f"/v1/holds/{quote(hold_id, safe='')}", tenant=tenant)
    if as_json:
        _echo_json(h)
        return
    matching = "unknown" if h["matching"] is None else (
        f"{h['matching']}+" if h["matching_capped"] else str(h["matching"]))
    status = "active" if h["active"] else \
        f"released {h['released']} by {h['released_by']} (seq {h['release_seq']})"
    for label, value in (("hold", h["id"]), ("tenant", h["tenant"]), ("status", status),
                         ("query", h["query"]), ("window", _window(h)),
                         ("reason", h["reason"]),
                         ("created", f"{h['created']} by {h['created_by']} "
                                     f"(seq {h['record_seq']})"),
                         ("matching", matching)):
        click.echo(f"{label:>9}: {value}")


@holds.command("release")
@url_option
@click.argument("hold_id", metavar="ID")
@click.option("--reason", required=True, help="Why the hold ends, for the record.")
@_tenant
@_json
def release(url: str, token: str | None, hold_id: str, reason: str, tenant: str | None,
            as_json: bool) -> None:
    """Release a hold; the release is recorded in the tenant's log. Needs admin."""
    with Api(url, token) as api:
        h = api.request("POST", f"/v1/holds/{quote(hold_id, safe='')}/release",
                        params=_params(tenant), json={"reason": reason}).json()
    if as_json:
        _echo_json(h)
        return
    click.echo(f"released hold {h['id']} in tenant {h['tenant']}; recorded at seq "
               f"{h['release_seq']}")
