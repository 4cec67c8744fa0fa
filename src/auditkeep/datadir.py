"""A data directory: where the embedded default keeps everything, and how it is opened.

    DATA/auditkeep.db        the logs (SQLite, WAL, synchronous=FULL)
    DATA/search.db           the search index (rebuildable from the logs)
    DATA/keys/*.key          Ed25519 signing keys (0600)
    DATA/journal/*.checkpoints  persisted checkpoints, appended (rollback evidence),
                             thinned out hourly like the stored ones (log/compaction.py)
    DATA/admin.token         the bootstrap admin token (0600)
    DATA/rules/              detection rules and alerting.yaml (the default for
                             `serve --rules`; the shipped rule set on first start)

With `--storage postgresql://…` the logs and the search index live in PostgreSQL
instead, and the data directory keeps only the keys, the journal, the admin token
and the rules (every sequencer of a deployment must share DATA/keys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditkeep.auth import create_token
from auditkeep.errors import ConfigError
from auditkeep.log.compaction import HOUR, CheckpointCompactor
from auditkeep.log.keys import KeyRing, write_secret
from auditkeep.log.service import Appender, LogService
from auditkeep.query.index import SearchIndex
from auditkeep.query.indexer import Indexer, IndexerProcess
from auditkeep.storage.base import Backend
from auditkeep.storage.open import describe, open_index, open_store

if TYPE_CHECKING:
    from auditkeep.query.pgindex import PgSearchIndex

DEFAULT_DATA = ".auditkeep-data"


def data_path(value: str | os.PathLike[str] | None) -> Path:
    return Path(value or os.environ.get("AUDITKEEP_DATA") or DEFAULT_DATA)


def data_dir(data: str | os.PathLike[str] | None, storage: str | None = None) -> DataDir:
    """The data directory of `--data` and the store of `--storage` (else the env's
    AUDITKEEP_STORAGE; else the embedded SQLite database in the directory)."""
    storage = storage or os.environ.get("AUDITKEEP_STORAGE") or None
    if storage is not None and "://" not in storage:
        raise ConfigError(f"--storage {storage!r} is not a URL (postgresql://user@host/db); "
                          "the embedded database needs no --storage")
    return DataDir(data_path(data), storage)


@dataclass
class DataDir:
    root: Path
    storage: str | None = None  # a PostgreSQL URL; None: DATA/auditkeep.db

    @property
    def store_url(self) -> str:
        return self.storage or str(self.db)

    @property
    def index_url(self) -> str:
        return self.storage or str(self.search_db)

    @property
    def db(self) -> Path:
        return self.root / "auditkeep.db"

    @property
    def search_db(self) -> Path:
        return self.root / "search.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def rules(self) -> Path:
        return self.root / "rules"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    def exists(self) -> bool:
        return self.db.exists() if self.storage is None else self.admin_token.exists()

    def require(self) -> None:
        if self.storage is None and not self.exists():
            raise ConfigError(f"{self.root} is not an auditkeep data directory "
                              f"(no {self.db.name}); start `auditkeep serve --data {self.root}` "
                              "once to create it")

    def describe(self) -> str:
        return describe(self.store_url) if self.storage else str(self.root.resolve())

    def open_backend(self) -> Backend:
        try:
            # 0700: the database holds personal values and the directory the signing keys.
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create data directory {self.root}: {exc.strerror}") from None
        return open_store(self.store_url)


@dataclass
class Node:
    """Everything one running auditkeep process holds open."""

    store: Backend
    keys: KeyRing
    logs: LogService
    index: SearchIndex | PgSearchIndex | None
    indexer: Indexer | IndexerProcess | None
    data: DataDir | None = None
    created_admin_token: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    rejections: dict[int, int] = field(default_factory=dict)  # ingest refusals by status
    compactor: CheckpointCompactor | None = None

    def start(self, compact_every: float = HOUR, *, compact: bool = True) -> None:
        """Start the indexer, detection and the scheduled PII scan (if set up), and
        checkpoint compaction now and every `compact_every` s (unless not `compact`:
        nodes that only ingest or read leave that to the sequencers)."""
        if self.indexer is not None:
            self.indexer.start()
        slis = self.options.get("slis")
        if slis is not None:  # every process: it measures its own requests
            slis.start()
        leased = self.options.get("leased")
        if leased is not None:  # scaled out: one process of the deployment runs these
            leased.start()
        else:
            self.start_background()
        if self.compactor is None and compact:
            self.compactor = CheckpointCompactor(
                lambda stopping: self.logs.compact_checkpoints(stopping=stopping), compact_every)
            self.compactor.start()

    def start_background(self) -> None:
        """Detection, the scheduled PII scan, witnessing, the archiver, retention,
        the SLO evaluator, the self-audit and the canary (those set up)."""
        for name in ("detection", "pii_scan", "witness", "archive", "retention", "slo",
                     "self_audit", "canary"):
            job = self.options.get(name)
            if job is not None:
                job.start()

    def stop_background(self) -> None:
        for name in ("canary", "self_audit", "slo", "retention", "archive", "witness",
                     "pii_scan", "detection"):
            job = self.options.get(name)
            if job is not None:
                job.stop()

    def close(self) -> None:
        leased = self.options.pop("leased", None)
        if leased is not None:
            leased.stop()
        canary = self.options.get("canary")
        if canary is not None:  # first: it raises alerts, and its server has stopped
            canary.stop()
        audit = self.options.get("self_audit")
        if audit is not None:  # before the store: it reads tiles and entries
            audit.stop()
        if self.compactor is not None:
            self.compactor.stop()
        retention = self.options.get("retention")
        if retention is not None:  # before the logs: it appends purge records
            retention.stop()
        archiver = self.options.get("archive")
        if archiver is not None:  # before the store: it reads entries, writes archive rows
            archiver.stop()
        witness = self.options.get("witness")
        if witness is not None:  # before the store: it reads checkpoints, writes cosignatures
            witness.close()
        scan = self.options.get("pii_scan")
        if scan is not None:
            scan.stop()
        slo = self.options.get("slo")
        if slo is not None:  # before detection and the store: it raises alerts
            slo.stop()
        detection = self.options.get("detection")
        if detection is not None:  # before the logs: it appends alert records
            detection.stop()
        slis = self.options.get("slis")
        if slis is not None:  # before the index: it reads the index's cursors
            slis.stop()
        self.logs.close()
        if self.indexer is not None:
            self.indexer.notify()
            self.indexer.stop()
        if self.index is not None:
            self.index.close()
        self.store.close()
        readiness = self.options.get("readiness")
        if readiness is not None:
            readiness.close()


def open_node(
    data: DataDir,
    *,
    origin_prefix: str = "auditkeep.local",
    with_index: bool = True,
    indexer: str = "thread",
    sequencer_options: dict[str, Any] | None = None,
    appender: Appender | None = None,
) -> Node:
    """Open (creating on first use) a data directory: key, bootstrap token, default log.

    `indexer`: "thread" runs the search indexer in this process; "process" in a child
    process (what `serve` does: it then uses the second core instead of the GIL);
    "none" runs none (nodes of a scaled-out deployment that only ingest or read).
    `appender`: appends go there (the ingest bus) instead of to local sequencers."""
    store = data.open_backend()
    try:
        return _open(data, store, origin_prefix, with_index, indexer, sequencer_options,
                     appender)
    except BaseException:
        store.close()
        raise


def _open(data: DataDir, store: Backend, origin_prefix: str, with_index: bool,
          indexer: str, sequencer_options: dict[str, Any] | None,
          appender: Appender | None) -> Node:
    keys = KeyRing(store, data.keys)
    keys.ensure()
    created = False
    if not store.list_tokens():
        secret, _ = create_token(store, tenant=None, scopes=["admin"], name="bootstrap admin")
        write_secret(data.admin_token, secret + "\n")
        created = True
    logs = LogService(store, keys, origin_prefix=origin_prefix, journal_dir=data.journal,
                      sequencer_options=sequencer_options, appender=appender)
    bus = appender is not None
    if bus:
        store.open_log("default", logs.origin("default"))
    else:
        logs.sequencer("default")
    index = None
    follower: Indexer | IndexerProcess | None = None
    if with_index:
        index = open_index(data.index_url)
        if indexer == "process":
            follower = IndexerProcess(data.store_url, data.index_url,
                                      Path(f"{data.search_db}.lock"), store, index)
        elif indexer == "thread":
            follower = Indexer(store, index)
            logs.on_commit(follower.notify)
    node = Node(store, keys, logs, index, follower, data, created)
    node.options["slis"] = node_slis(store, index)
    return node


def node_slis(store: Backend, index: SearchIndex | PgSearchIndex | None) -> Any:
    """The node's SLIs (health/slis.py); "searchable" follows the search index."""
    from auditkeep.health.slis import Slis
    from auditkeep.health.storage_sli import StorageSizes
    from auditkeep.query.indexer import index_lag

    slis = Slis()
    sizes = StorageSizes(store.stored_bytes)
    slis.add_collector(sizes.families)
    if index is not None:
        slis.follow_index(lambda: {name: lag["indexed"]
                                   for name, lag in index_lag(store, index).items()})
    return slis
