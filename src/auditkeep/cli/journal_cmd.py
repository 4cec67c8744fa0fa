"""`auditkeep journal compact`: thin out stored checkpoints and checkpoint journals now,
as a running server does every hour (log/compaction.py)."""

from __future__ import annotations

import click

from auditkeep.datadir import data_dir
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService


@click.group()
def journal() -> None:
    """Checkpoint journals (DATA/journal/<log>.checkpoints)."""


@journal.command("compact")
@click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None, metavar="DIR",
              help="Data directory [env AUDITKEEP_DATA].")
def compact(data: str | None) -> None:
    """Keep every checkpoint of the last hour, one per hour for a week, one per day
    before that, and the first and newest; drop the rest from the database and the
    journal. Safe while the server runs; checkpoints that do not check out are kept."""
    d = data_dir(data)
    d.require()
    store = d.open_backend()
    try:
        logs = LogService(store, KeyRing(store, d.keys), journal_dir=d.journal)
        for done in logs.compact_checkpoints():
            click.echo(str(done))
    finally:
        store.close()
