"""The one exception root of auditkeep and its tree.

    AuditkeepError
    ├── ValidationError          input that breaks schema v1 or a request rule (400)
    │   ├── PayloadTooLarge      body, batch or event over its limit (413)
    │   ├── EventError           the SDK refused an event at `emit` (also a ValueError)
    │   └── StageRejection       an ingest pipeline stage refused an event (400)
    ├── AuthError                missing or unknown token (401)
    │   └── ForbiddenError       token lacks the scope or the tenant (403)
    ├── NotFoundError            no such tenant, seq, event or checkpoint (404)
    │   └── GoneError            deleted on purpose, e.g. an erased raw object (410)
    │       └── PurgedError      an entry purged by retention; its leaf stays (410)
    ├── ConflictError            same event id, different content (409)
    ├── Pushback                 a sequencer queue is full; retry later (503)
    ├── ProofError               a proof or checkpoint does not verify
    │   └── NoteError            a signed note or verifier key is malformed
    ├── StorageError             the backend failed (driver errors are mapped to this)
    │   ├── CorruptionError      stored bytes cannot be decoded
    │   ├── StorageFull          the disk is full: nothing stored; retry later (507)
    │   └── FencedError          a sequencer lost its lease (or the log moved): not committed (503)
    ├── ConfigError              bad configuration or data directory
    ├── WitnessError             a witness refused a checkpoint or could not be reached (502)
    └── SpoolFull                the SDK's spool stayed full for the whole block timeout

Every error carries the HTTP status it maps to and, where input is at fault, a list
of `FieldProblem`s naming each offending field by JSON pointer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad field: where it is (JSON pointer), what was expected, what arrived."""

    pointer: str
    detail: str
    expected: str | None = None
    actual: str | None = None
    index: int | None = None  # the event's position in a batch, when there is one
    column: int | None = None  # 1-based position in a query string, when there is one

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pointer": self.pointer, "detail": self.detail}
        if self.index is not None:
            out["index"] = self.index
        if self.expected is not None:
            out["expected"] = self.expected
        if self.actual is not None:
            out["actual"] = self.actual
        if self.column is not None:
            out["column"] = self.column
        return out


class AuditkeepError(Exception):
    """Root of every error auditkeep raises on purpose."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str, *, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems: list[FieldProblem] = problems or []


class ValidationError(AuditkeepError):
    status = 400
    title = "Invalid request"
    slug = "validation"


class PayloadTooLarge(ValidationError):
    status = 413
    title = "Payload too large"
    slug = "too-large"


class EventError(ValidationError, ValueError):
    """An event the SDK will not spool: the application passed something schema v1
    refuses. Raised by `emit` on the caller's thread, never later."""

    title = "Invalid audit event"


class StageRejection(ValidationError):
    """A pipeline stage refused an event (400). `stage` names the stage; `problems`
    name the bad fields by JSON pointer."""

    title = "Rejected by the ingest pipeline"
    slug = "rejected"

    def __init__(self, detail: str, *, problems: list[FieldProblem] | None = None,
                 stage: str | None = None) -> None:
        super().__init__(detail, problems=problems)
        self.stage = stage


class AuthError(AuditkeepError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class ForbiddenError(AuthError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFoundError(AuditkeepError):
    status = 404
    title = "Not found"
    slug = "not-found"


class GoneError(NotFoundError):
    """It was there and was deleted on purpose (an erased raw object)."""

    status = 410
    title = "Gone"
    slug = "gone"


class PurgedError(GoneError):
    """The entry at `seq` was purged by retention: its bytes are gone, its leaf hash
    (and so every proof) stays. `record_seq` is the seq of the retention record that
    purged it, when known."""

    title = "Purged by retention"
    slug = "purged"

    def __init__(self, log: str, seq: int, record_seq: int | None = None) -> None:
        by = (f" by the retention record at seq {record_seq}" if record_seq is not None
              else "")
        super().__init__(f"log {log!r}: the entry at seq {seq} was purged{by}; its leaf "
                         "hash stays in the tree, so proofs still verify")
        self.log = log
        self.seq = seq
        self.record_seq = record_seq


class ConflictError(AuditkeepError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Pushback(AuditkeepError):
    """The sequencer queue is full. Never a silent drop: the caller must retry."""

    status = 503
    title = "Overloaded"
    slug = "overloaded"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProofError(AuditkeepError):
    status = 422
    title = "Proof does not verify"
    slug = "proof"


class NoteError(ProofError):
    title = "Malformed signed note"
    slug = "note"


class StorageError(AuditkeepError):
    title = "Storage failure"
    slug = "storage"


class CorruptionError(StorageError):
    title = "Stored data is corrupt"
    slug = "corruption"


class StorageFull(StorageError):
    """The disk (or the database's quota) is full: the write was rolled back, nothing of
    it is stored or acknowledged. The server recovers by itself once space returns
    (docs/runbooks/disk-full.md); the producer retries after `retry_after` seconds."""

    status = 507
    title = "Insufficient storage"
    slug = "storage-full"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class FencedError(StorageError):
    """A commit refused because its sequencer no longer holds the log's lease, or the
    log is no longer at the size the commit starts from (another sequencer wrote it).
    Nothing of the commit is stored; the producer may retry."""

    status = 503
    title = "Sequencer fenced off"
    slug = "fenced"


class ConfigError(AuditkeepError):
    status = 500
    title = "Configuration error"
    slug = "config"


class WitnessError(AuditkeepError):
    """A witness did not cosign: it refused the checkpoint (its HTTP status is kept in
    `witness_status`), answered something that is not a valid cosignature, or was down."""

    status = 502
    title = "Witness did not cosign"
    slug = "witness"

    def __init__(self, detail: str, *, witness_status: int | None = None) -> None:
        super().__init__(detail)
        self.witness_status = witness_status


class SpoolFull(AuditkeepError):
    """The SDK's spool is at its size limit and did not drain within the block timeout."""

    status = 503
    title = "Spool full"
    slug = "spool-full"


__all__ = [
    "AuditkeepError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "CorruptionError",
    "EventError",
    "FieldProblem",
    "ForbiddenError",
    "GoneError",
    "NotFoundError",
    "NoteError",
    "PayloadTooLarge",
    "ProofError",
    "PurgedError",
    "Pushback",
    "SpoolFull",
    "StageRejection",
    "StorageError",
    "StorageFull",
    "ValidationError",
    "WitnessError",
]
