"""`auditkeep config check FILE`: the server's configuration checked offline, whole."""

from __future__ import annotations

from pathlib import Path

import click

from auditkeep.cli.main import EXIT_FAILURE, CliError
from auditkeep.pipeline.config import read_config


@click.group()
def config() -> None:
    """The server's configuration file (sources, pipeline stages, tenants)."""


@config.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Check FILE as `auditkeep serve --config FILE` would, without starting anything.

    Prints every problem, one a line as FILE:LINE:COLUMN: PATH: MESSAGE, and exits 1;
    or a one-line summary and exits 0."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{file}: not UTF-8 text (byte {exc.start})", EXIT_FAILURE) from None
    cfg, problems = read_config(text, str(file), base=file.parent)
    if cfg is None:
        for problem in problems:
            click.echo(str(problem))
        n = len(problems)
        raise CliError(f"{file}: {n} problem{'s' if n != 1 else ''}", EXIT_FAILURE)
    tenants, stages, generic = len(cfg.tenants), cfg.stage_count, len(cfg.sources.generic)
    click.echo(f"ok: {tenants} tenant{_s(tenants)}, {stages} stage{_s(stages)}, "
               f"{generic} generic source{_s(generic)}")


def _s(n: int) -> str:
    return "" if n == 1 else "s"
