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
and detection's cursors, window state, alerts and deliveries; and retention's rows:
purge marks, policies, legal holds, witness cosignatures, the witness heads of the
copied logs' origins, and cold-archive rows.

A seq purged by retention has no bytes to hash: its leaf is the source's stored one
(the roots and signed checkpoints above it are still checked), and the copy is purged
again under the same retention record. Its id is gone, so its dedup key cannot be
recomputed; the copy gets a placeholder key, and a purged event sent again is stored
anew rather than answered as a duplicate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from auditkeep.errors import ConfigError
from auditkeep.log import merkle
from auditkeep.log.service import tenant_of
from auditkeep.pipeline.prepare import dedup_key, subject_keys
from auditkeep.storage.base import (
    Backend,
    Commit,
    DetectCommit,
    Erasure,
    LogInfo,
    Purge,
    PurgedRange,
)
from auditkeep.storage.runs import covered

CHUNK = 4096
PURGE_BATCH = 10_000  # seqs a `purge` call takes at most


@dataclass(slots=True)
class Migrated:
    name: str
    entries: int
    checkpoints: int
    erased: int
    purged: int = 0


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
    purged = src.purged_ranges(info.id)
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
        records = [orjson.loads(e) if e else None for e in entries]
        dedup = [dedup_key(r["id"]) if r is not None else dedup_key(f"purged:{seq}")
                 for seq, r in zip(seqs, records, strict=True)]
        subjects = {}
        for seq, rec in zip(seqs, records, strict=True):
            if rec is not None and (seq in personal or seq in raws):
                subjects[seq] = subject_keys(rec["actor"]["id"], personal.get(seq))
        leaves = merkle.leaf_hashes(entries)
        _purged_leaves(src, info, purged, start, entries, leaves)
        nodes = tree.extend_runs(leaves)
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
    _copy_purges(dst, target, purged)
    for c in src.cosignatures(info.id):
        dst.put_cosignature(dataclasses.replace(c, log_id=target.id))
    for a in src.archives(info.id):
        dst.put_archive(dataclasses.replace(a, log_id=target.id))
    return Migrated(info.name, info.size, len(checkpoints), len(erased),
                    sum(r.end - r.first for r in purged))


def _purged_leaves(src: Backend, info: LogInfo, purged: list[PurgedRange], first: int,
                   entries: list[bytes], leaves: list[bytes]) -> None:
    """Put the source's stored leaf in place of each purged entry's (it has no bytes)."""
    empty = [seq for seq, e in enumerate(entries, first) if not e]
    if not empty:
        return
    unmarked = [seq for seq in empty if covered(purged, seq) is None]
    if unmarked:
        raise ConfigError(f"log {info.name}: seq {unmarked[0]} has no entry bytes and no "
                          "retention purge mark; run `auditkeep verify` on the source")
    for seq, leaf in zip(empty, src.read_nodes(info.id, [(0, s) for s in empty]),
                         strict=True):
        leaves[seq - first] = leaf


def _copy_purges(dst: Backend, target: LogInfo, purged: list[PurgedRange]) -> None:
    by_record: dict[int, list[int]] = {}
    for r in purged:
        by_record.setdefault(r.record_seq, []).extend(range(r.first, r.end))
    for record_seq, seqs in sorted(by_record.items()):
        for i in range(0, len(seqs), PURGE_BATCH):
            dst.purge(Purge(target.id, seqs[i : i + PURGE_BATCH], record_seq))


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
    for policy in src.list_retention():
        dst.put_retention(policy)
    for hold in src.holds():
        dst.put_hold(hold)
    # The store lists witness heads by origin only: those of the copied logs' origins
    # are copied (a witness serving elsewhere keeps its own store).
    for info in logs:
        head = src.witness_head(info.origin)
        if head is not None:
            mine = dst.witness_head(info.origin)
            dst.set_witness_head(info.origin, mine[0] if mine else 0, *head)
