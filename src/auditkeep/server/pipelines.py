"""The configured ingest pipelines, built once per (tenant, source) and run before events
are validated and sequenced. Without a configuration, or for a tenant with no stages,
requests take the direct path and pay nothing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from auditkeep.pipeline.schema import Event
from auditkeep.pipeline.schemas import ActionSchemas, raise_violations
from auditkeep.pipeline.validate import decode_events

if TYPE_CHECKING:  # a worker process need not import the configuration's loaders
    from auditkeep.pipeline.config import ServerConfig
    from auditkeep.pipeline.stages import Pipeline


class Pipelines:
    def __init__(self, config: ServerConfig | None, schemas: ActionSchemas, *,
                 secret: bytes = b"") -> None:
        self.config = config
        self.schemas = schemas
        self._secret = secret  # the store's pseudonym secret, for `redact`'s `hash`
        self._built: dict[tuple[str, str], Pipeline | None] = {}
        self._lock = threading.Lock()
        self.dropped: dict[str, int] = {}  # by reason, for /v1/status and /metrics
        self.redactions: dict[tuple[str, str], int] = {}  # by (tenant, rule), for /metrics

    def for_(self, tenant: str, source: str) -> Pipeline | None:
        key = (tenant, source)
        with self._lock:
            if key not in self._built:
                p = self.config.pipeline_for(tenant, source, secret=self._secret) \
                    if self.config else None
                self._built[key] = p if p is not None and p.stages else None
            return self._built[key]

    def run_events(self, tenant: str, source: str, events: list[Event], *, single: bool
                   ) -> tuple[list[Event], list[int], int]:
        """Events after the stages (re-validated), each one's position in the request,
        and how many were dropped. Raises StageRejection naming every refused event."""
        pipeline = self.for_(tenant, source)
        if pipeline is None:
            return events, list(range(len(events))), 0
        return self._run(pipeline, msgspec.to_builtins(events), single=single, tenant=tenant)

    def run_dicts(self, tenant: str, source: str, events: Sequence[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[int], int]:
        """As `run_events`, for the event dicts a source mapped."""
        pipeline = self.for_(tenant, source)
        if pipeline is None:
            return list(events), list(range(len(events))), 0
        result = pipeline(list(events))
        result.raise_for_problems()
        self._count(result.drop_counts)
        return result.events, result.positions, len(result.dropped)

    def redact_raws(self, tenant: str, source: str, events: Sequence[dict[str, Any]],
                    raws: Sequence[bytes]) -> list[bytes]:
        """The raw originals of mapped `events` with the tenant's `redact` stages applied
        (what fired is added to each event's `redactions`); unchanged without any."""
        pipeline = self.for_(tenant, source)
        policies = [s for s in pipeline.stages if getattr(s, "kind", None) == "redact"] \
            if pipeline is not None else []
        if not policies:
            return list(raws)
        out = []
        for event, data in zip(events, raws, strict=True):
            for policy in policies:
                data, fired = policy.redact_raw(data)  # type: ignore[attr-defined]
                if fired:
                    event.setdefault("redactions", []).extend(fired)
            out.append(data)
        return out

    def count_redactions(self, tenant: str, events: Sequence[Any]) -> None:
        """Count what the stages' redactions fired, by tenant and rule (events are the
        dicts after the stages)."""
        counts: dict[tuple[str, str], int] = {}
        for ev in events:
            fired = ev.get("redactions") if type(ev) is dict else None
            if fired:
                for r in fired:
                    key = (tenant, str(r.get("rule")))
                    counts[key] = counts.get(key, 0) + 1
        if counts:
            self.add_redactions(counts)

    def add_redactions(self, counts: dict[tuple[str, str], int]) -> None:
        with self._lock:
            for key, n in counts.items():
                self.redactions[key] = self.redactions.get(key, 0) + n

    def _run(self, pipeline: Pipeline, dicts: list[Any], *, single: bool, tenant: str
             ) -> tuple[list[Event], list[int], int]:
        result = pipeline(dicts, single=single)
        result.raise_for_problems()
        self._count(result.drop_counts)
        self.count_redactions(tenant, result.events)
        kept = decode_events(orjson.dumps(result.events), ndjson=False) if result.events else []
        return kept, result.positions, len(result.dropped)

    def apply_schemas(self, tenant: str, events: list[Event], *, single: bool) -> None:
        """Check events against their action's schema: raise (`reject`) or mark them
        with `metadata.schema_violation` (`flag`), as the tenant is configured."""
        actions = self.schemas.actions(tenant)
        if not actions:  # the ingest path: nothing to build when the tenant has no schemas
            return
        pairs: list[tuple[str, dict[str, Any]] | None] = []
        for ev in events:
            if ev.action not in actions:
                pairs.append(None)
                continue
            instance: dict[str, Any] = {}
            if ev.metadata is not None:
                instance["metadata"] = ev.metadata
            if ev.resource is not None:
                instance["resource"] = msgspec.to_builtins(ev.resource)
            pairs.append((ev.action, instance))
        found = self.schemas.check(tenant, pairs)
        if not found:
            return
        mode = self.config.schema_violations_for(tenant) if self.config else "reject"
        if mode == "reject":
            raise_violations(found, single=single)
        for v in found:
            ev = events[v.index]
            ev.metadata = {**(ev.metadata or {}), "schema_violation": {
                "version": v.version, "pointer": v.pointer, "message": v.message[:512]}}

    def add_counts(self, dropped: dict[str, int], violations: dict[str, int],
                   redactions: dict[tuple[str, str], int] | None = None) -> None:
        """Add drops (by reason), schema violations (by tenant) and redactions (by
        tenant and rule) counted by an ingest worker, so /v1/status and /metrics stay
        whole."""
        self._count(dropped)
        self.schemas.count_violations(violations)
        if redactions:
            self.add_redactions(redactions)

    def _count(self, counts: dict[str, int]) -> None:
        if counts:
            with self._lock:
                for reason, n in counts.items():
                    self.dropped[reason] = self.dropped.get(reason, 0) + n
