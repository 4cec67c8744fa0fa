"""`auditkeep schemas put|get`: per-action JSON Schemas over the HTTP API."""

from __future__ import annotations

from typing import Any

import click
import orjson

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_USAGE, CliError


@click.group()
def schemas() -> None:
    """Per-action JSON Schemas for the metadata/resource of an action (versioned)."""


@schemas.command(name="put")
@url_option
@click.option("--tenant", default=None, help="Admin tokens: the tenant the schema is for.")
@click.argument("action")
@click.argument("file", type=click.File("rb"))
def put(url: str, token: str | None, tenant: str | None, action: str, file: Any) -> None:
    """Register FILE (a JSON Schema, draft 2020-12) as the next version for ACTION."""
    body = file.read()
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{file.name}: not JSON ({exc})", EXIT_USAGE) from None
    with Api(url, token) as api:
        answer = api.request("PUT", f"/v1/schemas/{action}", content=body,
                             params={"tenant": tenant} if tenant else {},
                             headers={"Content-Type": "application/json"}).json()
    click.echo(f"{answer['action']}: schema version {answer['version']} for tenant "
               f"{answer['tenant']}")


@schemas.command(name="get")
@url_option
@click.option("--tenant", default=None, help="Admin tokens: the tenant.")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the latest.")
@click.argument("action")
def get(url: str, token: str | None, tenant: str | None, version: int | None,
        action: str) -> None:
    """Print ACTION's schema (JSON)."""
    with Api(url, token) as api:
        answer = api.get_json(f"/v1/schemas/{action}", tenant=tenant, version=version)
    click.echo(f"# {answer['action']} version {answer['version']} (tenant {answer['tenant']})",
               err=True)
    click.echo(orjson.dumps(answer["schema"], option=orjson.OPT_INDENT_2).decode())
