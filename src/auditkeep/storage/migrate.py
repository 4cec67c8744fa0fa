"""Copy a store into another (`auditkeep migrate --from DIR --to postgresql://…`).

Every log keeps its name, origin, seqs, entry bytes and digests, and its checkpoints.
The copy does not trust the source's tiles: it recomputes every leaf and node from
the entries through the target's ordinary `append`, then checks that each copied
checkpoint's root is the root of the target's tree at that size, and that the final
root is the source's. So a migrated log proves exactly what the original proved, or
the migration stops with the first disagreement.

Beside the logs: personal values, raw originals, subject index, erasure marks, dedup
keys (recomputed from the ids, as at ingest), signing keys, per-action schemas (every
version), saved searches, tokens, the server's secrets (so pseudonyms do not change)
and detection's cursors, window state, alerts and deliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from auditkeep.errors import ConfigError
from auditkeep.log import merkle
from auditkeep.log.service import tenant_of
from auditkeep.pipeline.prepare import dedup_key, subject_keys
from auditkeep.storage.base import Backend, Commit, DetectCommit, Erasure, LogInfo

CHUNK = 4096


@dataclass(slots=True)
class Migrated:
    name: str
    entries: int
    checkpoints: int
    erased: int


def migrate(src: Backend, dst: Backend, *, chunk: int = CHUNK,
            progress: Callable[[str, int, int], None] | None = None) -> list[Migrated]:
    """Copy everything of `src` into `dst`, which must hold none of its logs yet."""
    logs = src.list_logs()
    for info in logs:
        there = dst.get_log(info.name)
        if there is not None and there.size:
            raise ConfigError(f"the target already holds log {info.name} with {there.size} "
                              "entries; migrate into an empty database")
    done = []
    ids: dict[int, int] = {}
    for info in logs:
        target = dst.open_log(info.name, info.origin)
        ids[info.id] = target.id
        done.append(_copy_log(src, dst, info, target, chunk, progress))
    _copy_beside(src, dst, logs, ids)
    return done


def _copy_log(src: Backend, dst: Backend, info: LogInfo, target: LogInfo, chunk: int,
              progress: Callable[[str, int, int], None] | None) -> Migrated:
    tree = merkle.CompactTree()
    for start in range(0, info.size, chunk):
        end = min(start + chunk, info.size)
        entries: list[bytes] = []
        digests: list[bytes] = []
        for b in src.read_bundles(info.id, start, end):
            lo, hi = max(start - b.first_seq, 0), min(end - b.first_seq, len(b.entries))
            entries += b.entries[lo:hi]
            digests += b.digests[lo:hi]
        if len(entries) != end - start:
            raise ConfigError(f"log {info.name}: seqs {start}..{end - 1} are not all stored "
                              "in the source; run `auditkeep verify` on it")
        seqs = range(start, end)
        personal = src.read_personal(info.id, list(seqs))
        raws = src.read_raws(info.id, start, end)
        records = [orjson.loads(e) for e in entries]
        dedup = [dedup_key(r["id"]) for r in records]
        subjects = {}
        for seq, rec in zip(seqs, records, strict=True):
            if seq in personal or seq in raws:
                subjects[seq] = subject_keys(rec["actor"]["id"], personal.get(seq))
        nodes = tree.extend_runs(merkle.leaf_hashes(entries))
        dst.append(Commit(target.id, start, entries, digests, dedup,
                          dict(personal), nodes, tree.size, tree.root(), None, raws, subjects))
        if progress is not None:
            progress(info.name, end, info.size)
    if tree.size and tree.root() != info.root:
        raise ConfigError(f"log {info.name}: the entries hash to a root other than the "
                          "source's; the source is damaged (run `auditkeep verify`)")
    checkpoints = src.checkpoints(info.id)
    reader: merkle.NodeReader = lambda coords: dst.read_nodes(target.id, coords)  # noqa: E731
    for cp in checkpoints:
        root = merkle.root_from_reader(cp.size, reader) if cp.size else merkle.EMPTY_ROOT
        if root != cp.root:
            raise ConfigError(f"log {info.name}: the checkpoint of size {cp.size} does not "
                              "match the entries; the source is damaged (run `auditkeep verify`)")
        dst.put_checkpoint(target.id, cp)
    erased = src.erased_seqs(info.id)
    by_record: dict[int, list[int]] = {}
    for seq, by in erased.items():
        by_record.setdefault(by, []).append(seq)
    for by, seqs_erased in sorted(by_record.items()):
        dst.erase(Erasure(target.id, {}, [], [], sorted(seqs_erased), by))
    return Migrated(info.name, info.size, len(checkpoints), len(erased))


def _copy_beside(src: Backend, dst: Backend, logs: list[LogInfo], ids: dict[int, int]) -> None:
    have = {k.public_key for k in dst.signing_keys()}
    for key in src.signing_keys():
        if key.public_key not in have:
            dst.put_signing_key(key)
            if key.retired:
                dst.retire_signing_key(key.public_key, key.retired)
    for name, value in src.export_secrets().items():
        dst.import_secret(name, value)
    for token_hash, record in src.export_tokens():
        if dst.token_by_hash(token_hash) is None:
            dst.put_token(token_hash, record)
    tenants = sorted({tenant_of(i.name) for i in logs})
    for tenant in tenants:
        for action, (latest, _) in src.latest_schemas(tenant).items():
            for version in range(1, latest + 1):
                found = src.get_schema(tenant, action, version)
                if found is not None:
                    dst.put_schema(tenant, action, found[1], "migrated")
        for s in src.saved_searches(tenant):
            dst.put_saved_search(tenant, s.name, s.body, s.created_by, s.updated)
        alerts = []
        before = None
        while page := src.alerts(tenant, before=before, limit=500):
            alerts += page
            before = (page[-1].created, page[-1].id)
        deliveries = src.deliveries(tenant, limit=1_000_000)
        dst.detect_commit(DetectCommit(alerts=alerts, deliveries=deliveries))
    cursors = {ids[log_id]: seq for log_id, seq in src.detect_cursors().items() if log_id in ids}
    dst.detect_commit(DetectCommit(cursors=cursors, state=dict(src.detect_state())))
