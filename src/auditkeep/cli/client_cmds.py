"""`emit`, `search` and `proof`: the CLI as an API client (the other investigation
commands are in `investigate`)."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click
import orjson

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.cli.query_api import DEFAULT_COLUMNS, QueryApi, column_list, saved_path, selection
from auditkeep.cli.render import EventTable, console
from auditkeep.errors import ProofError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.note import Verifier


def _resource(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    kind, sep, rid = value.partition(":")
    if not sep or not kind or not rid:
        raise CliError(f"--resource must be TYPE:ID, got {value!r}", EXIT_USAGE)
    return {"type": kind, "id": rid}


@click.command()
@url_option
@click.option("--file", "file", type=click.File("rb"), default=None,
              help="NDJSON file of events ('-' for stdin); flags are ignored.")
@click.option("--action", help="Dotted verb, e.g. orders.delete.")
@click.option("--actor", help="Actor id.")
@click.option("--actor-type", default="user", show_default=True,
              type=click.Choice(["user", "service", "system", "anonymous"]))
@click.option("--outcome", default="success", show_default=True,
              type=click.Choice(["success", "failure", "denied", "unknown"]))
@click.option("--resource", help="TYPE:ID of the resource acted on.")
@click.option("--category", default=None)
@click.option("--reason", default=None)
@click.option("--id", "event_id", default=None, help="Event id (for idempotent re-sends).")
@click.option("--metadata", default=None, help="JSON object of extra fields.")
@click.option("--tenant", default=None, help="Admin tokens: the tenant to write to.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response.")
def emit(url: str, token: str | None, file: Any, action: str | None, actor: str | None,
         actor_type: str, outcome: str, resource: str | None, category: str | None,
         reason: str | None, event_id: str | None, metadata: str | None, tenant: str | None,
         as_json: bool) -> None:
    """Send events to the server (one from flags, or many from --file)."""
    if file is not None:
        body = file.read()
        headers = {"Content-Type": "application/x-ndjson"}
    else:
        if not action or not actor:
            raise CliError("emit needs --action and --actor (or --file)", EXIT_USAGE)
        event: dict[str, Any] = {"action": action, "actor": {"id": actor, "type": actor_type},
                                 "outcome": outcome}
        for key, value in (("resource", _resource(resource)), ("category", category),
                           ("reason", reason), ("id", event_id)):
            if value is not None:
                event[key] = value
        if metadata is not None:
            try:
                event["metadata"] = orjson.loads(metadata)
            except orjson.JSONDecodeError as exc:
                raise CliError(f"--metadata is not JSON: {exc}", EXIT_USAGE) from None
        body = orjson.dumps(event)
        headers = {"Content-Type": "application/json"}
    api = Api(url, token)
    resp = api.request("POST", "/v1/events", content=body, headers=headers,
                       params={"tenant": tenant} if tenant else None).json()
    if as_json:
        click.echo(orjson.dumps(resp, option=orjson.OPT_INDENT_2).decode())
        return
    for r in resp["receipts"]:
        dup = "  (duplicate)" if r.get("duplicate") else ""
        click.echo(f"seq {r['seq']}  id {r['id']}{dup}")
    size = resp["checkpoint"].split("\n")[1]
    click.echo(f"committed to {resp['tenant']}; checkpoint tree size {size}")


@click.command()
@url_option
@click.argument("query", required=False)
@click.option("--saved", default=None, metavar="NAME",
              help="Run this saved search (its query, window and columns).")
@click.option("--actor")
@click.option("--action", help="Exact, or prefix.*")
@click.option("--resource-type")
@click.option("--resource-id")
@click.option("--outcome")
@click.option("--category")
@click.option("--source-service")
@click.option("--since", help="RFC 3339, or 15m / 24h / 7d.")
@click.option("--until")
@click.option("-q", "q", help="Full-text terms.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Events per page (with --all: 1000 unless given).")
@click.option("--cursor", default=None)
@click.option("--all", "follow", is_flag=True, help="Follow next_cursor to the last page.")
@click.option("--columns", default=None, metavar="A,B,C",
              help="Table columns as dotted paths [default: seq,time,actor,action,"
                   "resource,outcome; a saved search's own columns].")
@click.option("--tenant", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ndjson"]), default="table",
              show_default=True)
def search(url: str, token: str | None, query: str | None, saved: str | None,
           since: str | None, until: str | None, limit: int, cursor: str | None,
           follow: bool, columns: str | None, tenant: str | None, fmt: str,
           **filters: str | None) -> None:
    """Search events, newest first: with the query language (QUERY, see docs/query.md),
    a saved search (--saved), or the filter options."""
    ctx = click.get_current_context()
    used = [f"--{k.replace('_', '-')}" if k != "q" else "-q"
            for k, v in filters.items() if v is not None]
    if used and (query is not None or saved is not None):
        raise click.UsageError(f"give a QUERY or --saved, or filter options ({', '.join(used)}),"
                               " not both", ctx)
    if follow and ctx.get_parameter_source("limit") is click.core.ParameterSource.DEFAULT:
        limit = 1000
    cols = column_list(columns)
    with QueryApi(url, token) as api:
        if query is None and saved is None:
            path, text = "/v1/events", None
            params: dict[str, Any] = {"since": since, "until": until, "tenant": tenant,
                                      **filters}
        else:
            path = "/v1/search"
            params = selection(query, saved, since, until, tenant)
            text = params.get("query")
            if saved is not None and cols is None and fmt == "table":
                cols = api.call("GET", saved_path(saved),
                                params={"tenant": tenant}).json().get("columns")
        pages = _pages(api, path, text, {**params, "limit": limit}, cursor, follow)
        try:
            _print_pages(pages, fmt, follow, cols or DEFAULT_COLUMNS)
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)


def _print_pages(pages: Iterator[dict[str, Any]], fmt: str, follow: bool,
                 columns: Sequence[str]) -> None:
    """Each page as it arrives: NDJSON lines, table rows, or (`json`) one document."""
    if fmt == "ndjson":
        for page in pages:
            sys.stdout.write("".join(orjson.dumps(e).decode() + "\n" for e in page["events"]))
            sys.stdout.flush()
    elif fmt == "json" and not follow:
        click.echo(orjson.dumps(next(pages), option=orjson.OPT_INDENT_2).decode())
    elif fmt == "json":  # every page in one document, written as the pages arrive
        sep = '{"events": [\n'
        for page in pages:
            for e in page["events"]:
                sys.stdout.write(sep + orjson.dumps(e).decode())
                sep = ",\n"
            sys.stdout.flush()
        sys.stdout.write(('{"events": [' if sep.startswith("{") else "\n") +
                         '], "next_cursor": null}\n')
    else:
        out = console()
        table = EventTable(out, columns, streamed=follow)
        for page in pages:
            table.print(page["events"])
            if page.get("next_cursor") and not follow:
                out.print(f"more: --cursor {page['next_cursor']}")


def _pages(api: QueryApi, path: str, text: str | None, params: dict[str, Any],
           cursor: str | None, follow: bool) -> Iterator[dict[str, Any]]:
    """The first page from `cursor`, and with `follow` every next one."""
    while True:
        page: dict[str, Any] = api.call("GET", path, query=text,
                                        params={**params, "cursor": cursor}).json()
        yield page
        cursor = page.get("next_cursor")
        if not follow or not cursor:
            return


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


@click.command()
@url_option
@click.option("--tenant", default="default", show_default=True,
              help="Log name: a tenant, or T._access.")
@click.option("--seq", type=click.IntRange(0), default=None, help="Prove this entry's inclusion.")
@click.option("--since-checkpoint", "held", type=click.File("r"), default=None,
              help="A checkpoint note you kept: prove the current log extends it.")
def proof(url: str, token: str | None, tenant: str, seq: int | None, held: Any) -> None:
    """Fetch a proof and check it here, against the signed checkpoint and published keys."""
    if (seq is None) == (held is None):
        raise CliError("give --seq N (inclusion) or --since-checkpoint FILE (consistency)",
                       EXIT_USAGE)
    api = Api(url, token)
    note = api.request("GET", f"/v1/logs/{tenant}/checkpoint").text
    keys = api.get_json("/v1/keys")["keys"]
    verifiers = [Verifier.parse(k["verifier"]) for k in keys]
    cp, _ = open_checkpoint(note, verifiers)
    click.echo(f"checkpoint: {cp.origin} size {cp.size}, signature verified")
    try:
        if seq is not None:
            p = api.get_json(f"/v1/logs/{tenant}/proof/inclusion", seq=seq, size=cp.size)
            entry = api.request("GET", f"/v1/logs/{tenant}/entries/{seq}",
                                params={"format": "canonical"}).content
            leaf = merkle.leaf_hash(entry)
            if leaf != _b64(p["leaf_hash"]):
                raise ProofError(f"entry {seq}'s bytes hash to {leaf.hex()}, "
                                 f"the proof claims {_b64(p['leaf_hash']).hex()}")
            merkle.verify_inclusion(leaf, seq, cp.size, [_b64(h) for h in p["hashes"]], cp.root)
            click.echo(f"entry {seq}: leaf {leaf.hex()[:16]}... is in the tree of size "
                       f"{cp.size} ({len(p['hashes'])} proof hashes)")
        else:
            old, _ = open_checkpoint(held.read(), verifiers, origin=cp.origin)
            if old.size > cp.size:
                raise ProofError(f"the server's checkpoint ({cp.size}) is older than the one "
                                 f"you hold ({old.size}): the log was rolled back")
            if old.size == cp.size:
                if old.root != cp.root:
                    raise ProofError(f"two different roots for size {cp.size}: a fork")
            else:
                p = api.get_json(f"/v1/logs/{tenant}/proof/consistency",
                                 **{"from": old.size, "to": cp.size})
                merkle.verify_consistency(old.size, cp.size, [_b64(h) for h in p["hashes"]],
                                          old.root, cp.root)
            click.echo(f"tree of size {cp.size} extends your checkpoint of size {old.size}")
    except ProofError as exc:
        raise CliError(f"PROOF FAILED: {exc.detail}", EXIT_FAILURE) from None
    click.echo("ok")
