"""A data directory: where the embedded default keeps everything, and how it is opened.

    DATA/auditkeep.db        the logs (SQLite, WAL, synchronous=FULL)
    DATA/search.db           the search index (rebuildable from the logs)
    DATA/keys/*.key          Ed25519 signing keys (0600)
    DATA/journal/*.checkpoints  persisted checkpoints, appended (rollback evidence),
                             thinned out hourly like the stored ones (log/compaction.py)
    DATA/admin.token         the bootstrap admin token (0600)
    DATA/rules/              detection rules and alerting.yaml (the default for
                             `serve --rules`; the shipped rule set on first start)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkeep.auth import create_token
from auditkeep.errors import ConfigError
from auditkeep.log.compaction import HOUR, CheckpointCompactor
from auditkeep.log.keys import KeyRing, write_secret
from auditkeep.log.service import LogService
from auditkeep.query.index import SearchIndex
from auditkeep.query.indexer import Indexer, IndexerProcess
from auditkeep.storage.base import Backend
from auditkeep.storage.sqlite import SQLiteBackend

DEFAULT_DATA = ".auditkeep-data"


def data_path(value: str | os.PathLike[str] | None) -> Path:
    return Path(value or os.environ.get("AUDITKEEP_DATA") or DEFAULT_DATA)


@dataclass
class DataDir:
    root: Path

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
        return self.db.exists()

    def require(self) -> None:
        if not self.exists():
            raise ConfigError(f"{self.root} is not an auditkeep data directory "
                              f"(no {self.db.name}); start `auditkeep serve --data {self.root}` "
                              "once to create it")

    def open_backend(self) -> SQLiteBackend:
        try:
            # 0700: the database holds personal values and the directory the signing keys.
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create data directory {self.root}: {exc.strerror}") from None
        return SQLiteBackend(self.db)


@dataclass
class Node:
    """Everything one running auditkeep process holds open."""

    store: Backend
    keys: KeyRing
    logs: LogService
    index: SearchIndex | None
    indexer: Indexer | IndexerProcess | None
    data: DataDir | None = None
    created_admin_token: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    rejections: dict[int, int] = field(default_factory=dict)  # ingest refusals by status
    compactor: CheckpointCompactor | None = None

    def start(self, compact_every: float = HOUR) -> None:
        """Start the indexer, detection and the scheduled PII scan (if set up), and
        checkpoint compaction now and every `compact_every` s."""
        if self.indexer is not None:
            self.indexer.start()
        detection = self.options.get("detection")
        if detection is not None:
            detection.start()
        scan = self.options.get("pii_scan")
        if scan is not None:
            scan.start()
        if self.compactor is None:
            self.compactor = CheckpointCompactor(
                lambda stopping: self.logs.compact_checkpoints(stopping=stopping), compact_every)
            self.compactor.start()

    def close(self) -> None:
        if self.compactor is not None:
            self.compactor.stop()
        scan = self.options.get("pii_scan")
        if scan is not None:
            scan.stop()
        detection = self.options.get("detection")
        if detection is not None:  # before the logs: it appends alert records
            detection.stop()
        self.logs.close()
        if self.indexer is not None:
            self.indexer.notify()
            self.indexer.stop()
        if self.index is not None:
            self.index.close()
        self.store.close()


def open_node(
    data: DataDir,
    *,
    origin_prefix: str = "auditkeep.local",
    with_index: bool = True,
    indexer: str = "thread",
    sequencer_options: dict[str, Any] | None = None,
) -> Node:
    """Open (creating on first use) a data directory: key, bootstrap token, default log.

    `indexer`: "thread" runs the search indexer in this process; "process" in a child
    process (what `serve` does: it then uses the second core instead of the GIL)."""
    store = data.open_backend()
    try:
        return _open(data, store, origin_prefix, with_index, indexer, sequencer_options)
    except BaseException:
        store.close()
        raise


def _open(data: DataDir, store: SQLiteBackend, origin_prefix: str, with_index: bool,
          indexer: str, sequencer_options: dict[str, Any] | None) -> Node:
    keys = KeyRing(store, data.keys)
    keys.ensure()
    created = False
    if not store.list_tokens():
        secret, _ = create_token(store, tenant=None, scopes=["admin"], name="bootstrap admin")
        write_secret(data.admin_token, secret + "\n")
        created = True
    logs = LogService(store, keys, origin_prefix=origin_prefix, journal_dir=data.journal,
                      sequencer_options=sequencer_options)
    logs.sequencer("default")
    index = None
    follower: Indexer | IndexerProcess | None = None
    if with_index:
        index = SearchIndex(data.search_db)
        if indexer == "process":
            follower = IndexerProcess(data.db, data.search_db, store, index)
        else:
            follower = Indexer(store, index)
            logs.on_commit(follower.notify)
    return Node(store, keys, logs, index, follower, data, created)
