"""One `POST /v1/events` body to the prepared events its log will append: decode, route
to a tenant, run the tenant's stages and action schemas, prepare. The same function runs
in the server process or in an ingest worker (server/workers.py), so both answer alike."""

from __future__ import annotations

from dataclasses import dataclass

from auditkeep.pipeline.prepare import Pending, epoch_of, prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.server.pipelines import Pipelines


@dataclass(frozen=True, slots=True)
class IngestJob:
    """What the request handler knows before looking inside the body."""

    body: bytes
    ndjson: bool
    tenant: str  # the caller's tenant (for an admin: `?tenant=`, else "default")
    route_by_events: bool  # an admin without `?tenant=`: an event's `tenant` routes it
    submitter: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """What the SLIs need of a batch (health/slis.py), read while its events' fields
    are at hand: an ingest worker sends the pendings back without them."""

    received: float  # the server's received time, epoch seconds
    skew: float  # received - time of the first event (negative: the producer is ahead)
    unknown: int  # events whose actor is anonymous


@dataclass(slots=True)
class PreparedBatch:
    tenant: str
    pendings: list[Pending]  # empty when configured stages dropped every event
    dropped: int
    facts: BatchFacts | None = None  # None when every event was dropped


def prepare_batch(job: IngestJob, pipelines: Pipelines) -> PreparedBatch:
    """Prepare every event of the body, or raise naming every bad one (nothing is kept)."""
    events = decode_events(job.body, ndjson=job.ndjson)
    tenant = job.tenant
    if job.route_by_events:
        for ev in events:
            if ev.tenant is not None:
                tenant = ev.tenant
                break
    single = not job.ndjson and not job.body.lstrip().startswith(b"[")
    events, _, dropped = pipelines.run_events(tenant, "api", events, single=single)
    if not events:  # every event was dropped by a configured stage (counted)
        return PreparedBatch(tenant, [], dropped)
    pipelines.apply_schemas(tenant, events, single=single)
    pendings = prepare(events, tenant=tenant, submitter=job.submitter,
                       may_set_tenant=job.is_admin, single=single)
    return PreparedBatch(tenant, pendings, dropped, batch_facts(pendings))


def batch_facts(pendings: list[Pending]) -> BatchFacts | None:
    if not pendings:
        return None
    first = pendings[0].fields
    received = epoch_of(first["received"])
    unknown = sum(1 for p in pendings if p.fields["actor"].get("type") == "anonymous")
    return BatchFacts(received, received - epoch_of(first["time"]), unknown)
