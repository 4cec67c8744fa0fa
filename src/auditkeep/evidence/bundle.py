"""Evidence bundles: the selected events of one log with everything an auditor needs to
check them offline — canonical entries, a C2SP tlog-proof per event against one cosigned
checkpoint, the verifier keys, raw originals, a manifest and a README (docs/evidence.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep.errors import ConflictError, CorruptionError, PurgedError
from auditkeep.evidence.layout import write_zip
from auditkeep.evidence.readme import readme
from auditkeep.log import merkle
from auditkeep.log.checkpoint import with_cosignatures
from auditkeep.log.service import LogService
from auditkeep.storage.base import LogInfo, StoredCheckpoint

FORMAT = "auditkeep-evidence/v1"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_EVENTS = 10_000  # a bundle is built in memory; more is a case for `export` or archives
#: File extensions of raw originals by their format; JSON unless listed.
RAW_EXTENSIONS = {"otlp.protobuf": "pb", "syslog": "txt"}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which events of which log go into a bundle, and how they were asked for."""

    log: str  # the log's name (a tenant, or `T._access`)
    tenant: str
    seqs: Sequence[int]
    query: str = ""
    since: str | None = None
    until: str | None = None
    created_by: str = ""
    witness_keys: Sequence[str] = field(default_factory=tuple)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def tlog_proof(seq: int, hashes: Sequence[bytes], checkpoint: str) -> str:
    """c2sp.org/tlog-proof@v1 text: header, index, proof hashes, empty line, checkpoint."""
    lines = [PROOF_HEADER, f"index {seq}", *(_b64(h) for h in hashes)]
    return "\n".join(lines) + "\n\n" + checkpoint


def choose_checkpoint(logs: LogService, info: LogInfo, least_size: int
                      ) -> tuple[StoredCheckpoint, list[str]]:
    """The checkpoint a bundle proves against: of the persisted checkpoints covering the
    first `least_size` entries, the one with the most witness cosignatures, the newest
    of those; and its cosignature lines."""
    candidates = {c.size: c for c in logs.store.checkpoints(info.id)}
    latest = logs.checkpoint(info.name)
    candidates[latest.size] = latest
    lines: dict[int, list[str]] = {}
    for c in logs.store.cosignatures(info.id):
        if c.size in candidates and c.root == candidates[c.size].root:
            lines.setdefault(c.size, []).append(c.line)
    covering = [c for c in candidates.values() if c.size >= least_size and c.size > 0]
    if not covering:
        raise ConflictError(f"log {info.name!r} has no signed checkpoint covering seq "
                            f"{least_size - 1} yet; try again in a moment")
    best = max(covering, key=lambda c: (len(lines.get(c.size, [])), c.size))
    return best, lines.get(best.size, [])


def build_bundle(logs: LogService, sel: Selection, now: datetime | None = None) -> bytes:
    """The evidence zip for `sel` (its seqs need not be sorted)."""
    now = now or datetime.now(UTC)
    info = logs.info(sel.log)
    seqs = sorted(set(sel.seqs))
    cp, cosig_lines = choose_checkpoint(logs, info, seqs[-1] + 1 if seqs else 1)
    checkpoint = with_cosignatures(cp.note, cosig_lines)

    members: list[tuple[str, bytes]] = []
    purged: list[dict[str, Any]] = []
    unavailable: list[dict[str, Any]] = []
    raws: list[tuple[str, bytes]] = []
    included = 0
    for seq in seqs:
        _, leaf, hashes = logs.inclusion_proof(sel.log, seq, cp.size)
        try:
            entry = logs.entry(sel.log, seq)
        except PurgedError as gone:  # retention: the leaf hash stays, the bytes are gone
            purged.append({"seq": seq, "leaf_hash": _b64(leaf),
                           **({"purged_by": gone.record_seq}
                              if gone.record_seq is not None else {})})
        else:
            if merkle.leaf_hash(entry) != leaf:
                raise CorruptionError(f"log {sel.log!r}: the stored entry at seq {seq} does "
                                      "not match its leaf hash; run `auditkeep verify`")
            members.append((f"entries/{seq}.json", entry))
            included += 1
            raw = _raw(logs, info, seq, entry, unavailable)
            if raw is not None:
                raws.append(raw)
        members.append((f"proofs/{seq}.proof", tlog_proof(seq, hashes, checkpoint).encode()))
    members.extend(raws)
    members.append(("checkpoint.txt", checkpoint.encode()))
    origin = info.origin
    log_keys = "".join(k.verifier(origin).to_string() + "\n" for k in logs.keys.published())
    members.append(("keys/log.vkey", log_keys.encode()))
    if sel.witness_keys:
        members.append(("keys/witnesses.vkeys",
                        "".join(k.strip() + "\n" for k in sel.witness_keys).encode()))
    created = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    members.append(("README.md", readme(
        tenant=sel.tenant, log=sel.log, origin=origin, created=created, events=included,
        purged=len(purged), raws=len(raws), size=cp.size, cosignatures=len(cosig_lines),
        log_keys=log_keys, witnessed=bool(sel.witness_keys)).encode()))

    manifest = {
        "format": FORMAT, "tenant": sel.tenant, "log": sel.log, "origin": origin,
        "query": sel.query, "window": {"since": sel.since, "until": sel.until},
        "created": created, "created_by": sel.created_by,
        "checkpoint": {"size": cp.size, "root": _b64(cp.root), "created": cp.created,
                       "cosignatures": len(cosig_lines)},
        "counts": {"selected": len(seqs), "entries": included, "purged": len(purged),
                   "raw": len(raws), "raw_unavailable": len(unavailable)},
        "seqs": seqs, "purged": purged, "raw_unavailable": unavailable,
        "files": [{"path": name, "sha256": hashlib.sha256(body).hexdigest(),
                   "size": len(body)} for name, body in members],
    }
    members.append(("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2)))
    return write_zip(members, now)


def _raw(logs: LogService, info: LogInfo, seq: int, entry: bytes,
         unavailable: list[dict[str, Any]]) -> tuple[str, bytes] | None:
    """The raw original the entry names, or None (noted in `unavailable` if it is gone)."""
    raw = orjson.loads(entry).get("raw")
    if not isinstance(raw, dict):
        return None
    stored = logs.store.read_raw(info.id, seq)
    if stored is None:
        erased = logs.store.erased_seqs(info.id, seq, seq + 1).get(seq)
        unavailable.append({"seq": seq, "reason": "erased" if erased is not None else "missing",
                            **({"erasure_seq": erased} if erased is not None else {})})
        return None
    fmt, data = stored
    return f"raw/{seq}.{RAW_EXTENSIONS.get(fmt, 'json')}", data


def select_seqs(hits: Sequence[tuple[int, int]]) -> list[int]:
    """The seqs of search hits (time, seq), ascending."""
    return sorted({seq for _, seq in hits})


__all__ = ["FORMAT", "MAX_EVENTS", "Selection", "build_bundle", "choose_checkpoint",
           "select_seqs", "tlog_proof"]
