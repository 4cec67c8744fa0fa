"""The storage boundary: what a backend must do, small enough to implement twice.

A backend stores, per log, entry bundles (the exact canonical bytes), the Merkle
nodes of every level (tiles of 256 hashes), checkpoints, 64-bit dedup keys and the raw
objects that sources received (byte-exact, bound to their entry by digest), and
beside the logs the tokens and verifier keys. Everything the acknowledgement path
writes goes through `append`, which is atomic and durable when it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

TILE_WIDTH = 256  # hashes per tile row, as in C2SP tlog-tiles
BUNDLE_WIDTH = 256  # entries per bundle row at most


@dataclass(slots=True)
class LogInfo:
    id: int
    name: str
    origin: str
    size: int
    root: bytes
    # The newest ingest-bus message (JetStream stream sequence) whose events are in the
    # log: a sequencer taking over resumes the stream after it (bus/). 0: none yet.
    bus_seq: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """A sequencer's hold on one log. `epoch` is the fencing token: it grows by one
    each time the lease passes to a new holder. `expires` is a UNIX time by the
    store's own clock (all holders share it), so no two holders' leases overlap."""

    log_id: int
    holder: str
    epoch: int
    expires: float


@dataclass(slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created: str


@dataclass(slots=True)
class Commit:
    """One group commit to one log: everything the ack path must make durable."""

    log_id: int
    first_seq: int
    entries: list[bytes]
    digests: list[bytes]
    dedup: list[int]  # the 64-bit key of each entry's id, in seq order
    personal: dict[int, dict[str, list[Any]]]
    # Newly completed nodes as runs (level, first index, hashes of consecutive nodes):
    # one run per level from `CompactTree.extend_runs`, or one per node.
    nodes: list[tuple[int, int, bytes]]
    size: int
    root: bytes
    checkpoint: StoredCheckpoint | None = None
    raws: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # seq -> (format, bytes)
    subjects: dict[int, tuple[int, ...]] = field(default_factory=dict)  # seq -> subject keys
    # Fencing: when set, `append` stores nothing and raises FencedError unless this
    # lease is still held (same holder and epoch, not expired) when the commit lands.
    fence: Lease | None = None
    bus_seq: int | None = None  # when set, the log's bus_seq becomes this (atomically)


@dataclass(slots=True)
class TokenRecord:
    id: str
    tenant: str | None  # None: admin, not bound to a tenant
    scopes: tuple[str, ...]
    name: str
    created: str
    revoked: str | None = None


@dataclass(slots=True)
class SigningKeyRecord:
    public_key: bytes
    created: str
    retired: str | None = None


@dataclass(slots=True)
class Bundle:
    first_seq: int
    entries: list[bytes]
    digests: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SavedSearch:
    name: str
    body: str  # JSON: {"query", "since"?, "until"?, "columns"?}
    created_by: str
    updated: str


@dataclass(slots=True)
class AlertRecord:
    """One stored alert. `body` is the alert's JSON (detect/alerts.py owns its shape);
    the other fields are what the store filters and orders on. Times are RFC 3339 UTC
    strings ending in Z, so they compare as text."""

    id: str
    tenant: str
    rule: str
    level: str
    status: str  # "open" | "acked"
    dedup_key: str
    created: str
    updated: str
    body: str
    logged_seq: int | None = None  # its record's seq in the tenant's log, once appended


@dataclass(slots=True)
class DeliveryRecord:
    """One alert's delivery to one sink: pending until sent, "dead" after the last
    retry (the dead-letter list), "delivered" once a sink took it."""

    id: str
    alert_id: str
    tenant: str
    sink: str
    status: str  # "pending" | "delivered" | "dead"
    attempts: int
    next_attempt: str
    created: str
    updated: str
    last_error: str | None = None


@dataclass(slots=True)
class DetectCommit:
    """What one detection pass makes durable at once, so a restart neither misses nor
    repeats an alert: the cursors it advanced, window state it changed (None deletes),
    alerts it created or updated (upsert by id) and the deliveries they queued."""

    cursors: dict[int, int] = field(default_factory=dict)  # log id -> next seq to read
    state: dict[tuple[str, str], bytes | None] = field(default_factory=dict)  # (rule, key)
    alerts: list[AlertRecord] = field(default_factory=list)
    deliveries: list[DeliveryRecord] = field(default_factory=list)


@dataclass(slots=True)
class Erasure:
    """One erasure in one log, made durable at once: the personal values left to each
    affected seq (None: none left), the seqs whose raw objects go, the subject keys
    whose index rows go, and the seq of the erasure's own record (marks `erased`)."""

    log_id: int
    personal: dict[int, dict[str, list[Any]] | None]
    raws: list[int]
    subject_keys: list[int]
    seqs: list[int]
    record_seq: int


