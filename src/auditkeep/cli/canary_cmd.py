"""`auditkeep canary`: one synthetic event end to end (health/canary.py)."""

from __future__ import annotations

import click
import orjson

from auditkeep.cli.http import resolve_token, url_option
from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.errors import NoteError
from auditkeep.health.canary import canary_client, run_canary
from auditkeep.log.note import Verifier


@click.command()
@url_option
@click.option("--tenant", default="canary", show_default=True,
              help="The tenant the canary writes to (keep one for it: it is audited).")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds the event may take to become searchable.")
@click.option("--key", "trusted", multiple=True, metavar="VKEY",
              help="Verify checkpoints with these keys only, not the server's /v1/keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def canary(url: str, token: str | None, tenant: str, timeout: float,
           trusted: tuple[str, ...], as_json: bool) -> None:
    """Emit one event, find it by search, prove its inclusion and the log's consistency;
    print the latencies. Exit 1 naming the stage that failed."""
    try:
        verifiers = [Verifier.parse(k) for k in trusted] or None
    except NoteError as exc:
        raise CliError(f"--key: {exc.detail}", EXIT_USAGE) from None
    with canary_client(url, resolve_token(token), timeout) as client:
        result = run_canary(client, tenant=tenant, timeout=timeout, verifiers=verifiers)
    if as_json:
        click.echo(orjson.dumps(result.to_json()).decode())
    else:
        for stage, seconds in result.latencies.items():
            click.echo(f"{stage:<11} {seconds * 1000:8.1f} ms")
    if not result.ok:
        raise CliError(f"canary failed at {result.failed}: {result.detail}", EXIT_FAILURE)
    if not as_json:
        click.echo(f"ok: {result.id} seq {result.seq}, tree size {result.size}")
