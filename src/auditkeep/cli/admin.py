"""`keys` and `tokens`: administration straight on a data directory (no server needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table

from auditkeep.auth import SCOPES, create_token
from auditkeep.cli.main import EXIT_USAGE, CliError
from auditkeep.datadir import DataDir, data_dir
from auditkeep.log.keys import KeyRing
from auditkeep.storage.base import Backend

data_option = click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None,
                           metavar="DIR", help="Data directory [env AUDITKEEP_DATA].")


@contextmanager
def _backend(data: str | None) -> Iterator[tuple[DataDir, Backend]]:
    d = data_dir(data)
    d.require()
    store = d.open_backend()
    try:
        yield d, store
    finally:
        store.close()


@click.group()
def keys() -> None:
    """Checkpoint signing keys."""


@keys.command("list")
@data_option
def keys_list(data: str | None) -> None:
    """Every key ever used, with each log's verifier key string."""
    with _backend(data) as (d, store):
        ring = KeyRing(store, d.keys)
        origins = [log.origin for log in store.list_logs()]
        for key in ring.published():
            state = "active" if key.active else f"retired {key.retired}"
            click.echo(f"key {key.public_key.hex()[:16]}  created {key.created}  {state}")
            for origin in origins:
                click.echo(f"  {key.verifier(origin).to_string()}")


@keys.command("rotate")
@data_option
def keys_rotate(data: str | None) -> None:
    """Make a new signing key; old keys stay published for verifying old checkpoints."""
    with _backend(data) as (d, store):
        new = KeyRing(store, d.keys).rotate()
        click.echo(f"new active key {new.public_key.hex()[:16]}; a running server picks it up "
                   "within a second")


@click.group()
def tokens() -> None:
    """API tokens (stored only as hashes)."""


@tokens.command("create")
@data_option
@click.option("--tenant", default=None, help="Tenant the token is bound to.")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(SCOPES), help="Repeat for several scopes.")
@click.option("--name", default="", help="A label to recognise the token by.")
def tokens_create(data: str | None, tenant: str | None, scopes: tuple[str, ...],
                  name: str) -> None:
    """Create a token and print its secret once."""
    if tenant is None and "admin" not in scopes:
        raise CliError("--tenant is required unless --scope admin", EXIT_USAGE)
    with _backend(data) as (_d, store):
        secret, record = create_token(store, tenant=tenant, scopes=list(scopes), name=name)
    click.echo(secret)
    click.echo(f"token {record.id}: tenant {record.tenant or '*'}, scopes "
               f"{','.join(record.scopes)} (the secret above is not stored; keep it)", err=True)


@tokens.command("list")
@data_option
def tokens_list(data: str | None) -> None:
    """Tokens, without their secrets."""
    with _backend(data) as (_d, store):
        table = Table(box=None, header_style="bold")
        for col in ("id", "tenant", "scopes", "name", "created", "revoked"):
            table.add_column(col)
        for t in store.list_tokens():
            table.add_row(t.id, t.tenant or "*", ",".join(t.scopes), t.name, t.created,
                          t.revoked or "")
        Console().print(table)


@tokens.command("revoke")
@data_option
@click.argument("token_id")
def tokens_revoke(data: str | None, token_id: str) -> None:
    """Revoke a token by its id (tok_...)."""
    from datetime import UTC, datetime

    with _backend(data) as (_d, store):
        when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if not store.revoke_token(token_id, when):
            raise CliError(f"no active token with id {token_id!r}", EXIT_USAGE)
    click.echo(f"revoked {token_id}")
