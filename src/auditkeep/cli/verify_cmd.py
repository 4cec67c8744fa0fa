"""`auditkeep verify`: offline verification of a data directory."""

from __future__ import annotations

import time
from pathlib import Path

import click

from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.datadir import data_dir
from auditkeep.errors import NoteError
from auditkeep.log.keys import KeyRing
from auditkeep.log.note import Verifier
from auditkeep.log.verify import LogReport, verify_log

_RANGES_SHOWN = 10


def purged_line(report: LogReport) -> str | None:
    """How much retention purged, as purged (not missing): counts and the ranges with the
    seq of the retention record of each, the first few of them."""
    runs = report.purged_ranges
    if not runs:
        return None
    shown = ", ".join(f"{r.first}..{r.end - 1} (record seq {r.record_seq})"
                      for r in runs[:_RANGES_SHOWN])
    more = f", … and {len(runs) - _RANGES_SHOWN} more" if len(runs) > _RANGES_SHOWN else ""
    return (f"{report.log}: {report.purged:,} entries purged by retention in {len(runs)} "
            f"range{'s' if len(runs) != 1 else ''}: {shown}{more}")


def _journal(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [n.decode() for n in path.read_bytes().split(b"\x00\n") if n.strip()]


@click.command()
@click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None, metavar="DIR",
              help="Data directory [env AUDITKEEP_DATA].")
@click.option("--storage", default=None, envvar="AUDITKEEP_STORAGE", metavar="URL",
              help="Verify the logs in this PostgreSQL database (the keys and journal stay "
                   "in --data) [env AUDITKEEP_STORAGE].")
@click.option("--log", "only", multiple=True, help="Verify only these logs (repeatable).")
@click.option("--key", "trusted", multiple=True, metavar="VKEY",
              help="Trust only these verifier keys (name+id+key), not the database's list.")
def verify(data: str | None, storage: str | None, only: tuple[str, ...],
           trusted: tuple[str, ...]) -> None:
    """Recompute every leaf and root; check every checkpoint. Exit 1 if anything is wrong."""
    d = data_dir(data, storage)
    d.require()
    try:
        given = [Verifier.parse(k) for k in trusted]
    except NoteError as exc:
        raise CliError(f"--key: {exc.detail}", EXIT_USAGE) from None
    store = d.open_backend()
    try:
        ring = KeyRing(store, d.keys)
        logs = [log for log in store.list_logs() if not only or log.name in only]
        missing = set(only) - {log.name for log in logs}
        if missing:
            raise CliError(f"no log named {sorted(missing)[0]!r}", EXIT_USAGE)
        bad = 0
        total = 0
        started = time.perf_counter()
        for info in logs:
            verifiers = given or [k.verifier(info.origin) for k in ring.published()]
            report = verify_log(store, info, verifiers,
                                _journal(d.journal / f"{info.name}.checkpoints"))
            total += report.entries
            status = "ok" if report.ok else "TAMPERED"
            erased = (f", {report.erased} erased by {report.erasures} erasure record"
                      f"{'s' if report.erasures != 1 else ''}" if report.erased else "")
            click.echo(f"{info.name}: {report.entries} entries, {report.checkpoints} "
                       f"checkpoints{erased}: {status}")
            purged = purged_line(report)
            if purged is not None:
                click.echo(purged)
            for f in report.findings:
                click.echo(f"  {f}")
            bad += len(report.findings)
        elapsed = time.perf_counter() - started
        rate = f", {total / elapsed:,.0f} entries/s" if elapsed > 0 and total else ""
        click.echo(f"verified {len(logs)} logs, {total} entries in {elapsed:.2f}s{rate}")
    finally:
        store.close()
    if bad:
        raise CliError(f"{bad} problem(s) found", EXIT_FAILURE)
