"""`auditkeep serve`: the server on an embedded data directory."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import click
import uvicorn

from auditkeep.cli.scale import BusConnection, ByteSize, ScaleOptions
from auditkeep.datadir import DataDir, Node, data_dir, open_node
from auditkeep.errors import ConfigError
from auditkeep.pipeline.config import ServerConfig, load_config
from auditkeep.pipeline.config_keeping import RetentionConfig
from auditkeep.pipeline.config_ops import CanaryConfig, SelfAuditConfig
from auditkeep.server.app import create_app
from auditkeep.server.http import header_timeout_protocol
from auditkeep.server.syslog import SyslogListener, SyslogOptions, parse_address
from auditkeep.server.workers import IngestWorkers

if TYPE_CHECKING:
    from auditkeep.retention import RetentionJob


@click.command()
@click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None, metavar="DIR",
              help="Data directory [default: ./.auditkeep-data; env AUDITKEEP_DATA].")
@click.option("--storage", default=None, envvar="AUDITKEEP_STORAGE", metavar="URL",
              help="Keep the logs and the search index in PostgreSQL "
                   "(postgresql://user@host:5432/db) instead of DATA/auditkeep.db: "
                   "docs/scaling.md [env AUDITKEEP_STORAGE].")
@click.option("--bus", default=None, envvar="AUDITKEEP_BUS", metavar="URL",
              help="Send ingested events through this NATS JetStream server "
                   "(nats://host:4222) to the sequencers; needs --storage [env AUDITKEEP_BUS].")
@click.option("--role", default="all", show_default=True, envvar="AUDITKEEP_ROLE",
              type=click.Choice(["all", "ingest", "sequencer", "read"]),
              help="With --bus: ingest (validate, publish), sequencer (sequence, sign, "
                   "index, detect), read (queries only) or all of them [env AUDITKEEP_ROLE].")
@click.option("--bus-stream", default="AUDITKEEP", show_default=True, metavar="NAME",
              envvar="AUDITKEEP_BUS_STREAM", help="The JetStream stream (created if absent).")
@click.option("--bus-replicas", default=1, show_default=True, type=click.IntRange(1, 5),
              envvar="AUDITKEEP_BUS_REPLICAS", help="Replicas of the stream (3 in production).")
@click.option("--bus-max-bytes", default="8GiB", show_default=True, type=ByteSize(),
              envvar="AUDITKEEP_BUS_MAX_BYTES",
              help="The stream's size limit, which JetStream reserves on its disk; a full "
                   "stream answers ingest with 503 [env AUDITKEEP_BUS_MAX_BYTES].")
@click.option("--lease-ttl", default=5.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(min=0.5), envvar="AUDITKEEP_LEASE_TTL",
              help="How long a sequencer's hold on a log lasts unrenewed (failover time).")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="AUDITKEEP_HOST")
@click.option("--port", default=8180, show_default=True, type=click.IntRange(0, 65535),
              envvar="AUDITKEEP_PORT")
@click.option("--origin-prefix", default="auditkeep.local", show_default=True,
              envvar="AUDITKEEP_ORIGIN_PREFIX",
              help="Checkpoint origins are PREFIX/<log>, e.g. auditkeep.local/acme.")
@click.option("--queue-limit", default=100_000, show_default=True, type=click.IntRange(1),
              help="Events a log may have waiting before ingest answers 503.")
@click.option("--indexer", default="process", show_default=True,
              type=click.Choice(["process", "thread"]),
              help="Run the search indexer in a child process (uses a second core) or a "
                   "thread.")
@click.option("--ingest-workers", default=None, type=click.IntRange(0),
              envvar="AUDITKEEP_INGEST_WORKERS", metavar="N",
              help="Worker processes that decode, validate and prepare POST /v1/events "
                   "bodies (0: in the server process) [default: one a core, at most 4; "
                   "0 on one core; env AUDITKEEP_INGEST_WORKERS].")
@click.option("--config", "config_file", default=None, envvar="AUDITKEEP_CONFIG",
              type=click.Path(dir_okay=False), metavar="FILE",
              help="Pipeline configuration (sources, stages, tenants): docs/pipeline.md. "
                   "Checked whole before the server starts [env AUDITKEEP_CONFIG].")
@click.option("--syslog-tcp", default=None, metavar="HOST:PORT",
              help="Accept syslog (RFC 5424/3164) over TCP here. Off by default.")
@click.option("--syslog-udp", default=None, metavar="HOST:PORT",
              help="Accept syslog over UDP here (no backpressure: prefer TCP).")
@click.option("--syslog-tenant", default="default", show_default=True,
              help="The tenant whose log syslog messages go to.")
@click.option("--syslog-tls-cert", default=None, type=click.Path(exists=True, dir_okay=False),
              help="With --syslog-tls-key: syslog over TLS on the TCP port (RFC 5425).")
@click.option("--syslog-tls-key", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_dir", default=None, envvar="AUDITKEEP_RULES", metavar="DIR",
              type=click.Path(file_okay=False),
              help="Detection rules directory (*.yml, alerting.yaml), reloaded on change: "
                   "docs/rules.md [default: DATA/rules, created with the shipped rules; "
                   "env AUDITKEEP_RULES].")
@click.option("--detection/--no-detection", default=True, show_default=True,
              help="Run the detection engine, alert records and delivery.")
@click.option("--pii-scan-interval", default=3600.0, show_default=True, metavar="SECONDS",
              envvar="AUDITKEEP_PII_SCAN_INTERVAL", type=click.FloatRange(min=0),
              help="Scan newly stored records for PII and secrets this often (metric "
                   "auditkeep_pii_findings; 0: off) [env AUDITKEEP_PII_SCAN_INTERVAL].")
@click.option("--header-timeout", default=10.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(min=0.1), envvar="AUDITKEEP_HEADER_TIMEOUT",
              help="Close a connection whose request headers have not all arrived this "
                   "long after it opened (idle and slowloris clients) [env "
                   "AUDITKEEP_HEADER_TIMEOUT].")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(data: str | None, storage: str | None, bus: str | None, role: str, bus_stream: str,
          bus_replicas: int, bus_max_bytes: int, lease_ttl: float, host: str, port: int,
          origin_prefix: str,
          queue_limit: int, indexer: str, ingest_workers: int | None, config_file: str | None,
          syslog_tcp: str | None,
          syslog_udp: str | None, syslog_tenant: str, syslog_tls_cert: str | None,
          syslog_tls_key: str | None, rules_dir: str | None, detection: bool,
          pii_scan_interval: float, header_timeout: float, log_level: str) -> None:
    """Start the HTTP server (creates the data directory on first start)."""
    # Ingest allocates many short-lived containers; CPython's default gen-0 threshold
    # (700) then spends ~40% of prepare time in the cyclic GC (measured in bench/). With
    # 8 requests of 1,000 events in flight (~50k live containers), 50,000 still promoted
    # most of them; 200,000 lets them die young: server CPU 28.4 -> 24.7 µs an event on
    # HTTP bulk ingest (gc.freeze() after start-up measured no better).
    gc.set_threshold(200_000, 20, 100)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    config = load_config(Path(config_file)) if config_file else None  # every problem at once
    if config is not None:
        origin_prefix = config.origin_prefix or origin_prefix
        sl = config.sources.syslog
        if sl.enabled:  # flags win over the file
            syslog_tcp = syslog_tcp or (f"{sl.tcp[0]}:{sl.tcp[1]}" if sl.tcp else None)
            syslog_udp = syslog_udp or (f"{sl.udp[0]}:{sl.udp[1]}" if sl.udp else None)
            syslog_tenant = sl.tenant if syslog_tenant == "default" else syslog_tenant
            syslog_tls_cert = syslog_tls_cert or (str(sl.tls_cert) if sl.tls_cert else None)
            syslog_tls_key = syslog_tls_key or (str(sl.tls_key) if sl.tls_key else None)
    d = data_dir(data, storage)
    scale = ScaleOptions(bus, role, bus_stream, bus_replicas, lease_ttl, bus_max_bytes)
    scale.check(d)
    first = not d.exists()
    connection = scale.connect(d)  # before the node: a bad bus URL is one line, early
    n = open_node(d, origin_prefix=origin_prefix,
                  indexer=indexer if scale.indexes else "none",
                  sequencer_options={"max_pending": queue_limit},
                  appender=connection.appender if connection else None)
    n.options["config"] = config
    n.options["role"] = role
    if connection is not None:
        connection.attach(n)
    if detection and scale.background:
        _detection(n, Path(rules_dir) if rules_dir else d.rules)
    if pii_scan_interval > 0 and scale.background:
        from auditkeep.privacy.scan import PiiScanJob

        n.options["pii_scan"] = PiiScanJob(n.store, interval=pii_scan_interval)
    if config is not None and config.witnesses and scale.background:
        from auditkeep.witness.job import WitnessJob

        n.options["witness"] = WitnessJob(n.logs, config.witnesses)
        click.echo(f"witnesses: {', '.join(w.name for w in config.witnesses)}")
    if config is not None and config.archive is not None:
        from auditkeep.archive.job import ArchiveJob
        from auditkeep.archive.objects import open_objects

        a = config.archive
        # Every process answers /v1/archive; only the one running background jobs seals.
        n.options["archive"] = ArchiveJob(n.logs, open_objects(a.url, **a.store_options()),
                                          a.range, a.schedule)
        click.echo(f"archive: {a.url} (ranges of {a.range:,}, every {a.schedule:g}s)")
    n.options["retention"] = _retention(n, config, scale.background)
    audit_cfg = config.self_audit if config is not None else SelfAuditConfig()
    if audit_cfg.every is not None and scale.background:
        from auditkeep.health.selfaudit import SelfAuditJob

        n.options["self_audit"] = SelfAuditJob(
            n, every=audit_cfg.every, spot_checks=audit_cfg.spot_checks,
            full_every=audit_cfg.full_verify if audit_cfg.full_verify is not None
            else float("inf"))
    if scale.background:  # burn-rate alerts over the SLIs (docs/slos.md)
        from auditkeep.health.slo import slo_job
        from auditkeep.pipeline.config_ops import DEFAULT_SLOS

        n.options["slo"] = slo_job(n, config.slos if config is not None else DEFAULT_SLOS)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        _shutdown(n, connection)
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    url = f"http://{host}:{port}"
    where = d.describe() if d.storage is None else (
        f"{d.describe()}, keys in {d.root.resolve()}")
    roles = "" if connection is None else f", role {role}, bus {bus}"
    click.echo(f"auditkeep serving {url}  (data: {where}{roles})")
    if first or n.created_admin_token:
        click.echo(f"admin token: {d.admin_token}  (mode 0600; keep it secret)")
    click.echo("send an event:\n"
               f"  curl -sS -X POST {url}/v1/events -H \"Authorization: Bearer $(cat "
               f"{d.admin_token})\" -H 'Content-Type: application/json' -d "
               "'{\"action\":\"orders.delete\",\"actor\":{\"id\":\"alice\",\"type\":\"user\"},"
               "\"outcome\":\"success\",\"resource\":{\"type\":\"order\",\"id\":\"42\"}}'",
               )
    server: uvicorn.Server | None = None  # set below; the canary runs while it serves
    canary_cfg = config.canary if config is not None else CanaryConfig()
    if canary_cfg.every is not None and scale.background:
        from auditkeep.health.canary_job import CanaryJob, loopback_url

        def serving() -> bool:
            return server is not None and server.started and not server.should_exit

        n.options["canary"] = CanaryJob(
            n, loopback_url(host, port), every=canary_cfg.every, tenant=canary_cfg.tenant,
            timeout=canary_cfg.timeout, serving=serving)
        click.echo(f"canary: every {canary_cfg.every:g}s, tenant {canary_cfg.tenant}")
    n.start(compact=scale.background)
    listener = _syslog(n, syslog_tcp, syslog_udp, syslog_tenant, syslog_tls_cert,
                       syslog_tls_key)
    app = create_app(n)
    workers = _ingest_workers(n, d, config, ingest_workers)
    uv_config = uvicorn.Config(app, log_level=log_level, access_log=False,
                               http=header_timeout_protocol(header_timeout),
                               timeout_graceful_shutdown=10)
    server = uvicorn.Server(uv_config)
    # uvicorn re-raises the SIGTERM it shut down on once it is done; with the default
    # action that killed the process before the cleanup below ran, leaving the indexer
    # and ingest workers orphaned with the databases open (their WALs checkpointed later,
    # under a backup being copied). Exit by SystemExit instead, so cleanup runs.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        if listener is not None:
            listener.stop()
        if workers is not None:
            workers.close()
        _shutdown(n, connection)


def _shutdown(n: Node, connection: BusConnection | None) -> None:
    if connection is not None:
        connection.stop(n)
    n.close()
    if connection is not None:
        connection.close()


def _retention(n: Node, config: ServerConfig | None, background: bool) -> RetentionJob:
    """The retention job: on its schedule in the process running background jobs;
    elsewhere only `POST /v1/retention/run` runs it (docs/retention.md)."""
    from auditkeep.retention import Retention, RetentionJob

    settings = config.retention if config is not None else RetentionConfig()
    retention = Retention(n.logs, n.index, settings,
                          archive=config is not None and config.archive is not None)
    return RetentionJob(retention, settings.schedule if background else None)


def _detection(n: Node, rules: Path) -> None:
    from auditkeep.detect.service import Detection, install_default_rules

    if install_default_rules(rules):
        click.echo(f"detection rules: installed the default rule set in {rules}")
    found = Detection(n.store, n.logs, rules)
    if found.rules.error:  # a bad rule at start-up is a configuration error
        n.close()
        raise ConfigError(f"detection rules: {found.rules.error}")
    n.options["detection"] = found
    click.echo(f"detection: {len(found.rules.ruleset.active)} rule(s) from {rules}")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def default_ingest_workers() -> int:
    """One worker a core, at most 4, and none on a single core (where the hand-off to a
    worker is pure cost). The server process keeps HTTP and the sequencers, about a
    third of the CPU an event costs; four workers prepare more than one server process
    can sequence (measured in bench/ingest.py, docs/decisions.md)."""
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


def _ingest_workers(n: Node, d: DataDir, config: ServerConfig | None, count: int | None
                    ) -> IngestWorkers | None:
    count = default_ingest_workers() if count is None else count
    if count == 0:
        return None
    workers = IngestWorkers(count, d.store_url, config, n.options["pipelines"])
    workers.start()
    n.options["ingest_workers"] = workers
    return workers


def _syslog(n: Node, tcp: str | None, udp: str | None, tenant: str, cert: str | None,
            key: str | None) -> SyslogListener | None:
    if tcp is None and udp is None:
        return None
    if (cert is None) != (key is None):
        raise ConfigError("--syslog-tls-cert and --syslog-tls-key go together")
    tls = None
    if cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
    try:
        opts = SyslogOptions(tenant=tenant, tcp=parse_address(tcp) if tcp else None,
                             udp=parse_address(udp) if udp else None, tls=tls)
        listener = SyslogListener(n, opts)
        listener.start()
    except (ValueError, OSError) as exc:
        n.close()
        raise ConfigError(f"syslog: {exc}") from None
    for proto, addr in (("tcp", listener.tcp_address), ("udp", listener.udp_address)):
        if addr is not None:
            click.echo(f"syslog ({proto}{'+tls' if tls and proto == 'tcp' else ''}) on "
                       f"{addr[0]}:{addr[1]} -> tenant {tenant}")
    return listener
