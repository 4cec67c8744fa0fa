"""`auditkeep witness`: run a C2SP tlog-witness for other logs, and make its key."""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path

import click

from auditkeep.cli.main import EXIT_USAGE, CliError
from auditkeep.errors import ConfigError, NoteError
from auditkeep.log.keys import write_secret
from auditkeep.log.note import Verifier
from auditkeep.storage.open import is_postgres, open_store
from auditkeep.witness.cosignature import WitnessSigner

DEFAULT_DATA = ".auditkeep-witness"


@click.group()
def witness() -> None:
    """A witness: cosigns logs' checkpoints, refusing rollbacks and forks (docs/witnesses.md)."""


@witness.command("keygen")
@click.argument("name")
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (mode 0600; must not exist).")
def keygen(name: str, output: Path) -> None:
    """Make a witness key named NAME (a schema-less URL such as witness.example/w1) and
    print its verifier key, which logs and clients configure."""
    if output.exists():
        raise CliError(f"{output} exists; refusing to overwrite a witness key", EXIT_USAGE)
    try:
        signer = WitnessSigner.generate(name)
    except NoteError as exc:
        raise CliError(f"witness name: {exc.detail}", EXIT_USAGE) from None
    write_secret(output, signer.to_string() + "\n")
    click.echo(signer.vkey)


def _signer(path: Path) -> WitnessSigner:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read the witness key {path}: {exc.strerror}", EXIT_USAGE
                       ) from None
    try:
        return WitnessSigner.parse(text)
    except NoteError as exc:
        raise CliError(f"{path}: {exc.detail}", EXIT_USAGE) from None


@witness.command("vkey")
@click.option("--key", "key_file", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path), help="The witness key file.")
def vkey(key_file: Path) -> None:
    """Print the verifier key of a witness key file."""
    click.echo(_signer(key_file).vkey)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"--listen {value!r}: expected HOST:PORT", EXIT_USAGE)
    return host.strip("[]") or "127.0.0.1", int(port)


@witness.command("serve")
@click.option("--key", "key_file", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The witness key (from `auditkeep witness keygen`).")
@click.option("--log", "log_keys", multiple=True, required=True, metavar="VKEY",
              help="A log's verifier key (repeatable); its key name is the log's origin.")
@click.option("--listen", default="127.0.0.1:8190", show_default=True, metavar="HOST:PORT")
@click.option("--data", default=None, metavar="DIR",
              help=f"Directory of the witness's SQLite state [default {DEFAULT_DATA}].")
@click.option("--storage", default=None, metavar="URL",
              help="Keep the state in PostgreSQL instead (postgresql://…).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(key_file: Path, log_keys: tuple[str, ...], listen: str, data: str | None,
          storage: str | None, log_level: str) -> None:
    """Serve POST /add-checkpoint (c2sp.org/tlog-witness) and GET /healthz."""
    import uvicorn

    from auditkeep.witness.server import Witness, witness_app

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signer = _signer(key_file)
    logs = []
    for text in log_keys:
        try:
            logs.append(Verifier.parse(text.strip()))
        except NoteError as exc:
            raise CliError(f"--log: {exc.detail}", EXIT_USAGE) from None
    if storage is not None and data is not None:
        raise CliError("--data and --storage are alternatives; give one", EXIT_USAGE)
    if storage is not None and not is_postgres(storage):
        raise CliError(f"--storage {storage!r} is not a postgresql:// URL", EXIT_USAGE)
    host, port = _listen(listen)
    if storage is None:
        root = Path(data or DEFAULT_DATA)
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {root}: {exc.strerror}") from None
        store = open_store(str(root / "witness.db"))
        where = str((root / "witness.db").resolve())
    else:
        store = open_store(storage)
        where = "PostgreSQL"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        store.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    app = witness_app(Witness(signer, logs, store))
    origins = ", ".join(sorted({v.name for v in logs}))
    click.echo(f"auditkeep witness {signer.name} serving http://{host}:{sock.getsockname()[1]}"
               f"  (state: {where}; logs: {origins})")
    click.echo(f"witness key: {signer.vkey}")
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False))
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
