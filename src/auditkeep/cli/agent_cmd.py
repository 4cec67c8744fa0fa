"""`auditkeep agent run|status`: follow log files into the server, and watch it do so."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from auditkeep.agent.config import FORMATS, AgentConfig, config_from_flags, load_config
from auditkeep.agent.runner import STATUS_FILE, STATUS_INTERVAL, Agent, open_client
from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.errors import ConfigError

CLOSE_TIMEOUT = 5.0  # on exit, send what can be sent this fast; the rest stays spooled


@click.group()
def agent() -> None:
    """Follow log files into the server (JSON lines, Kubernetes audit logs)."""


@agent.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML configuration file (see docs/agent.md); or use the flags below.")
@click.option("--url", envvar="AUDITKEEP_URL", default=None, help="Server URL [env AUDITKEEP_URL].")
@click.option("--token", envvar="AUDITKEEP_TOKEN", default=None,
              help="Ingest token [env AUDITKEEP_TOKEN].")
@click.option("--file", "files", multiple=True, metavar="PATH", help="A file to follow "
              "(repeatable).")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS),
              help="Format of the files: once for all, or once per --file, in order.")
@click.option("--state", "state_dir", default=None, metavar="DIR",
              help="State directory: offsets, spool, status.json.")
@click.option("--tenant", default=None, help="Admin tokens: the tenant to write to.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def run(config_file: Path | None, url: str | None, token: str | None, files: tuple[str, ...],
        formats: tuple[str, ...], state_dir: str | None, tenant: str | None,
        metrics_port: int | None, log_level: str) -> None:
    """Follow files until stopped (SIGTERM or Ctrl-C)."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = _config(config_file, url, token, files, formats, state_dir, tenant, metrics_port)
    client = open_client(cfg)
    try:
        ag = Agent(cfg, client)
    except ConfigError as exc:
        client.close(0)
        raise CliError(exc.detail, EXIT_USAGE) from None
    except BaseException:
        client.close(0)
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"auditkeep agent: following {len(cfg.files)} file(s) into {cfg.url} "
               f"(state: {cfg.state_dir})", err=True)
    try:
        ag.run(stop)
    except ConfigError as exc:
        raise CliError(exc.detail, EXIT_USAGE) from None
    finally:
        try:
            client.close(CLOSE_TIMEOUT)  # offsets are saved already; what is unsent stays
        finally:  # spooled for the next run
            ag.close()  # the last status.json, with what the close sent
            for s, handler in previous.items():
                signal.signal(s, handler)


def _config(config_file: Path | None, url: str | None, token: str | None,
            files: tuple[str, ...], formats: tuple[str, ...], state_dir: str | None,
            tenant: str | None, metrics_port: int | None) -> AgentConfig:
    try:
        if config_file is not None:
            if files or formats or state_dir:
                raise CliError("give --config or --file/--format/--state, not both",
                               EXIT_USAGE)
            return load_config(config_file)
        if len(formats) not in (1, len(files)) and files:
            raise CliError(f"--format: give it once for all files or once per --file "
                           f"({len(files)}), not {len(formats)} times", EXIT_USAGE)
        pairs = [(f, formats[0] if len(formats) == 1 else formats[i])
                 for i, f in enumerate(files)]
        return config_from_flags(url=url, token=token, state_dir=state_dir, files=pairs,
                                 tenant=tenant, metrics_port=metrics_port)
    except ConfigError as exc:
        raise CliError(exc.detail, EXIT_USAGE) from None


COUNTER_ROWS = (
    ("read", "lines read"), ("events", "events spooled"), ("sent", "sent (acknowledged)"),
    ("retried", "retried"), ("spooled_bytes", "spooled bytes (unsent)"),
    ("pending", "pending events"), ("dropped", "dropped"), ("rejected", "rejected by server"),
    ("invalid", "invalid lines"), ("filtered", "filtered (k8s stage)"),
    ("duplicates", "duplicates (already stored)"), ("blocked", "spool-full pauses"))


@agent.command()
@click.option("--state", "state_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="The agent's state directory.")
@click.option("--json", "as_json", is_flag=True, help="Print status.json (and `running`).")
def status(state_dir: Path, as_json: bool) -> None:
    """Show an agent's counters and files (from its status.json)."""
    path = state_dir / STATUS_FILE
    try:
        snap: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise CliError(f"no agent status in {state_dir} (no agent has run with it)",
                       EXIT_FAILURE) from None
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}", EXIT_FAILURE) from None
    age = _age(snap.get("updated"))
    running = _alive(snap.get("pid")) and age is not None and age < 5 * STATUS_INTERVAL + 5
    if as_json:
        click.echo(orjson.dumps({**snap, "running": running}, option=orjson.OPT_INDENT_2))
        return
    console = Console()
    state = f"running (pid {snap.get('pid')})" if running else "not running"
    when = f", updated {age:.1f} s ago" if age is not None else ""
    console.print(f"agent {state}{when}; sending to {snap.get('url')}")
    if snap.get("last_error"):
        console.print(f"last error: {snap['last_error']}", markup=False)
    counters = Table(box=None, header_style="bold")
    counters.add_column("counter")
    counters.add_column("value", justify="right")
    for key, label in COUNTER_ROWS:
        counters.add_row(label, str(snap.get("counters", {}).get(key, 0)))
    console.print(counters)
    files = Table(box=None, header_style="bold")
    for col in ("file", "format", "offset", "line", "lag bytes", "rotations", "truncations"):
        files.add_column(col, justify="left" if col in ("file", "format") else "right")
    for f in snap.get("files", ()):
        files.add_row(str(f.get("path")), str(f.get("format")), _num(f.get("offset")),
                      _num(f.get("line")), _num(f.get("lag_bytes")), _num(f.get("rotations")),
                      _num(f.get("truncations")))
    console.print(files)


def _num(v: Any) -> str:
    return "-" if v is None else str(v)


def _age(updated: Any) -> float | None:
    if not isinstance(updated, str):
        return None
    try:
        return time.time() - datetime.fromisoformat(updated).timestamp()
    except ValueError:
        return None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
