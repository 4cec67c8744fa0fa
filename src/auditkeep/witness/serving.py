"""The cosigned checkpoint the API serves: the log's signed note of a size with every
witness cosignature stored for that size appended (verifiers skip lines of keys they
do not know, so clients that know no witness read it as before)."""

from __future__ import annotations

from auditkeep.errors import NotFoundError
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint, with_cosignatures
from auditkeep.log.service import LogService
from auditkeep.storage.base import Cosignature


def cosigned_checkpoint(logs: LogService, name: str, size: int | None = None,
                        witnessed: bool = False) -> str:
    """The log's checkpoint note with its cosignatures: of the latest checkpoint, of
    tree `size`, or (`witnessed`) of the largest size any witness has cosigned."""
    if size is None and not witnessed:  # the common case: one cheap lookup
        cp = logs.checkpoint(name)
        info = logs.info(name)
        return with_cosignatures(cp.note, _lines(logs.store.cosignatures(info.id, cp.size),
                                                 cp.root))
    info = logs.info(name)
    if size is None:  # witnessed
        size = _largest_cosigned(logs, info.id)
        if size is None:
            raise NotFoundError(f"no witness has cosigned a checkpoint of log {name!r} yet")
    committed = logs.size(name)
    if size > committed:
        raise NotFoundError(f"log {name!r} has {committed} entries; no checkpoint of size "
                            f"{size}")
    note, root = _note(logs, name, size)
    return with_cosignatures(note, _lines(logs.store.cosignatures(info.id, size), root))


def _note(logs: LogService, name: str, size: int) -> tuple[str, bytes]:
    """The stored signed checkpoint of `size`, or the log's signature of its tree head at
    that size now (compaction thins stored checkpoints; the tree still has the root)."""
    info = logs.info(name)
    latest = logs.checkpoint(name)
    if latest.size == size:
        return latest.note, latest.root
    for cp in logs.store.checkpoints(info.id):
        if cp.size == size:
            return cp.note, cp.root
    root = logs.root(name, size)
    signer = logs.keys.signer().with_name(info.origin)
    return sign_checkpoint(Checkpoint(info.origin, size, root), signer), root


_RECENT = 64  # stored checkpoints to try before reading every cosignature row


def _largest_cosigned(logs: LogService, log_id: int) -> int | None:
    """The largest cosigned size. The job pushes stored checkpoints, so a recent one
    usually has it: keyed lookups of those first, the whole table only as a fallback."""
    sizes = sorted({cp.size for cp in logs.store.checkpoints(log_id)}, reverse=True)
    for size in sizes[:_RECENT]:
        if logs.store.cosignatures(log_id, size):
            return size
    every = logs.store.cosignatures(log_id)
    return max((c.size for c in every), default=None)


def _lines(cosignatures: list[Cosignature], root: bytes) -> list[str]:
    return [c.line for c in cosignatures if c.root == root]


__all__ = ["cosigned_checkpoint"]
