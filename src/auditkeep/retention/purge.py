"""Applying retention: purge what the plan says is due, log by log, proofs intact.

Like an erasure (privacy/erasure.py), a purge first appends its own record to the log
it purges (action `auditkeep.retention.purge`, category `admin`, under an id derived
from what it purges, so a crash before the purge repeats the same record rather than
adding one), then takes the events out of the search index and purges them from the
store in batches: entry bytes, personal values, raw objects and subject rows go;
leaves, tiles and checkpoints stay, and `verify` reports the run as purged by that
record. docs/retention.md.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from auditkeep.log.service import tenant_of
from auditkeep.pipeline.prepare import now_utc, prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.query.indexer import parsed_raws
from auditkeep.retention.holds import active_matcher
from auditkeep.retention.plan import READ_BATCH, Archived, LogPlan, walk_log
from auditkeep.retention.policy import (
    SOURCE_API,
    Layer,
    Policy,
    effective,
    layer_from_stored,
)
from auditkeep.storage.base import LogInfo, Purge, RetentionRecord

if TYPE_CHECKING:
    from auditkeep.log.service import LogService
    from auditkeep.pipeline.config_keeping import RetentionConfig
    from auditkeep.query.index import SearchIndex
    from auditkeep.query.pgindex import PgSearchIndex

PURGE_ACTION = "auditkeep.retention.purge"
PURGE_SUBMITTER = "auditkeep-retention"
JOB_ACTOR = "auditkeep-retention"
BATCH = 10_000  # seqs per store.purge call (one transaction each)
PASS_LIMIT = 100_000  # seqs one purge record covers at most; more go in the next pass


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """One purge of one log: its record, and what went."""

    tenant: str
    log: str
    events: int
    entry_bytes: int
    raw_bytes: int
    personal_values: int
    categories: dict[str, int]
    first_seq: int
    last_seq: int
    record_id: str
    record_seq: int

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "log": self.log, "events": self.events,
                "entry_bytes": self.entry_bytes, "raw_bytes": self.raw_bytes,
                "personal_values": self.personal_values, "categories": self.categories,
                "first_seq": self.first_seq, "last_seq": self.last_seq,
                "record_id": self.record_id, "record_seq": self.record_seq}


@dataclass(slots=True)
class RunReport:
    purges: list[PurgeResult] = field(default_factory=list)
    more: bool = False  # a pass stopped at its limit: run again

    @property
    def events(self) -> int:
        return sum(p.events for p in self.purges)

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "purges": [p.to_json() for p in self.purges]}


class Retention:
    """Policies, plans and purges over one store: what the HTTP API, the CLI's server
    and the scheduled job share. One purge runs at a time in a process."""

    def __init__(self, logs: LogService, index: SearchIndex | PgSearchIndex | None,
                 config: RetentionConfig, *, archive: bool = False) -> None:
        self.logs = logs
        self.store = logs.store
        self.index = index
        self.config = config
        self.archive = archive  # a cold archive is configured: purge waits for it
        self._running = threading.Lock()
        self.purged = 0  # events purged through this object (the metric)
        self.last_run: str | None = None  # when the last run ended

    # policies -------------------------------------------------------------------------

    def policy(self, tenant: str) -> Policy:
        stored = self.store.get_retention(tenant)
        layers = self.config.layers(tenant)
        if stored is not None:
            layers = [(layer_from_stored(stored.body), SOURCE_API), *layers]
        return effective(tenant, layers, archive=self.archive)

    def stored(self, tenant: str) -> RetentionRecord | None:
        return self.store.get_retention(tenant)

    def set_policy(self, tenant: str, layer: Layer, *, by: str) -> Policy:
        """Store `layer` as the tenant's own policy (it replaces the one stored before;
        what it leaves unset comes from the configuration file)."""
        self.store.put_retention(RetentionRecord(
            tenant, orjson.dumps(layer.to_json()).decode(), now_utc(), by))
        return self.policy(tenant)

    # plans and purges -----------------------------------------------------------------

    def _logs_of(self, tenants: Iterable[str] | None) -> list[tuple[str, LogInfo]]:
        wanted = None if tenants is None else set(tenants)
        out = []
        for info in self.store.list_logs():
            tenant = tenant_of(info.name)
            if wanted is None or tenant in wanted:
                out.append((tenant, info))
        return sorted(out, key=lambda t: t[1].name)

    def _archived(self, policy: Policy, info: LogInfo) -> Archived | None:
        if not policy.require_archive:
            return None
        return Archived([(a.first, a.end) for a in self.store.archives(info.id)])

    def plan(self, tenants: Iterable[str] | None = None, now: datetime | None = None
             ) -> list[LogPlan]:
        """The dry run: what a run would purge now, per log (both logs of a tenant)."""
        now = now or datetime.now(UTC)
        out = []
        for tenant, info in self._logs_of(tenants):
            policy = self.policy(tenant)
            out.append(walk_log(self.store, info, tenant, policy,
                                active_matcher(self.store, info.name), now,
                                archived=self._archived(policy, info)))
        return out

    def run(self, tenants: Iterable[str] | None = None, *, actor: str = JOB_ACTOR,
            now: datetime | None = None, passes: int | None = None) -> RunReport:
        """Purge what is due, pass after pass until nothing is (or `passes` ran)."""
        now = now or datetime.now(UTC)
        report = RunReport()
        wanted = None if tenants is None else list(tenants)
        done = 0
        with self._running:
            while passes is None or done < passes:
                more = False
                for tenant, info in self._logs_of(wanted):
                    result, left = self._purge_log(tenant, info, actor, now)
                    if result is not None:
                        report.purges.append(result)
                    more = more or left
                done += 1
                if not more:
                    break
            report.more = more
            self.purged += report.events
            self.last_run = now_utc()
        return report

    def _purge_log(self, tenant: str, info: LogInfo, actor: str, now: datetime
                   ) -> tuple[PurgeResult | None, bool]:
        policy = self.policy(tenant)
        if not policy.purges_anything():
            return None, False
        plan = walk_log(self.store, info, tenant, policy, active_matcher(self.store, info.name),
                        now, archived=self._archived(policy, info), end=self._indexed(info),
                        limit=PASS_LIMIT, collect=True)
        if not plan.seqs:
            return None, False
        record_id, record_seq = self._record(tenant, info, plan, actor)
        for i in range(0, len(plan.seqs), BATCH):
            batch = plan.seqs[i:i + BATCH]
            if self.index is not None:
                # The search index first: a crash after it leaves events the next pass
                # purges; after the store, events the index would keep finding.
                records, raws = self._records(info.id, batch)
                self.index.forget(info.id, records, raws)
            self.store.purge(Purge(info.id, batch, record_seq))
        self.logs.forget_bundles(info.id)
        return PurgeResult(
            tenant, info.name, plan.events,
            sum(c.entry_bytes for c in plan.categories.values()),
            sum(c.raw_bytes for c in plan.categories.values()),
            sum(c.personal_values for c in plan.categories.values()),
            {k: c.events for k, c in sorted(plan.categories.items()) if c.events},
            plan.seqs[0], plan.seqs[-1], record_id, record_seq), not plan.complete

    def _indexed(self, info: LogInfo) -> int | None:
        """Purge only what the search index has fully indexed, so the indexer never adds
        an event after its purge took it out of the index (it reads purged ones as b"")."""
        if self.index is None:
            return None
        return min(self.index.cursors().get(info.id, 0),
                   self.index.field_cursors().get(info.id, 0))

    def _records(self, log_id: int, seqs: list[int]
                 ) -> tuple[list[dict[str, Any]], dict[int, Any]]:
        """The records and parsed raws of `seqs` (ascending), read a window at a time
        where they are (a sparse category's seqs may span much of the log)."""
        wanted = set(seqs)
        records = []
        raws: dict[int, tuple[str, bytes]] = {}
        for window in sorted({s // READ_BATCH for s in seqs}):
            lo, hi = window * READ_BATCH, (window + 1) * READ_BATCH
            for b in self.store.read_bundles(log_id, lo, hi):
                for seq, entry in enumerate(b.entries, b.first_seq):
                    if seq in wanted and entry:
                        records.append(orjson.loads(entry))
            raws.update((s, r) for s, r in self.store.read_raws(log_id, lo, hi).items()
                        if s in wanted)
        return records, parsed_raws(raws)

    def _record(self, tenant: str, info: LogInfo, plan: LogPlan, actor: str
                ) -> tuple[str, int]:
        """Append the purge's record to the log it purges; (its id, its seq)."""
        cats = {k: c.events for k, c in sorted(plan.categories.items()) if c.events}
        record_id = _record_id(info.name, plan.policy, plan.seqs)
        event = Event(
            action=PURGE_ACTION,
            actor=Actor(id=actor, type="system" if actor == JOB_ACTOR else "service"),
            outcome="success",
            category="admin",
            id=record_id,
            resource=Resource(type="log", id=info.name),
            reason="retention policy",
            metadata={
                "policy": plan.policy.summary(),
                "events": plan.events,
                "entry_bytes": sum(c.entry_bytes for c in plan.categories.values()),
                "raw_bytes": sum(c.raw_bytes for c in plan.categories.values()),
                "personal_values": sum(c.personal_values for c in plan.categories.values()),
                "first_seq": plan.seqs[0],
                "last_seq": plan.seqs[-1],
                "categories": cats,
            },
        )
        pending = prepare([event], tenant=tenant, submitter=PURGE_SUBMITTER, may_set_tenant=True)
        appended = self.logs.append(info.name, pending).result()
        return record_id, appended.receipts[0].seq


def _record_id(log: str, policy: Policy, seqs: list[int]) -> str:
    h = hashlib.sha256(f"{log}\n".encode())
    h.update(orjson.dumps(policy.summary(), option=orjson.OPT_SORT_KEYS))
    h.update(b"\n" + ",".join(map(str, seqs)).encode())
    return "retention:" + h.hexdigest()[:40]


__all__ = ["BATCH", "PASS_LIMIT", "PURGE_ACTION", "PurgeResult", "Retention", "RunReport"]
