"""The dry run of retention: what a purge would remove, by tenant, log and category.

It walks a log's stored bundles a batch at a time (never the whole log in memory),
decodes each entry and asks, in order: is the category's period over (by `received`)?
is it one of the records kept forever? is a legal hold holding it? is it archived yet
(when the policy waits for the archive)? The purge (purge.py) walks the same way, so
the plan's numbers are what a run purges while nothing changes in between.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from auditkeep.retention.policy import Policy, _stamp
from auditkeep.storage.base import Backend, LogInfo

#: Records that are the record of the record: a purge's, a hold's and an erasure's own
#: entries are never purged, whatever their category's period (docs/retention.md).
#: Action -> the submitter auditkeep appends them as (a token id never is one of
#: these, so a producer cannot make its own events immortal by naming the action).
KEPT_RECORDS = {"auditkeep.retention.purge": "auditkeep-retention",
                "auditkeep.hold.create": "auditkeep-holds",
                "auditkeep.hold.release": "auditkeep-holds",
                "auditkeep.privacy.erasure": "auditkeep-privacy"}
READ_BATCH = 1024
#: `received` grows with seq, up to how late the sequencer got an event; the walk stops
#: this far past the newest cutoff (docs/retention.md).
SLACK = timedelta(days=7)
MAX_RANGES = 100  # seq ranges listed per category in a plan (all are counted)

RecordMatcher = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class CategoryPlan:
    events: int = 0  # would be purged
    entry_bytes: int = 0
    raw_bytes: int = 0
    personal_values: int = 0
    held: int = 0  # due, but a legal hold holds them
    waiting_archive: int = 0  # due, not held, but not in an archived range yet
    ranges: list[tuple[int, int]] = field(default_factory=list)  # [first, end), first few
    range_count: int = 0
    _last: int = -2

    def add_seq(self, seq: int) -> None:
        if seq == self._last + 1:
            if self.ranges and self.ranges[-1][1] == seq:  # else a run past MAX_RANGES
                self.ranges[-1] = (self.ranges[-1][0], seq + 1)
        else:
            self.range_count += 1
            if len(self.ranges) < MAX_RANGES:
                self.ranges.append((seq, seq + 1))
        self._last = seq

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "entry_bytes": self.entry_bytes,
                "raw_bytes": self.raw_bytes, "personal_values": self.personal_values,
                "held": self.held, "waiting_archive": self.waiting_archive,
                "ranges": [list(r) for r in self.ranges], "range_count": self.range_count}


@dataclass(slots=True)
class LogPlan:
    tenant: str
    log: str
    log_id: int
    policy: Policy
    categories: dict[str, CategoryPlan] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)  # collected only when asked to
    scanned: int = 0  # entries read
    complete: bool = True  # False: the walk stopped at a limit (more is due)

    @property
    def events(self) -> int:
        return sum(c.events for c in self.categories.values())

    def category(self, name: str) -> CategoryPlan:
        c = self.categories.get(name)
        if c is None:
            c = self.categories[name] = CategoryPlan()
        return c

    def to_json(self) -> dict[str, Any]:
        totals = CategoryPlan()
        for c in self.categories.values():
            for name in ("events", "entry_bytes", "raw_bytes", "personal_values", "held",
                         "waiting_archive", "range_count"):
                setattr(totals, name, getattr(totals, name) + getattr(c, name))
        body = totals.to_json()
        del body["ranges"]
        return {"tenant": self.tenant, "log": self.log, **body,
                "categories": {k: c.to_json() for k, c in sorted(self.categories.items())}}


class Archived:
    """Whether a seq is inside one of the log's archived ranges."""

    __slots__ = ("_ends", "_firsts")

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        ranges = sorted(ranges)
        self._firsts = [r[0] for r in ranges]
        self._ends = [r[1] for r in ranges]

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect.bisect_right(self._firsts, seq) - 1
        return i >= 0 and seq < self._ends[i]


def walk_log(store: Backend, info: LogInfo, tenant: str, policy: Policy, held: RecordMatcher,
             now: datetime, *, archived: Archived | None = None, end: int | None = None,
             limit: int | None = None, collect: bool = False) -> LogPlan:
    """Plan the purge of one log. `archived`: only seqs in these ranges may go (None: no
    archive to wait for). `end`: look below this seq only (the search index's cursor,
    for a run). `limit`: stop after this many purgeable events (`complete` is then
    False). `collect`: keep the purgeable seqs in `seqs`."""
    plan = LogPlan(tenant, info.name, info.id, policy)
    cutoffs = policy.cutoffs(now)
    if not cutoffs:
        return plan
    stop_at = _stamp(datetime.fromisoformat(max(cutoffs.values())) + SLACK)
    end = info.size if end is None else min(end, info.size)
    for start, stop in _unpurged(store, info.id, end):
        pos = start
        while pos < stop:
            upto = min(pos + READ_BATCH, stop)
            due: list[tuple[int, int, str, bool]] = []  # (seq, bytes, category, has raw)
            late = False
            for b in store.read_bundles(info.id, pos, upto):
                for seq, entry in enumerate(b.entries, b.first_seq):
                    if not pos <= seq < upto or not entry:
                        continue
                    plan.scanned += 1
                    rec = orjson.loads(entry)
                    received = rec.get("received", "")
                    if received >= stop_at:
                        late = True
                        break
                    category = rec.get("category", "")
                    cutoff = cutoffs.get(category)
                    if cutoff is None or received >= cutoff or \
                            KEPT_RECORDS.get(rec.get("action", "")) == rec.get("submitter"):
                        continue
                    c = plan.category(category)
                    if held(rec):
                        c.held += 1
                    elif archived is not None and seq not in archived:
                        c.waiting_archive += 1
                    else:
                        due.append((seq, len(entry), category, "raw" in rec))
                if late:
                    break
            if limit is not None and plan.events + len(due) > limit:
                due = due[:limit - plan.events]
                plan.complete = False
            _count(store, info.id, plan, due, collect)
            if late or not plan.complete:
                return plan
            pos = upto
    return plan


def _count(store: Backend, log_id: int, plan: LogPlan,
           due: list[tuple[int, int, str, bool]], collect: bool) -> None:
    if not due:
        return
    seqs = [d[0] for d in due]
    personal = store.read_personal(log_id, seqs)
    raws = store.read_raws(log_id, seqs[0], seqs[-1] + 1) if any(d[3] for d in due) else {}
    for seq, size, category, _ in due:
        c = plan.category(category)
        c.events += 1
        c.entry_bytes += size
        c.personal_values += len(personal.get(seq) or ())
        raw = raws.get(seq)
        if raw is not None:
            c.raw_bytes += len(raw[1])
        c.add_seq(seq)
    if collect:
        plan.seqs += seqs


def _unpurged(store: Backend, log_id: int, end: int) -> Iterator[tuple[int, int]]:
    """The runs of [0, end) not purged yet (purged bundles need not be read)."""
    pos = 0
    for r in store.purged_ranges(log_id, 0, end):
        if r.first > pos:
            yield pos, r.first
        pos = max(pos, r.end)
    if pos < end:
        yield pos, end


__all__ = ["KEPT_RECORDS", "Archived", "CategoryPlan", "LogPlan", "walk_log"]
