"""Run arithmetic for purge marks, the same in every backend: purged seqs are kept as
runs [first, end) of one retention record, merged when they touch and split by restore."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from auditkeep.storage.base import PurgedRange


def contiguous(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending distinct seqs as runs [first, end)."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], s + 1)
        else:
            out.append((s, s + 1))
    return out


def covered(runs: Sequence[PurgedRange], seq: int) -> PurgedRange | None:
    """The run of `runs` (ascending, disjoint) holding `seq`."""
    i = bisect.bisect_right([r.first for r in runs], seq) - 1
    return runs[i] if i >= 0 and seq < runs[i].end else None


def add(runs: Sequence[PurgedRange], seqs: Iterable[int], record_seq: int
        ) -> tuple[list[PurgedRange], list[int]]:
    """Mark `seqs` purged by `record_seq` among `runs` (ascending, disjoint): the runs
    after, and the seqs newly marked (those in a run already keep their first record)."""
    firsts = [r.first for r in runs]
    fresh = []
    for s in sorted(set(seqs)):
        i = bisect.bisect_right(firsts, s) - 1
        if i < 0 or s >= runs[i].end:
            fresh.append(s)
    merged = sorted([*runs, *(PurgedRange(a, b, record_seq) for a, b in contiguous(fresh))],
                    key=lambda r: r.first)
    out: list[PurgedRange] = []
    for r in merged:
        last = out[-1] if out else None
        if last is not None and last.end == r.first and last.record_seq == r.record_seq:
            out[-1] = PurgedRange(last.first, r.end, r.record_seq)
        else:
            out.append(r)
    return out, fresh


def remove(runs: Sequence[PurgedRange], seqs: Iterable[int]
           ) -> tuple[list[PurgedRange], list[int]]:
    """Drop the marks of `seqs` from `runs`, splitting runs: the runs after, and the seqs
    that were marked."""
    gone = sorted(set(seqs))
    out: list[PurgedRange] = []
    dropped: list[int] = []
    for r in runs:
        lo, hi = bisect.bisect_left(gone, r.first), bisect.bisect_left(gone, r.end)
        if lo == hi:
            out.append(r)
            continue
        start = r.first
        for s in gone[lo:hi]:
            if s > start:
                out.append(PurgedRange(start, s, r.record_seq))
            dropped.append(s)
            start = s + 1
        if start < r.end:
            out.append(PurgedRange(start, r.end, r.record_seq))
    return out, dropped


def clip(runs: Iterable[PurgedRange], start: int, end: int | None) -> list[PurgedRange]:
    """The runs overlapping [start, end), cut to it, ascending."""
    stop = end if end is not None else 2**63 - 1
    return [PurgedRange(max(r.first, start), min(r.end, stop), r.record_seq)
            for r in sorted(runs, key=lambda r: r.first)
            if r.end > start and r.first < stop]
