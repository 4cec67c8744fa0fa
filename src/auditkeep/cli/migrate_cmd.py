"""`auditkeep migrate`: move an embedded data directory's logs into PostgreSQL."""

from __future__ import annotations

import click

from auditkeep.cli.main import EXIT_USAGE, CliError
from auditkeep.datadir import DataDir, data_path
from auditkeep.storage.migrate import migrate as run_migration
from auditkeep.storage.open import describe, is_postgres, open_store


@click.command()
@click.option("--from", "source", required=True, metavar="DIR",
              help="The embedded data directory to copy (DIR/auditkeep.db).")
@click.option("--to", "target", required=True, metavar="URL",
              help="The PostgreSQL database to copy it into (postgresql://…); it must not "
                   "hold any of the directory's logs yet.")
def migrate(source: str, target: str) -> None:
    """Copy every log (seqs, entries, checkpoints) and what goes with it into PostgreSQL.

    Every leaf and node is recomputed from the entries and every checkpoint checked
    against the copy. Afterwards, serve with `--storage URL --data DIR` (the keys stay
    in DIR) and run `auditkeep verify --storage URL --data DIR`."""
    if not is_postgres(target):
        raise CliError(f"--to {target!r} is not a postgresql:// URL", EXIT_USAGE)
    d = DataDir(data_path(source))
    d.require()
    src = d.open_backend()
    try:
        dst = open_store(target)
        try:
            def progress(name: str, done: int, total: int) -> None:
                if done == total or done % (64 * 4096) == 0:
                    click.echo(f"  {name}: {done}/{total}", err=True)

            copied = run_migration(src, dst, progress=progress)
        finally:
            dst.close()
    finally:
        src.close()
    for m in copied:
        erased = f", {m.erased} erased" if m.erased else ""
        purged = f", {m.purged} purged by retention" if m.purged else ""
        click.echo(f"{m.name}: {m.entries} entries, {m.checkpoints} checkpoints{erased}"
                   f"{purged}")
    click.echo(f"migrated {len(copied)} log(s) from {d.root} to {describe(target)}; the "
               f"signing keys stay in {d.keys}: serve with --storage URL --data {d.root}")