@dataclass(slots=True)
class Purge:
    """One retention purge in one log, made durable at once (retention/ is the only
    caller). The entries' bytes go (`read_bundles` gives b"" in their place), with their
    personal values, raw objects and subject rows; leaf hashes, every tile and every
    checkpoint stay, so each inclusion and consistency proof still verifies. `seqs` are
    ascending; seqs purged already are skipped. `record_seq`: the seq of the retention
    record (action `auditkeep.retention.purge`) in the same log that did it."""

    log_id: int
    seqs: list[int]
    record_seq: int


@dataclass(frozen=True, slots=True)
class PurgedRange:
    """A run of consecutive purged seqs [first, end) purged by one retention record."""

    first: int
    end: int
    record_seq: int


@dataclass(frozen=True, slots=True)
class RetentionRecord:
    """A tenant's retention policy as set through `PUT /v1/retention` (it overrides the
    configuration file's). `body` is JSON text; retention/policy.py owns its shape."""

    tenant: str
    body: str
    updated: str
    updated_by: str


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """A legal hold: events of `tenant` matching `query` (query language) whose time is
    in [since, until) are never purged while the hold is active (`released` is None).
    `record_seq`/`release_seq`: the seqs of its create/release records in the tenant's log."""

    id: str
    tenant: str
    query: str
    reason: str
    created_by: str
    created: str
    since: str | None = None
    until: str | None = None
    released: str | None = None
    released_by: str | None = None
    record_seq: int | None = None
    release_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness's cosignature on the log's checkpoint of `size` (C2SP tlog-cosignature):
    `line` is the whole signature line as the witness sent it ("— name base64\n"), which
    appended to the log's signed note gives the cosigned checkpoint."""

    log_id: int
    size: int
    root: bytes
    witness: str  # the witness's key name
    line: str
    created: str


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One sealed range [first, end) of a log written to the cold archive: where the
    Parquet file and its signed manifest are, the file's SHA-256 (hex), and the size of
    the checkpoint the manifest holds."""

    log_id: int
    first: int
    end: int
    url: str
    manifest_url: str
    sha256: str
    checkpoint_size: int
    created: str


class Backend(Protocol):
    """What a storage backend must do. Memory and SQLite implement it."""

    # logs
    def open_log(self, name: str, origin: str) -> LogInfo: ...
    def get_log(self, name: str) -> LogInfo | None: ...
    def list_logs(self) -> list[LogInfo]: ...
    def append(self, commit: Commit) -> None:
        """Make the commit durable, atomically. Raises FencedError (storing nothing) if
        the log is not at size `first_seq`, or if `fence` is set and not still held."""
        ...

    # sequencer leases (log/lease.py is the only caller): one writer per log
    def acquire_lease(self, log_id: int, holder: str, ttl: float) -> Lease | None:
        """Take the log's lease for `ttl` seconds if nobody holds it, it expired, or
        `holder` holds it already (then it is renewed, same epoch). A new holder gets
        epoch + 1. None if another holder's lease is live."""
        ...
    def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        """Extend a lease still held (same holder and epoch, not expired); None if lost."""
        ...
    def release_lease(self, lease: Lease) -> None:
        """Let the lease expire now, if it is still this one (a clean hand-over)."""
        ...
    def read_nodes(self, log_id: int, coords: Sequence[tuple[int, int]]) -> list[bytes]: ...
    def read_bundles(self, log_id: int, start: int, end: int) -> list[Bundle]: ...
    def bundle_index(self, log_id: int) -> list[tuple[int, int]]: ...
    def read_tile_range(self, log_id: int, level: int, start: int, end: int) -> list[bytes]: ...
    def read_personal(
        self, log_id: int, seqs: Sequence[int]
    ) -> dict[int, dict[str, list[str]]]: ...
    def read_raw(self, log_id: int, seq: int) -> tuple[str, bytes] | None: ...
    def read_raws(self, log_id: int, start: int, end: int) -> dict[int, tuple[str, bytes]]: ...
    def find_dedup(self, log_id: int, keys: Sequence[int]) -> dict[int, list[int]]: ...

    # privacy (privacy/ is the only caller)
    def secret(self, name: str) -> bytes:
        """A 32-byte random secret made on first use and the same ever after."""
        ...
    def subject_seqs(self, log_id: int, keys: Sequence[int]) -> list[int]:
        """Seqs indexed under any of these subject keys, ascending, each once."""
        ...
    def erase(self, erasure: Erasure) -> None:
        """Delete personal values, raw objects and subject rows; mark the seqs erased.
        Freed space is overwritten, not just unlinked."""
        ...
    def erased_seqs(self, log_id: int, start: int = 0, end: int | None = None
                    ) -> dict[int, int]:
        """Erased seqs in [start, end) -> the seq of the erasure record that did it."""
        ...
    # retention (retention/ is the only caller of purge and of the policy and hold rows)
    def purge(self, purge: Purge) -> int:
        """Delete entry bytes, personal values, raw objects and subject rows of the seqs;
        keep leaves and tiles; mark them purged. How many seqs were newly purged."""
        ...
    def purged_ranges(self, log_id: int, start: int = 0, end: int | None = None
                      ) -> list[PurgedRange]:
        """Purged runs overlapping [start, end), ascending, clipped to it."""
        ...
    def stored_bytes(self) -> dict[str, int]:
        """Per log name: the bytes its entries (as stored: compressed bundles and their
        digests) and raw originals take. For the storage SLI (health/slis.py); indexes
        and checkpoints are not counted."""
        ...
    def restore(self, log_id: int, entries: dict[int, bytes]) -> int:
        """Rehydration (archive/): put entry bytes back in place of purged ones and drop
        their purge marks. The caller has checked each entry's leaf hash against the
        stored tile; seqs not purged are skipped. How many were restored."""
        ...
    def put_retention(self, record: RetentionRecord) -> None: ...
    def get_retention(self, tenant: str) -> RetentionRecord | None: ...
    def list_retention(self) -> list[RetentionRecord]: ...
    def put_hold(self, hold: HoldRecord) -> None:
        """Insert or replace the hold with this (tenant, id)."""
        ...
    def get_hold(self, tenant: str, hold_id: str) -> HoldRecord | None: ...
    def holds(self, tenant: str | None = None, *, active: bool | None = None
              ) -> list[HoldRecord]:
        """Holds of one tenant (None: all), oldest first; `active`: only (not) released."""
        ...

    # witnesses (witness/ is the only caller)
    def put_cosignature(self, cosignature: Cosignature) -> None:
        """Insert or replace the cosignature of (log_id, size, witness)."""
        ...
    def cosignatures(self, log_id: int, size: int | None = None) -> list[Cosignature]:
        """The log's cosignatures (of one checkpoint size), by size then witness."""
        ...
    def witness_head(self, origin: str) -> tuple[int, bytes] | None:
        """A witness server's latest (size, root) for a log origin."""
        ...
    def set_witness_head(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        """Compare and set: record (size, root) only if the head's size is `old_size`
        (0 when there is none yet). False when it is not (another update won)."""
        ...

    # cold archive (archive/ is the only caller)
    def put_archive(self, record: ArchiveRecord) -> None:
        """Insert or replace the archive row of (log_id, first)."""
        ...
    def archives(self, log_id: int) -> list[ArchiveRecord]:
        """The log's archived ranges, by first seq."""
        ...

    def put_checkpoint(self, log_id: int, cp: StoredCheckpoint) -> None: ...
    def checkpoints(self, log_id: int) -> list[StoredCheckpoint]: ...
    def latest_checkpoint(self, log_id: int) -> StoredCheckpoint | None: ...
    def delete_checkpoints(self, log_id: int, which: Sequence[tuple[int, bytes]]) -> int:
        """Remove the stored checkpoints with these (size, root); how many went.
        Only compaction calls it (log/compaction.py), never the append path."""
        ...

    # per-action schemas: (version, JSON text)
    def put_schema(self, tenant: str, action: str, schema: str, created: str) -> int: ...
    def get_schema(self, tenant: str, action: str, version: int | None = None
                   ) -> tuple[int, str] | None: ...
    def latest_schemas(self, tenant: str) -> dict[str, tuple[int, str]]: ...

    # saved searches: body is JSON text; (name, body, created_by, updated)
    def put_saved_search(self, tenant: str, name: str, body: str, created_by: str,
                         updated: str) -> None: ...
    def saved_searches(self, tenant: str) -> list[SavedSearch]: ...
    def delete_saved_search(self, tenant: str, name: str) -> bool: ...

    # detection (detect/ is the only caller): cursors and window state move together
    def detect_cursors(self) -> dict[int, int]: ...
    def detect_state(self) -> dict[tuple[str, str], bytes]: ...
    def detect_commit(self, commit: DetectCommit) -> None: ...
    def alerts(self, tenant: str, *, rule: str | None = None, level: str | None = None,
               status: str | None = None, since: str | None = None, until: str | None = None,
               before: tuple[str, str] | None = None, limit: int = 100) -> list[AlertRecord]:
        """Newest first by (created, id); `before` is the (created, id) of the last row
        of the previous page; since/until bound `created` (since inclusive)."""
        ...
    def get_alert(self, tenant: str, alert_id: str) -> AlertRecord | None: ...
    def open_alert(self, tenant: str, dedup_key: str) -> AlertRecord | None:
        """The newest open alert with this dedup key (noise control groups into it)."""
        ...
    def update_alert(self, record: AlertRecord) -> None:
        """Replace status/updated/body (ack; the engine grouping into an open alert)."""
        ...
    def unlogged_alerts(self, limit: int = 100) -> list[AlertRecord]:
        """Alerts not yet appended to their tenant's log, oldest first."""
        ...
    def set_alert_logged(self, alert_id: str, seq: int) -> None: ...
    def due_deliveries(self, now: str, limit: int = 100) -> list[DeliveryRecord]:
        """Pending deliveries whose next_attempt <= now, oldest next_attempt first."""
        ...
    def update_delivery(self, record: DeliveryRecord) -> None: ...
    def deliveries(self, tenant: str, *, status: str | None = None, alert_id: str | None = None,
                   limit: int = 100) -> list[DeliveryRecord]:
        """Newest first by (updated, id)."""
        ...
    def get_delivery(self, tenant: str, delivery_id: str) -> DeliveryRecord | None: ...

    # tokens and keys
    def put_token(self, token_hash: bytes, record: TokenRecord) -> None: ...
    def token_by_hash(self, token_hash: bytes) -> TokenRecord | None: ...
    def list_tokens(self) -> list[TokenRecord]: ...
    def revoke_token(self, token_id: str, when: str) -> bool: ...
    def put_signing_key(self, record: SigningKeyRecord) -> None: ...
    def signing_keys(self) -> list[SigningKeyRecord]: ...
    def retire_signing_key(self, public_key: bytes, when: str) -> None: ...

    # migration (storage/migrate.py is the only caller): what no other read returns
    def export_secrets(self) -> dict[str, bytes]: ...
    def import_secret(self, name: str, value: bytes) -> None:
        """Store a secret made elsewhere; an existing one of that name is kept."""
        ...
    def export_tokens(self) -> list[tuple[bytes, TokenRecord]]:
        """Every token with its hash (tokens are found by hash only)."""
        ...

    def close(self) -> None: ...
