"""Legal holds: a tenant's events matching a query (in a time window) are never purged
while the hold is active. Creating and releasing a hold are themselves events in the
tenant's log; the hold rows beside the log say which holds are active now.

A hold on tenant T covers both of T's logs, T and T._access, with the same query: the
query language sees an `_access` record like any other event (its action is
`auditkeep.read.*`, its actor the reading token), so `action:auditkeep.read.*` holds the
record of who read what. An active hold always holds its own create record too.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from auditkeep.errors import ConflictError, FieldProblem, NotFoundError, ValidationError
from auditkeep.log.service import tenant_of
from auditkeep.pipeline.prepare import format_time, now_utc, prepare
from auditkeep.pipeline.schema import Actor, Event, Resource
from auditkeep.privacy.policy import RedactionPolicy
from auditkeep.query import ast, fields
from auditkeep.query.indexer import parsed_raws
from auditkeep.query.lang import parse
from auditkeep.query.predicate import Doc, Predicate, Scalar, compile_predicate
from auditkeep.query.text import tokens
from auditkeep.storage.base import Backend, HoldRecord

if TYPE_CHECKING:
    from auditkeep.log.service import LogService

HOLD_CREATE_ACTION = "auditkeep.hold.create"
HOLD_RELEASE_ACTION = "auditkeep.hold.release"
HOLD_SUBMITTER = "auditkeep-holds"
MAX_QUERY = 4096
MAX_REASON = 1024
_ID_CHARS = 12
#: One process changes a hold row at a time (a release racing a release).
_changing = threading.Lock()

RecordMatcher = Callable[[dict[str, Any]], bool]


def new_hold_id() -> str:
    """`hold_` and 12 base32 characters (60 random bits)."""
    return "hold_" + base64.b32encode(os.urandom(8)).decode("ascii")[:_ID_CHARS].lower()


# -- matching ---------------------------------------------------------------------------


class _Compiled:
    __slots__ = ("id", "needs", "since", "test", "until")

    def __init__(self, hold: HoldRecord) -> None:
        self.id = hold.id
        self.since = _us(hold.since) if hold.since else None
        self.until = _us(hold.until) if hold.until else None
        try:
            node = parse(hold.query)
        except ValidationError:
            # A stored query this version no longer reads (the language changed): the
            # hold keeps everything in its window rather than nothing.
            node = ast.All()
        self.test: Predicate = compile_predicate(node)
        self.needs = _needs(node)

    def in_window(self, t: int) -> bool:
        return (self.since is None or t >= self.since) and (self.until is None or t < self.until)


class HoldMatcher:
    """Whether a stored record (decoded canonical entry, personal values not revealed)
    is held by an active hold. Made by `active_matcher`; `raw` is the record's parsed
    raw source object when the caller has it (read from the store when a hold's query
    names `raw.*` fields and it is not given)."""

    __slots__ = ("_attrs", "_holds", "_ids", "_log", "_raw", "_store", "_words")

    def __init__(self, store: Backend, log_name: str, holds: list[HoldRecord]) -> None:
        self._store = store
        self._log = log_name
        self._holds = [_Compiled(h) for h in holds]
        self._ids = frozenset(h.id for h in holds)
        needs = set().union(*(h.needs for h in self._holds))
        # Build only what some query reads: with the leaves and free-text tokens a
        # record's test costs about 8 times what it does on columns (bench/holds.py).
        self._attrs, self._words, self._raw = ("attrs" in needs, "words" in needs,
                                               "raw" in needs)

    def __call__(self, record: dict[str, Any], raw: Any = None) -> bool:
        if record.get("action") == HOLD_CREATE_ACTION \
                and (record.get("metadata") or {}).get("hold") in self._ids:
            return True
        t = fields.time_us(record["time"])
        doc: Doc | None = None
        for h in self._holds:
            if not h.in_window(t):
                continue
            if doc is None:
                doc = self._doc(record, raw)
            if h.test(doc):
                return True
        return False

    def _doc(self, record: dict[str, Any], raw: Any) -> Doc:
        attrs: dict[str, list[Scalar]] = {}
        if self._attrs:
            if self._raw and raw is None and "raw" in record:
                raw = self._read_raw(record["seq"])
            for k, v in fields.leaves(record, raw):
                attrs.setdefault(k, []).append(v)
        words = tokens(fields.free_text(record)) if self._words else []
        return Doc(fields.column_values(record), attrs, words)

    def _read_raw(self, seq: int) -> Any:
        info = self._store.get_log(self._log)
        if info is None:
            return None
        return parsed_raws(self._store.read_raws(info.id, seq, seq + 1)).get(seq)


def _never(record: dict[str, Any]) -> bool:
    return False


def active_matcher(store: Backend, tenant: str) -> RecordMatcher:
    """A test for records of `tenant`'s log (or of `tenant._access`: pass the name of the
    log whose records you test): True when an active hold of the tenant holds the
    record. A constant False function when the tenant has no active hold."""
    holds = store.holds(tenant_of(tenant), active=True)
    if not holds:
        return _never
    return HoldMatcher(store, tenant, holds)


def _needs(node: ast.Node) -> set[str]:
    """Which parts of a `Doc` a query reads: "attrs" (fields not in a column), "words"
    (free text), "raw" (`raw.*` fields, in attrs)."""
    if isinstance(node, ast.And | ast.Or):
        return set().union(*(_needs(i) for i in node.items))
    if isinstance(node, ast.Not):
        return _needs(node.item)
    if isinstance(node, ast.Text):
        return {"words"}
    if isinstance(node, ast.All):
        return set()
    path = node.field
    out = {"raw", "attrs"} if path == "raw" or path.startswith("raw.") else set()
    if isinstance(node, ast.Exists) or path not in fields.COLUMNS:
        out.add("attrs")
    return out


# -- creating and releasing -------------------------------------------------------------


def create_hold(logs: LogService, tenant: str, query: Any, reason: Any, *,
                since: Any = None, until: Any = None, created_by: str) -> HoldRecord:
    """Check the request (every bad field at once), store the hold, append its create
    record to the tenant's log, and store the record's seq with the hold.

    The row goes in before the record, so no moment exists where the log says a hold
    was made while purge does not see it; if the append fails the row is released again
    (by `auditkeep-holds`, saying why) and the error raised."""
    if tenant != tenant_of(tenant):
        raise ValidationError("holds belong to a tenant; a hold on T covers T._access too",
                              problems=[FieldProblem("/query/tenant", "a tenant name, not "
                                                     "an _access log", "a tenant", tenant)])
    logs.check_name(tenant)
    problems: list[FieldProblem] = []
    q = _check_query(query, problems)
    why = _check_reason(reason, problems)
    lo = _check_time(since, "/body/since", problems)
    hi = _check_time(until, "/body/until", problems)
    if lo is not None and hi is not None and _us(lo) >= _us(hi):
        problems.append(FieldProblem("/body/until", "until must be later than since",
                                     f"a time after {lo}", hi))
    if problems:
        raise ValidationError("; ".join(f"{p.pointer}: {p.detail}" for p in problems),
                              problems=problems)
    hold = HoldRecord(id=new_hold_id(), tenant=tenant, query=q, reason=why,
                      created_by=created_by, created=now_utc(), since=lo, until=hi)
    logs.store.put_hold(hold)
    metadata: dict[str, Any] = {"hold": hold.id, "query": _scrubbed(q, MAX_QUERY)}
    if lo is not None:
        metadata["since"] = lo
    if hi is not None:
        metadata["until"] = hi
    try:
        seq = _append(logs, tenant, HOLD_CREATE_ACTION, hold, created_by, why, metadata)
    except BaseException:
        logs.store.put_hold(replace(hold, released=now_utc(), released_by=HOLD_SUBMITTER))
        raise
    hold = replace(hold, record_seq=seq)
    logs.store.put_hold(hold)
    return hold


def release_hold(logs: LogService, tenant: str, hold_id: str, *, released_by: str,
                 reason: Any) -> HoldRecord:
    """Append the release record, then mark the hold released with the record's seq.
    NotFoundError for an unknown hold, ConflictError for one released already. A crash
    between the two leaves the hold active (it holds more, never less)."""
    problems: list[FieldProblem] = []
    why = _check_reason(reason, problems)
    if problems:
        raise ValidationError(problems[0].detail, problems=problems)
    with _changing:
        hold = logs.store.get_hold(tenant, hold_id)
        if hold is None:
            raise NotFoundError(f"tenant {tenant!r} has no hold {hold_id!r}")
        if hold.released is not None:
            raise ConflictError(f"hold {hold_id} was released already at {hold.released} "
                                f"by {hold.released_by}")
        metadata: dict[str, Any] = {"hold": hold.id}
        if hold.record_seq is not None:
            metadata["record_seq"] = hold.record_seq
        seq = _append(logs, tenant, HOLD_RELEASE_ACTION, hold, released_by, why, metadata)
        released = replace(hold, released=now_utc(), released_by=released_by,
                            release_seq=seq)
        logs.store.put_hold(released)
    return released


def hold_json(hold: HoldRecord) -> dict[str, Any]:
    """A hold as the API shows it."""
    return {"id": hold.id, "tenant": hold.tenant, "query": hold.query, "reason": hold.reason,
            "since": hold.since, "until": hold.until, "created": hold.created,
            "created_by": hold.created_by, "record_seq": hold.record_seq,
            "active": hold.released is None, "released": hold.released,
            "released_by": hold.released_by, "release_seq": hold.release_seq}


def _append(logs: LogService, tenant: str, action: str, hold: HoldRecord, actor: str,
            reason: str, metadata: dict[str, Any]) -> int:
    kind = action.rsplit(".", 1)[1]
    event = Event(action=action, actor=Actor(id=actor, type="service"), outcome="success",
                  category="admin", id=f"{hold.id}:{kind}",
                  resource=Resource(type="legal_hold", id=hold.id),
                  reason=_scrubbed(reason, MAX_REASON), metadata=metadata)
    pending = prepare([event], tenant=tenant, submitter=HOLD_SUBMITTER, may_set_tenant=True)
    return logs.append(tenant, pending).result().receipts[0].seq


def _scrubbed(text: str, limit: int) -> str:
    """Text as it goes into the log, which nothing can erase: personal data the default
    detectors find (emails, card numbers, ...) is redacted, as erasure records are."""
    return str(RedactionPolicy().apply({"reason": text})["reason"])[:limit]


def _check_query(query: Any, problems: list[FieldProblem]) -> str:
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        problems.append(FieldProblem(
            "/body/query", f"the query of the events to hold is required (1 to {MAX_QUERY} "
            "characters, the search query language; e.g. actor:alice action:iam.*)",
            "a non-empty query", _kind(query)))
        return ""
    try:
        parse(query)
    except ValidationError as exc:
        for p in exc.problems or [FieldProblem("/body/query", exc.detail)]:
            problems.append(FieldProblem("/body/query", p.detail, p.expected, p.actual,
                                         column=p.column))
    return query.strip()


def _check_reason(reason: Any, problems: list[FieldProblem]) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        problems.append(FieldProblem(
            "/body/reason", f"the reason is required (1 to {MAX_REASON} characters, e.g. "
            "the case or matter number)", "a non-empty string", _kind(reason)))
        return ""
    return reason.strip()


def _check_time(value: Any, pointer: str, problems: list[FieldProblem]) -> str | None:
    """An RFC 3339 date-time (with its offset) or a full date (midnight UTC), stored
    in the one form records use (UTC, microseconds, `Z`)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            if len(value) == 10:
                d = date.fromisoformat(value)
                return format_time(datetime(d.year, d.month, d.day, tzinfo=UTC))
            t = datetime.fromisoformat(value)
            if t.tzinfo is not None and "T" in value.upper():
                return format_time(t)
        except ValueError:
            pass
    problems.append(FieldProblem(pointer, "expected an RFC 3339 time with its offset "
                                 "(2026-11-01T00:00:00Z) or a date (2026-11-01)",
                                 "an RFC 3339 time", str(value)[:40]))
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return "empty" if not value.strip() else f"{len(value)} characters"
    return type(value).__name__


def _us(stamp: str) -> int:
    return fields.time_us(stamp)


__all__ = ["HOLD_CREATE_ACTION", "HOLD_RELEASE_ACTION", "HoldMatcher", "RecordMatcher",
           "active_matcher", "create_hold", "hold_json", "new_hold_id", "release_hold"]
