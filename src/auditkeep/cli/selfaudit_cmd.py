"""`auditkeep self-audit`: one self-audit pass (health/selfaudit.py) over a data directory,
offline and read-only; exit 1 on a finding."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import click
import orjson

from auditkeep.cli.main import EXIT_FAILURE, CliError
from auditkeep.datadir import DataDir, data_dir
from auditkeep.health.selfaudit import SelfAudit
from auditkeep.log.keys import KeyRing

if TYPE_CHECKING:
    from auditkeep.datadir import Node


@dataclass
class _Offline:
    """What SelfAudit reads of a Node (store, keys, data), without opening one: no
    sequencer, no index, no token is created; nothing is written."""

    store: Any
    keys: KeyRing
    data: DataDir
    options: dict[str, Any] = field(default_factory=dict)


@click.command("self-audit")
@click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None, metavar="DIR",
              help="Data directory [env AUDITKEEP_DATA].")
@click.option("--storage", default=None, envvar="AUDITKEEP_STORAGE", metavar="URL",
              help="Audit the logs in this PostgreSQL database (the keys and journal stay "
                   "in --data) [env AUDITKEEP_STORAGE].")
@click.option("--spot-checks", default=64, show_default=True, type=click.IntRange(min=0),
              help="Random stored tiles to check against recomputed hashes.")
@click.option("--quick", is_flag=True,
              help="Skip the full verify (checkpoints and spot checks only).")
@click.option("--seed", type=int, default=None,
              help="Seed the spot-check choice (repeatable runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def self_audit(data: str | None, storage: str | None, spot_checks: int, quick: bool,
               seed: int | None, as_json: bool) -> None:
    """Check stored checkpoints (signatures, successive consistency), spot-check tiles,
    and run a full verify; exit 1 naming each finding."""
    d = data_dir(data, storage)
    d.require()
    store = d.open_backend()
    try:
        node = cast("Node", _Offline(store, KeyRing(store, d.keys), d))
        result = SelfAudit(node, spot_checks=spot_checks,
                           rng=random.Random(seed)).run(full=not quick)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(result.to_json()).decode())
    else:
        for finding in result.findings:
            click.echo(finding)
        click.echo(f"self-audit ({', '.join(result.checks)}): "
                   + ("ok" if result.ok else f"{len(result.findings)} finding(s)")
                   + f" in {result.seconds:.2f}s")
    if not result.ok:
        raise CliError(f"self-audit failed: {', '.join(result.failed)}", EXIT_FAILURE)
