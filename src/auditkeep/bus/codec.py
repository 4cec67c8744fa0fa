"""What travels on the ingest bus: subjects, message ids, prepared events, replies.

A message holds one accepted request's prepared events for one log, as msgpack
(msgspec): every field of `Pending` the sequencer or the store reads, the raw originals
and the subject keys included. `fields` is not sent: nothing after `prepare` reads it
(the entry is `entry_head`, seq, `entry_tail`, built by the ingest node) and it may hold
orjson fragments msgpack cannot carry; decoded Pendings get an empty dict, as the
ingest workers' do (server/workers.py). Personal values go as one JSON text per
message, as the workers send them, because they too may hold orjson fragments.

Log names are `[a-z0-9-]{1,63}`, optionally followed by `._access`. A dot separates
NATS subject tokens, so in a subject the dot is written `~`: `<prefix>.ingest.acme~_access`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import orjson

from auditkeep import errors
from auditkeep.log.sequencer import AppendResult, Receipt
from auditkeep.pipeline.prepare import Pending

#: Bumped when the message layout changes; a sequencer refuses a version it lacks.
VERSION = 1

REPLY_HEADER = "Auditkeep-Reply"
REQUEST_HEADER = "Auditkeep-Request"
MSG_ID_HEADER = "Nats-Msg-Id"


def log_token(name: str) -> str:
    """A log name as one subject token."""
    return name.replace(".", "~")


def log_name(token: str) -> str:
    return token.replace("~", ".")


def ingest_subject(prefix: str, name: str) -> str:
    return f"{prefix}.ingest.{log_token(name)}"


def msg_id(name: str, pendings: list[Pending]) -> str:
    """The JetStream dedup id of a message: the event's id, or a digest of the ids of a
    batch (a retry of the same request publishes the same id)."""
    if len(pendings) == 1:
        return f"{name}:{pendings[0].id}"
    joined = "\n".join(p.id for p in pendings).encode()
    return f"{name}:{hashlib.sha256(joined).hexdigest()}"


class _WirePending(msgspec.Struct, array_like=True, frozen=True):
    id: str
    explicit_id: bool
    digest: bytes
    dedup_key: int
    plain: bool
    entry_head: bytes
    entry_tail: bytes
    raw: tuple[str, bytes] | None
    subjects: tuple[int, ...]


class _Message(msgspec.Struct, array_like=True, frozen=True):
    version: int
    pendings: list[_WirePending]
    personal: bytes  # JSON: one dict (or null) per pending


class _WireReceipt(msgspec.Struct, array_like=True, frozen=True):
    id: str
    seq: int
    leaf_hash: bytes
    duplicate: bool


class _Reply(msgspec.Struct, array_like=True, frozen=True):
    request: str
    receipts: list[_WireReceipt] | None = None
    checkpoint: str = ""
    size: int = 0
    error: str | None = None  # the auditkeep error class's name
    detail: str = ""
    retry_after: int = 1


_encoder = msgspec.msgpack.Encoder()
_message = msgspec.msgpack.Decoder(_Message)
_reply = msgspec.msgpack.Decoder(_Reply)
_EMPTY: dict[str, Any] = {}


def encode_pendings(pendings: list[Pending]) -> bytes:
    return _encoder.encode(_Message(
        VERSION,
        [_WirePending(p.id, p.explicit_id, p.digest, p.dedup_key, p.plain, p.entry_head,
                      p.entry_tail, p.raw, p.subjects) for p in pendings],
        orjson.dumps([p.personal for p in pendings])))


def decode_pendings(data: bytes) -> list[Pending]:
    """The Pendings of a message (`fields` empty); CorruptionError if it is not one."""
    try:
        msg = _message.decode(data)
        personal = orjson.loads(msg.personal)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as exc:
        raise errors.CorruptionError(f"an ingest bus message does not decode: {exc}") from exc
    if msg.version != VERSION:
        raise errors.CorruptionError(
            f"an ingest bus message has layout version {msg.version}, this node reads "
            f"{VERSION} (upgrade every node of the deployment)")
    if not isinstance(personal, list) or len(personal) != len(msg.pendings):
        raise errors.CorruptionError("an ingest bus message's personal values do not match "
                                     "its events")
    return [Pending(w.id, w.explicit_id, _EMPTY, w.digest, pv, w.dedup_key, w.plain,
                    w.entry_head, w.entry_tail, w.raw, w.subjects)
            for w, pv in zip(msg.pendings, personal, strict=True)]


def encode_result(request: str, result: AppendResult) -> bytes:
    return _encoder.encode(_Reply(
        request, [_WireReceipt(r.id, r.seq, r.leaf_hash, r.duplicate) for r in result.receipts],
        result.checkpoint, result.size))


#: The errors a sequencer's answer may name; anything else arrives as StorageError.
_ERRORS: dict[str, type[errors.AuditkeepError]] = {
    cls.__name__: cls for cls in (errors.ConflictError, errors.FencedError, errors.Pushback,
                                  errors.StorageError, errors.CorruptionError,
                                  errors.ValidationError, errors.ConfigError)}


def encode_error(request: str, exc: BaseException) -> bytes:
    name = type(exc).__name__ if type(exc).__name__ in _ERRORS else "StorageError"
    detail = exc.detail if isinstance(exc, errors.AuditkeepError) else str(exc)
    retry = exc.retry_after if isinstance(exc, errors.Pushback) else 1
    return _encoder.encode(_Reply(request, error=name, detail=detail, retry_after=retry))


def decode_reply(data: bytes) -> tuple[str, AppendResult | errors.AuditkeepError]:
    """(request id, the result or the error the sequencer answered)."""
    try:
        r = _reply.decode(data)
    except msgspec.DecodeError as exc:
        raise errors.CorruptionError(f"a sequencer's reply does not decode: {exc}") from exc
    if r.error is not None:
        if r.error == "Pushback":
            return r.request, errors.Pushback(r.detail, retry_after=r.retry_after)
        return r.request, _ERRORS.get(r.error, errors.StorageError)(r.detail)
    return r.request, AppendResult(
        [Receipt(w.id, w.seq, w.leaf_hash, w.duplicate) for w in r.receipts or ()],
        r.checkpoint, r.size)
