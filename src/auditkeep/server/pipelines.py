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
    def __init__(self, config: ServerConfig | None, schemas: ActionSchemas) -> None:
        self.config = config
        self.schemas = schemas
        self._built: dict[tuple[str, str], Pipeline | None] = {}
        self._lock = threading.Lock()
        self.dropped: dict[str, int] = {}  # by reason, for /v1/status and /metrics

    def for_(self, tenant: str, source: str) -> Pipeline | None:
        key = (tenant, source)
        with self._lock:
            if key not in self._built:
                p = self.config.pipeline_for(tenant, source) if self.config else None
                self._built[key] = p if p is not None and p.stages else None
            return self._built[key]

    def run_events(self, tenant: str, source: str, events: list[Event], *, single: bool
                   ) -> tuple[list[Event], list[int], int]:
        """Events after the stages (re-validated), each one's position in the request,
        and how many were dropped. Raises StageRejection naming every refused event."""
        pipeline = self.for_(tenant, source)
        if pipeline is None:
            return events, list(range(len(events))), 0
        return self._run(pipeline, msgspec.to_builtins(events), single=single)

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

    def _run(self, pipeline: Pipeline, dicts: list[Any], *, single: bool
             ) -> tuple[list[Event], list[int], int]:
        result = pipeline(dicts, single=single)
        result.raise_for_problems()
        self._count(result.drop_counts)
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

    def add_counts(self, dropped: dict[str, int], violations: dict[str, int]) -> None:
        """Add drops (by reason) and schema violations (by tenant) counted by an ingest
        worker, so /v1/status and /metrics stay whole."""
        self._count(dropped)
        self.schemas.count_violations(violations)

    def _count(self, counts: dict[str, int]) -> None:
        if counts:
            with self._lock:
                for reason, n in counts.items():
                    self.dropped[reason] = self.dropped.get(reason, 0) + n
