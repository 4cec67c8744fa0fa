"""`emit`, `search` and `proof`: the CLI as an API client."""

from __future__ import annotations

import base64
import sys
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
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


SEARCH_FILTERS = ("actor", "action", "resource_type", "resource_id", "outcome", "category",
                  "source_service", "since", "until", "q")


@click.command()
@url_option
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
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", default=None)
@click.option("--tenant", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ndjson"]), default="table",
              show_default=True)
def search(url: str, token: str | None, limit: int, cursor: str | None, tenant: str | None,
           fmt: str, **filters: str | None) -> None:
    """Search events, newest first."""
    api = Api(url, token)
    resp = api.get_json("/v1/events", limit=limit, cursor=cursor, tenant=tenant, **filters)
    events = resp["events"]
    if fmt == "json":
        click.echo(orjson.dumps(resp, option=orjson.OPT_INDENT_2).decode())
        return
    if fmt == "ndjson":
        for e in events:
            sys.stdout.write(orjson.dumps(e).decode() + "\n")
        return
    table = Table(box=None, header_style="bold")
    for col in ("seq", "time", "actor", "action", "resource", "outcome"):
        table.add_column(col)
    for e in events:
        res = e.get("resource")
        table.add_row(str(e["seq"]), e["time"], e["actor"]["id"], e["action"],
                      f"{res['type']}:{res['id']}" if res else "", e["outcome"])
    console = Console(width=200 if not sys.stdout.isatty() else None)
    console.print(table)
    if resp.get("next_cursor"):
        console.print(f"more: --cursor {resp['next_cursor']}")


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
