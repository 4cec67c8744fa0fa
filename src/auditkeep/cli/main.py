"""The `auditkeep` command: one top-level error handler, one line per user mistake."""

from __future__ import annotations

import sys
from typing import Any

import click
import httpx

from auditkeep import __version__
from auditkeep.errors import AuditkeepError, ConfigError

EXIT_FAILURE = 1  # verify found tampering; a server answered with an error
EXIT_USAGE = 2  # the command was used wrongly


class AuditkeepGroup(click.Group):
    """Turns every expected error into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise CliError(exc.detail, EXIT_USAGE) from None
        except AuditkeepError as exc:
            raise CliError(exc.detail, EXIT_FAILURE) from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the server: {exc}", EXIT_FAILURE) from None
        except OSError as exc:
            raise CliError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                           EXIT_FAILURE) from None


class CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click's is a class default

    def show(self, file: Any = None) -> None:
        click.echo(f"auditkeep: {self.format_message()}", err=True)


@click.group(cls=AuditkeepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditkeep")
def cli() -> None:
    """auditkeep: a tamper-evident audit log you can prove."""


def _register() -> None:
    from auditkeep.cli import (
        admin,
        agent_cmd,
        alerts_cmd,
        archive_cmd,
        canary_cmd,
        client_cmds,
        config_cmd,
        evidence_cmd,
        holds_cmd,
        import_cmd,
        investigate,
        journal_cmd,
        migrate_cmd,
        privacy_cmd,
        retention_cmd,
        rules_cmd,
        schemas_cmd,
        selfaudit_cmd,
        serve,
        verify_cmd,
        witness_cmd,
    )

    cli.add_command(serve.serve)
    cli.add_command(client_cmds.emit)
    cli.add_command(client_cmds.search)
    cli.add_command(investigate.aggregate)
    cli.add_command(investigate.context)
    cli.add_command(investigate.export)
    cli.add_command(evidence_cmd.evidence)
    cli.add_command(investigate.saved)
    cli.add_command(client_cmds.proof)
    cli.add_command(verify_cmd.verify)
    cli.add_command(journal_cmd.journal)
    cli.add_command(admin.keys)
    cli.add_command(admin.tokens)
    cli.add_command(agent_cmd.agent)
    cli.add_command(import_cmd.import_)
    cli.add_command(config_cmd.config)
    cli.add_command(schemas_cmd.schemas)
    cli.add_command(rules_cmd.rules)
    cli.add_command(alerts_cmd.alerts)
    cli.add_command(privacy_cmd.erase)
    cli.add_command(privacy_cmd.subjects)
    cli.add_command(privacy_cmd.scan_pii)
    cli.add_command(migrate_cmd.migrate)
    cli.add_command(witness_cmd.witness)
    cli.add_command(holds_cmd.holds)
    cli.add_command(retention_cmd.retention)
    cli.add_command(archive_cmd.archive)
    cli.add_command(canary_cmd.canary)
    cli.add_command(selfaudit_cmd.self_audit)


_register()


def main() -> None:
    """Entry point: usage mistakes are one line too (click would print three)."""
    try:
        code = cli.main(prog_name="auditkeep", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `auditkeep`: show the help
            click.echo(exc.format_message(), err=True)
            sys.exit(EXIT_USAGE)
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"auditkeep: {exc.format_message()}{where}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("auditkeep: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
