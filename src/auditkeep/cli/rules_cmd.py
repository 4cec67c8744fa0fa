"""`auditkeep rules check|test`: rule files checked and their test cases run, offline."""

from __future__ import annotations

from pathlib import Path

import click

from auditkeep.cli.main import EXIT_FAILURE, CliError
from auditkeep.detect.rules import RuleError
from auditkeep.detect.ruleset import RuleFile, RuleSet, load_file, rule_paths
from auditkeep.detect.testing import run_file


@click.group()
def rules() -> None:
    """Detection rule files (native YAML and Sigma): docs/rules.md."""


def _files(paths: tuple[Path, ...]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(rule_paths(p) if p.is_dir() else [p])
    if not out:
        raise CliError("no rule files (*.yml, *.yaml) given", EXIT_FAILURE)
    return out


def _load(paths: tuple[Path, ...]) -> list[RuleFile]:
    loaded, problems = [], []
    for p in _files(paths):
        try:
            loaded.append(load_file(p))
        except RuleError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            RuleSet(loaded)  # rule ids are unique across the files
        except RuleError as exc:
            problems.append(str(exc))
    if problems:
        for problem in problems:
            click.echo(problem)
        n = len(problems)
        raise CliError(f"{n} rule file{'s' if n != 1 else ''} refused", EXIT_FAILURE)
    return loaded


_PATHS = click.argument("paths", nargs=-1, required=True,
                        type=click.Path(exists=True, path_type=Path))


@rules.command()
@_PATHS
def check(paths: tuple[Path, ...]) -> None:
    """Load rule FILES or DIRECTORIES as the server would; print each refusal's reason."""
    loaded = _load(paths)
    n = sum(len(f.rules) for f in loaded)
    click.echo(f"ok: {n} rule{'s' if n != 1 else ''} in {len(loaded)} file"
               f"{'s' if len(loaded) != 1 else ''}")


@rules.command()
@_PATHS
def test(paths: tuple[Path, ...]) -> None:
    """Run the `tests:` of rule FILES or DIRECTORIES: events in, expected alerts out."""
    failed = passed = 0
    for rf in _load(paths):
        for result in run_file(rf):
            if result.ok:
                passed += 1
                click.echo(f"PASS {rf.path}: {result.name}")
                continue
            failed += 1
            click.echo(f"FAIL {rf.path}: {result.name}")
            for problem in result.problems:
                click.echo(f"     {problem}")
    if failed:
        raise CliError(f"{failed} of {failed + passed} rule test(s) failed", EXIT_FAILURE)
    click.echo(f"ok: {passed} rule test{'s' if passed != 1 else ''} passed")
