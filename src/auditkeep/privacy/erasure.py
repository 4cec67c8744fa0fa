"""Erasure of a data subject (the right to be forgotten) with every proof intact, and
the subject's events for an access request.

Personal values enter entries only as salted commitments (`{"$c": ...}`); their values
and salts, and the raw source objects, live beside the log. Erasing a subject deletes
those for every event the subject index names, and appends an erasure record to the
tenant's log: entries, leaves, tiles and checkpoints are untouched, so every inclusion
and consistency proof still verifies, while no value of the subject is held any more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.privacy.policy import RedactionPolicy
from auditkeep.privacy.pseudonyms import (
    PSEUDONYM_SECRET,
    normal_subject,
    pseudonym,
    subject_key,
    tenant_key,
)
from auditkeep.storage.base import Erasure

if TYPE_CHECKING:
    from auditkeep.log.service import LogService

ERASURE_ACTION = "auditkeep.privacy.erasure"
ERASURE_SUBMITTER = "auditkeep-privacy"
MAX_SUBJECT = 1024
MAX_LEGAL_BASIS = 1024
_ACTOR_PREFIX = "actor."


@dataclass(frozen=True, slots=True)
class ErasureResult:
    tenant: str
    subject: str  # the subject's pseudonym in this tenant, never the subject itself
    events: int  # events whose personal values or raw object were deleted
    values: int  # personal values deleted
    raws: int  # raw source objects deleted
    record_id: str | None  # the erasure record's event id (None: nothing was held)
    record_seq: int | None

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "subject": self.subject, "events": self.events,
                "values": self.values, "raws": self.raws, "record_id": self.record_id,
                "record_seq": self.record_seq}


def check_subject(subject: Any, pointer: str = "/subject") -> str:
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
        raise ValidationError("subject must be an actor id, an email or a pseudonym",
                              problems=[_problem(pointer, subject)])
    return subject.strip()


def _problem(pointer: str, value: Any) -> FieldProblem:
    return FieldProblem(pointer, "expected an actor id, an email or a pseudonym (1 to "
                        f"{MAX_SUBJECT} characters)", "a non-empty string",
                        type(value).__name__ if not isinstance(value, str) else "empty")


def subject_pseudonym(logs: LogService, tenant: str, subject: str) -> str:
    """How the erasure record and the access log name a subject: its pseudonym in the
    tenant (a pseudonym given as the subject is itself)."""
    key = tenant_key(logs.store.secret(PSEUDONYM_SECRET), tenant)
    return pseudonym(key, normal_subject(subject))


def subject_seqs(logs: LogService, tenant: str, subject: str) -> list[int]:
    """Seqs of the tenant's events that hold the subject's personal values or raw
    objects, found through the subject index (emails in any letter case)."""
    info = logs.store.get_log(tenant)
    if info is None:
        return []
    return logs.store.subject_seqs(info.id, [subject_key(subject)])


def erase_subject(logs: LogService, tenant: str, subject: str, *, requested_by: str,
                  legal_basis: str) -> ErasureResult:
    """Erase what the tenant holds of `subject`; idempotent (a second call finds
    nothing and appends nothing). The record is appended before the data goes, under an
    id derived from what it erases, so a crash between the two repeats the same record."""
    subject = check_subject(subject)
    if not legal_basis.strip() or len(legal_basis) > MAX_LEGAL_BASIS:
        raise ValidationError("legal_basis is required", problems=[_basis_problem()])
    pn = subject_pseudonym(logs, tenant, subject)
    seqs = subject_seqs(logs, tenant, subject)
    if not seqs:
        return ErasureResult(tenant, pn, 0, 0, 0, None, None)
    info = logs.info(tenant)
    wanted = normal_subject(subject)

    def same(value: Any) -> bool:
        return isinstance(value, str) and normal_subject(value) == wanted

    records = {r["seq"]: r for r in logs.records(tenant, seqs, personal=False)}
    seqs = [s for s in seqs if s in records]  # a purge since the lookup took the rest
    if not seqs:
        return ErasureResult(tenant, pn, 0, 0, 0, None, None)
    held = logs.store.read_personal(info.id, seqs)
    left: dict[int, dict[str, list[Any]] | None] = {}
    values = 0
    for seq in seqs:
        mine = held.get(seq) or {}
        actor_is_subject = same(records[seq]["actor"]["id"]) or any(
            k == "actor.email" and same(v[1]) for k, v in mine.items())
        keep = {k: v for k, v in mine.items()
                if not (same(v[1]) or (actor_is_subject and k.startswith(_ACTOR_PREFIX)))}
        values += len(mine) - len(keep)
        left[seq] = keep or None
    raws = [s for s in seqs if "raw" in records[s]]
    record_id = _record_id(tenant, pn, seqs, legal_basis)
    event = Event(
        action=ERASURE_ACTION,
        actor=Actor(id=requested_by, type="service"),
        outcome="success",
        category="admin",
        id=record_id,
        resource=Resource(type="data_subject", id=pn),
        reason=_scrubbed(legal_basis, subject, pn),
        metadata={"events": len(seqs), "values": values, "raws": len(raws),
                  "first_seq": seqs[0], "last_seq": seqs[-1]},
    )
    pending = prepare([event], tenant=tenant, submitter=ERASURE_SUBMITTER, may_set_tenant=True)
    appended = logs.append(tenant, pending).result()
    record_seq = appended.receipts[0].seq
    logs.store.erase(Erasure(info.id, left, raws, [subject_key(subject)], seqs, record_seq))
    return ErasureResult(tenant, pn, len(seqs), values, len(raws), record_id, record_seq)


def _scrubbed(basis: str, subject: str, pn: str) -> str:
    """The legal basis as it goes into the record, which nothing can erase: the subject
    written in it becomes its pseudonym, and other personal data is redacted."""
    text = basis.replace(subject, pn)
    text = RedactionPolicy().apply({"reason": text})["reason"]
    return str(text)[:MAX_LEGAL_BASIS]


def _basis_problem() -> FieldProblem:
    return FieldProblem("/legal_basis", "the legal basis of the erasure is required "
                        f"(1 to {MAX_LEGAL_BASIS} characters, e.g. GDPR Art. 17(1)(a))",
                        "a non-empty string", "missing")


def _record_id(tenant: str, pn: str, seqs: Iterable[int], basis: str) -> str:
    h = hashlib.sha256(f"{tenant}\n{pn}\n{basis}\n".encode())
    h.update(",".join(map(str, seqs)).encode())
    return "erasure:" + h.hexdigest()[:40]


__all__ = ["ERASURE_ACTION", "ErasureResult", "check_subject", "erase_subject",
           "subject_pseudonym", "subject_seqs"]
