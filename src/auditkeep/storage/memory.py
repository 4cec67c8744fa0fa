"""In-memory twin of the SQLite backend, for tests and for trying things out.

It keeps the same byte layouts (packed bundles, tile rows) so the conformance suite
exercises the same encodings, but nothing survives the process.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from auditkeep.errors import CorruptionError, FencedError, StorageError
from auditkeep.log.merkle import EMPTY_ROOT
from auditkeep.storage import runs
from auditkeep.storage.base import (
    TILE_WIDTH,
    AlertRecord,
    ArchiveRecord,
    Bundle,
    Commit,
    Cosignature,
    DeliveryRecord,
    DetectCommit,
    Erasure,
    HoldRecord,
    Lease,
    LogInfo,
    Purge,
    PurgedRange,
    RetentionRecord,
    SavedSearch,
    SigningKeyRecord,
    StoredCheckpoint,
    TokenRecord,
)
from auditkeep.storage.codec import tile_groups


class MemoryBackend:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, LogInfo] = {}
        self._bundles: dict[int, list[Bundle]] = {}
        self._personal: dict[int, dict[int, dict[str, list[Any]]]] = {}
        self._raws: dict[tuple[int, int], tuple[str, bytes]] = {}
        self._subjects: dict[tuple[int, int], set[int]] = {}
        self._erased: dict[int, dict[int, int]] = {}
        self._secrets: dict[str, bytes] = {}
        self._schemas: dict[tuple[str, str], list[str]] = {}
        self._saved: dict[tuple[str, str], SavedSearch] = {}
        self._tiles: dict[tuple[int, int, int], bytes] = {}
        self._dedup: dict[tuple[int, int], list[int]] = {}
        self._checkpoints: dict[int, list[StoredCheckpoint]] = {}
        self._tokens: dict[bytes, TokenRecord] = {}
        self._keys: list[SigningKeyRecord] = []
        self._cursors: dict[int, int] = {}
        self._state: dict[tuple[str, str], bytes] = {}
        self._alerts: dict[str, AlertRecord] = {}
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._leases: dict[int, Lease] = {}
        self._purged: dict[int, list[PurgedRange]] = {}
        self._retention: dict[str, RetentionRecord] = {}
        self._holds: dict[tuple[str, str], HoldRecord] = {}
        self._cosignatures: dict[tuple[int, int, str], Cosignature] = {}
        self._witness_heads: dict[str, tuple[int, bytes]] = {}
        self._archives: dict[tuple[int, int], ArchiveRecord] = {}

    def open_log(self, name: str, origin: str) -> LogInfo:
        with self._lock:
            if name not in self._logs:
                self._logs[name] = LogInfo(len(self._logs) + 1, name, origin, 0, EMPTY_ROOT)
            return _copy(self._logs[name])

    def get_log(self, name: str) -> LogInfo | None:
        with self._lock:
            log = self._logs.get(name)
            return _copy(log) if log else None

    def list_logs(self) -> list[LogInfo]:
        with self._lock:
            return [_copy(v) for _, v in sorted(self._logs.items())]

    def _log(self, log_id: int) -> LogInfo:
        for log in self._logs.values():
            if log.id == log_id:
                return log
        raise StorageError(f"no log with id {log_id}")

    def append(self, commit: Commit) -> None:
        with self._lock:
            log = self._log(commit.log_id)
            fence = commit.fence
            if fence is not None:
                held = self._leases.get(fence.log_id)
                if held is None or (held.holder, held.epoch) != (fence.holder, fence.epoch) \
                        or held.expires <= time.time():
                    raise FencedError(f"log {log.name}: sequencer {fence.holder} no longer "
                                      f"holds lease epoch {fence.epoch}; commit refused")
            if log.size != commit.first_seq:
                raise FencedError(f"log {log.name} is not at size {commit.first_seq}")
            bundles = self._bundles.setdefault(commit.log_id, [])
            for off in range(0, len(commit.entries), 256):
                bundles.append(Bundle(commit.first_seq + off, commit.entries[off : off + 256],
                                      commit.digests[off : off + 256]))
            self._personal.setdefault(commit.log_id, {}).update(commit.personal)
            for seq, raw in commit.raws.items():
                self._raws[(commit.log_id, seq)] = raw
            for seq, subject_keys in commit.subjects.items():
                for sk in subject_keys:
                    self._subjects.setdefault((commit.log_id, sk), set()).add(seq)
            for (level, idx), buf in tile_groups(commit.nodes).items():
                key = (commit.log_id, level, idx)
                self._tiles[key] = self._tiles.get(key, b"") + bytes(buf)
            for s, k in enumerate(commit.dedup, commit.first_seq):
                self._dedup.setdefault((commit.log_id, k), []).append(s)
            if commit.checkpoint is not None:
                self._checkpoints.setdefault(commit.log_id, []).append(commit.checkpoint)
            log.size, log.root = commit.size, commit.root
            if commit.bus_seq is not None:
                log.bus_seq = commit.bus_seq

    def acquire_lease(self, log_id: int, holder: str, ttl: float) -> Lease | None:
        with self._lock:
            now = time.time()
            held = self._leases.get(log_id)
            if held is not None and held.holder != holder and held.expires > now:
                return None
            epoch = 1 if held is None else (held.epoch if held.holder == holder
                                            and held.expires > now else held.epoch + 1)
            lease = self._leases[log_id] = Lease(log_id, holder, epoch, now + ttl)
            return lease

    def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        with self._lock:
            now = time.time()
            held = self._leases.get(lease.log_id)
            if held is None or (held.holder, held.epoch) != (lease.holder, lease.epoch) \
                    or held.expires <= now:
                return None
            renewed = self._leases[lease.log_id] = Lease(lease.log_id, lease.holder,
                                                         lease.epoch, now + ttl)
            return renewed

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            held = self._leases.get(lease.log_id)
            if held is not None and (held.holder, held.epoch) == (lease.holder, lease.epoch):
                self._leases[lease.log_id] = Lease(lease.log_id, lease.holder, lease.epoch, 0.0)

    def read_nodes(self, log_id: int, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        out = []
        for level, index in coords:
            tile = self._tiles.get((log_id, level, index // TILE_WIDTH), b"")
            off = (index % TILE_WIDTH) * 32
            h = tile[off : off + 32]
            if len(h) != 32:
                raise CorruptionError(f"log {log_id}: node ({level}, {index}) is missing")
            out.append(h)
        return out

    def read_tile_range(self, log_id: int, level: int, start: int, end: int) -> list[bytes]:
        return [self._tiles[(log_id, level, i)] for i in range(start, end)
                if (log_id, level, i) in self._tiles]

    def read_bundles(self, log_id: int, start: int, end: int) -> list[Bundle]:
        return [b for b in self._bundles.get(log_id, [])
                if b.first_seq < end and b.first_seq + len(b.entries) > start]

    def bundle_index(self, log_id: int) -> list[tuple[int, int]]:
        return sorted((b.first_seq, len(b.entries)) for b in self._bundles.get(log_id, []))

    def put_schema(self, tenant: str, action: str, schema: str, created: str) -> int:
        with self._lock:
            versions = self._schemas.setdefault((tenant, action), [])
            versions.append(schema)
            return len(versions)

    def get_schema(self, tenant: str, action: str, version: int | None = None
                   ) -> tuple[int, str] | None:
        with self._lock:
            versions = self._schemas.get((tenant, action), [])
            if not versions:
                return None
            v = len(versions) if version is None else version
            return (v, versions[v - 1]) if 1 <= v <= len(versions) else None

    def latest_schemas(self, tenant: str) -> dict[str, tuple[int, str]]:
        with self._lock:
            return {a: (len(vs), vs[-1]) for (t, a), vs in self._schemas.items()
                    if t == tenant and vs}

    def put_saved_search(self, tenant: str, name: str, body: str, created_by: str,
                         updated: str) -> None:
        with self._lock:
            self._saved[(tenant, name)] = SavedSearch(name, body, created_by, updated)

    def saved_searches(self, tenant: str) -> list[SavedSearch]:
        with self._lock:
            return sorted((v for (t, _), v in self._saved.items() if t == tenant),
                          key=lambda s: s.name)

    def delete_saved_search(self, tenant: str, name: str) -> bool:
        with self._lock:
            return self._saved.pop((tenant, name), None) is not None

    def secret(self, name: str) -> bytes:
        with self._lock:
            return self._secrets.setdefault(name, os.urandom(32))

    def subject_seqs(self, log_id: int, keys: Sequence[int]) -> list[int]:
        with self._lock:
            found: set[int] = set()
            for key in keys:
                found |= self._subjects.get((log_id, key), set())
            return sorted(found)

    def erase(self, erasure: Erasure) -> None:
        with self._lock:
            log_id = erasure.log_id
            store = self._personal.setdefault(log_id, {})
            for seq, left in erasure.personal.items():
                if seq in store:
                    if left:
                        store[seq] = left
                    else:
                        del store[seq]
            for seq in erasure.raws:
                self._raws.pop((log_id, seq), None)
            for key in erasure.subject_keys:
                self._subjects.get((log_id, key), set()).difference_update(erasure.seqs)
            marks = self._erased.setdefault(log_id, {})
            for seq in erasure.seqs:
                marks.setdefault(seq, erasure.record_seq)

    def erased_seqs(self, log_id: int, start: int = 0, end: int | None = None
                    ) -> dict[int, int]:
        with self._lock:
            return {s: b for s, b in self._erased.get(log_id, {}).items()
                    if s >= start and (end is None or s < end)}

    # retention ---------------------------------------------------------------

    def purge(self, purge: Purge) -> int:
        with self._lock:
            log = self._log(purge.log_id)
            if purge.seqs and (min(purge.seqs) < 0 or max(purge.seqs) >= log.size):
                raise StorageError(f"log {log.name}: cannot purge seqs outside [0, {log.size})")
            marks, fresh = runs.add(self._purged.get(log.id, []), purge.seqs, purge.record_seq)
            self._purged[log.id] = marks
            self._set_entries(log.id, dict.fromkeys(fresh, b""))
            store = self._personal.get(log.id, {})
            for seq in fresh:
                store.pop(seq, None)
                self._raws.pop((log.id, seq), None)
            gone = set(fresh)
            for (lid, _), found in self._subjects.items():
                if lid == log.id:
                    found -= gone
            return len(fresh)

    def _set_entries(self, log_id: int, entries: dict[int, bytes]) -> None:
        # new Bundle objects: a caller holding an earlier read keeps what it read
        bundles = self._bundles.get(log_id, [])
        for i, b in enumerate(bundles):
            end = b.first_seq + len(b.entries)
            if any(b.first_seq <= s < end for s in entries):
                new = [entries.get(s, e) for s, e in enumerate(b.entries, b.first_seq)]
                bundles[i] = Bundle(b.first_seq, new, list(b.digests))

    def purged_ranges(self, log_id: int, start: int = 0, end: int | None = None
                      ) -> list[PurgedRange]:
        with self._lock:
            return runs.clip(self._purged.get(log_id, []), start, end)

    def stored_bytes(self) -> dict[str, int]:
        with self._lock:  # uncompressed: nothing is encoded in memory
            out = {}
            for name, info in self._logs.items():
                size = sum(sum(map(len, b.entries)) + sum(map(len, b.digests))
                           for b in self._bundles.get(info.id, []))
                out[name] = size + sum(len(data) for (log, _), (_, data) in self._raws.items()
                                       if log == info.id)
            return out

    def restore(self, log_id: int, entries: dict[int, bytes]) -> int:
        with self._lock:
            marks, back = runs.remove(self._purged.get(log_id, []), entries)
            self._purged[log_id] = marks
            self._set_entries(log_id, {s: bytes(entries[s]) for s in back})
            return len(back)

    def put_retention(self, record: RetentionRecord) -> None:
        with self._lock:
            self._retention[record.tenant] = record

    def get_retention(self, tenant: str) -> RetentionRecord | None:
        with self._lock:
            return self._retention.get(tenant)

    def list_retention(self) -> list[RetentionRecord]:
        with self._lock:
            return [r for _, r in sorted(self._retention.items())]

    def put_hold(self, hold: HoldRecord) -> None:
        with self._lock:
            self._holds[(hold.tenant, hold.id)] = hold

    def get_hold(self, tenant: str, hold_id: str) -> HoldRecord | None:
        with self._lock:
            return self._holds.get((tenant, hold_id))

    def holds(self, tenant: str | None = None, *, active: bool | None = None
              ) -> list[HoldRecord]:
        with self._lock:
            found = [h for h in self._holds.values()
                     if (tenant is None or h.tenant == tenant)
                     and (active is None or (h.released is None) == active)]
        return sorted(found, key=lambda h: (h.created, h.tenant, h.id))

    # witnesses -----------------------------------------------------------------

    def put_cosignature(self, cosignature: Cosignature) -> None:
        with self._lock:
            c = cosignature
            self._cosignatures[(c.log_id, c.size, c.witness)] = c

    def cosignatures(self, log_id: int, size: int | None = None) -> list[Cosignature]:
        with self._lock:
            return [c for k, c in sorted(self._cosignatures.items())
                    if k[0] == log_id and (size is None or k[1] == size)]

    def witness_head(self, origin: str) -> tuple[int, bytes] | None:
        with self._lock:
            return self._witness_heads.get(origin)

    def set_witness_head(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        with self._lock:
            head = self._witness_heads.get(origin)
            if (head[0] if head is not None else 0) != old_size:
                return False
            self._witness_heads[origin] = (size, bytes(root))
            return True

    # cold archive ----------------------------------------------------------------

    def put_archive(self, record: ArchiveRecord) -> None:
        with self._lock:
            self._archives[(record.log_id, record.first)] = record

    def archives(self, log_id: int) -> list[ArchiveRecord]:
        with self._lock:
            return [a for k, a in sorted(self._archives.items()) if k[0] == log_id]

    def read_raw(self, log_id: int, seq: int) -> tuple[str, bytes] | None:
        with self._lock:
            return self._raws.get((log_id, seq))

    def read_raws(self, log_id: int, start: int, end: int) -> dict[int, tuple[str, bytes]]:
        with self._lock:
            return {s: v for (lid, s), v in self._raws.items()
                    if lid == log_id and start <= s < end}

    def read_personal(self, log_id: int, seqs: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        store = self._personal.get(log_id, {})
        return {s: store[s] for s in seqs if s in store}

    def find_dedup(self, log_id: int, keys: Sequence[int]) -> dict[int, list[int]]:
        return {k: list(self._dedup[(log_id, k)]) for k in keys if (log_id, k) in self._dedup}

    def put_checkpoint(self, log_id: int, cp: StoredCheckpoint) -> None:
        with self._lock:
            self._checkpoints.setdefault(log_id, []).append(cp)

    def checkpoints(self, log_id: int) -> list[StoredCheckpoint]:
        return sorted(self._checkpoints.get(log_id, []), key=lambda c: c.size)

    def latest_checkpoint(self, log_id: int) -> StoredCheckpoint | None:
        cps = self.checkpoints(log_id)
        return cps[-1] if cps else None

    def delete_checkpoints(self, log_id: int, which: Sequence[tuple[int, bytes]]) -> int:
        gone = set(which)
        with self._lock:
            cps = self._checkpoints.get(log_id, [])
            left = [c for c in cps if (c.size, bytes(c.root)) not in gone]
            self._checkpoints[log_id] = left
            return len(cps) - len(left)

    # detection -------------------------------------------------------------

    def detect_cursors(self) -> dict[int, int]:
        with self._lock:
            return dict(self._cursors)

    def detect_state(self) -> dict[tuple[str, str], bytes]:
        with self._lock:
            return dict(self._state)

    def detect_commit(self, commit: DetectCommit) -> None:
        with self._lock:
            self._cursors.update(commit.cursors)
            for key, data in commit.state.items():
                if data is None:
                    self._state.pop(key, None)
                else:
                    self._state[key] = bytes(data)
            for a in commit.alerts:
                old = self._alerts.get(a.id)
                if old is None:
                    self._alerts[a.id] = dataclasses.replace(a)
                elif old.tenant == a.tenant:  # an id is never taken over by another tenant
                    old.status, old.updated, old.body, old.level = (
                        a.status, a.updated, a.body, a.level)
                    if old.logged_seq is None:
                        old.logged_seq = a.logged_seq
            for d in commit.deliveries:
                # a pass repeated after a crash must not reset a delivery's progress
                self._deliveries.setdefault(d.id, dataclasses.replace(d))

    def alerts(self, tenant: str, *, rule: str | None = None, level: str | None = None,
               status: str | None = None, since: str | None = None, until: str | None = None,
               before: tuple[str, str] | None = None, limit: int = 100) -> list[AlertRecord]:
        with self._lock:
            rows = [a for a in self._alerts.values()
                    if a.tenant == tenant
                    and (rule is None or a.rule == rule)
                    and (level is None or a.level == level)
                    and (status is None or a.status == status)
                    and (since is None or a.created >= since)
                    and (until is None or a.created < until)
                    and (before is None or (a.created, a.id) < before)]
            rows.sort(key=lambda a: (a.created, a.id), reverse=True)
            return [dataclasses.replace(a) for a in rows[: max(limit, 0)]]

    def get_alert(self, tenant: str, alert_id: str) -> AlertRecord | None:
        with self._lock:
            a = self._alerts.get(alert_id)
            return dataclasses.replace(a) if a is not None and a.tenant == tenant else None

    def open_alert(self, tenant: str, dedup_key: str) -> AlertRecord | None:
        with self._lock:
            found = [a for a in self._alerts.values() if a.tenant == tenant
                     and a.dedup_key == dedup_key and a.status == "open"]
            if not found:
                return None
            return dataclasses.replace(max(found, key=lambda a: (a.created, a.id)))

    def update_alert(self, record: AlertRecord) -> None:
        with self._lock:
            a = self._alerts.get(record.id)
            if a is not None and a.tenant == record.tenant:
                a.status, a.updated, a.body, a.level = (
                    record.status, record.updated, record.body, record.level)

    def unlogged_alerts(self, limit: int = 100) -> list[AlertRecord]:
        with self._lock:
            rows = sorted((a for a in self._alerts.values() if a.logged_seq is None),
                          key=lambda a: (a.created, a.id))
            return [dataclasses.replace(a) for a in rows[: max(limit, 0)]]

    def set_alert_logged(self, alert_id: str, seq: int) -> None:
        with self._lock:
            a = self._alerts.get(alert_id)
            if a is not None:
                a.logged_seq = seq

    def due_deliveries(self, now: str, limit: int = 100) -> list[DeliveryRecord]:
        with self._lock:
            rows = sorted((d for d in self._deliveries.values()
                           if d.status == "pending" and d.next_attempt <= now),
                          key=lambda d: (d.next_attempt, d.id))
            return [dataclasses.replace(d) for d in rows[: max(limit, 0)]]

    def update_delivery(self, record: DeliveryRecord) -> None:
        with self._lock:
            d = self._deliveries.get(record.id)
            if d is not None and d.tenant == record.tenant:
                d.status, d.attempts, d.next_attempt, d.updated, d.last_error = (
                    record.status, record.attempts, record.next_attempt, record.updated,
                    record.last_error)

    def deliveries(self, tenant: str, *, status: str | None = None, alert_id: str | None = None,
                   limit: int = 100) -> list[DeliveryRecord]:
        with self._lock:
            rows = [d for d in self._deliveries.values()
                    if d.tenant == tenant
                    and (status is None or d.status == status)
                    and (alert_id is None or d.alert_id == alert_id)]
            rows.sort(key=lambda d: (d.updated, d.id), reverse=True)
            return [dataclasses.replace(d) for d in rows[: max(limit, 0)]]

    def get_delivery(self, tenant: str, delivery_id: str) -> DeliveryRecord | None:
        with self._lock:
            d = self._deliveries.get(delivery_id)
            return dataclasses.replace(d) if d is not None and d.tenant == tenant else None

    # tokens and keys ---------------------------------------------------------

    def put_token(self, token_hash: bytes, record: TokenRecord) -> None:
        with self._lock:
            self._tokens[token_hash] = record

    def token_by_hash(self, token_hash: bytes) -> TokenRecord | None:
        return self._tokens.get(token_hash)

    def list_tokens(self) -> list[TokenRecord]:
        return sorted(self._tokens.values(), key=lambda t: (t.created, t.id))

    def revoke_token(self, token_id: str, when: str) -> bool:
        with self._lock:
            for t in self._tokens.values():
                if t.id == token_id and t.revoked is None:
                    t.revoked = when
                    return True
            return False

    def put_signing_key(self, record: SigningKeyRecord) -> None:
        with self._lock:
            self._keys.append(record)

    def signing_keys(self) -> list[SigningKeyRecord]:
        return list(self._keys)

    def retire_signing_key(self, public_key: bytes, when: str) -> None:
        with self._lock:
            for k in self._keys:
                if k.public_key == public_key:
                    k.retired = when

    def export_secrets(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._secrets)

    def import_secret(self, name: str, value: bytes) -> None:
        with self._lock:
            self._secrets.setdefault(name, value)

    def export_tokens(self) -> list[tuple[bytes, TokenRecord]]:
        with self._lock:
            return [(h, dataclasses.replace(t)) for h, t in self._tokens.items()]

    def close(self) -> None:
        pass


def _copy(log: LogInfo) -> LogInfo:
    return dataclasses.replace(log)
