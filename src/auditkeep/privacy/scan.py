"""The PII scan of what is stored: run the detectors over stored records and raw
objects and report findings by tenant, action, path and rule (paths with list indices
folded to `*`), so a gap in the redaction policy is found before an auditor finds it.

Findings never carry the value found; a sample names the event (seq and id) so it can
be looked at by someone allowed to. `auditkeep scan-pii` runs it over a data directory;
the server runs `PiiScanJob` on a schedule and exports the counts as metrics.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditkeep.background import BackgroundLoop
from auditkeep.privacy.detectors import DEFAULT_DETECTORS, Scanner
from auditkeep.privacy.paths import pointer
from auditkeep.privacy.policy import RedactionPolicy
from auditkeep.storage.base import Backend, LogInfo

MAX_SAMPLES = 20
_INDEX = re.compile(r"/\d+(?=/|$)")
#: Actor fields that are identifiers, scanned here (the policy leaves them alone): an
#: email used as an actor id is exactly the kind of leak a scan is for.
_ACTOR_IDS = ("id", "session_id")


@dataclass(frozen=True, slots=True)
class Sample:
    tenant: str
    seq: int
    id: str
    path: str
    rule: str


@dataclass(slots=True)
class ScanReport:
    scanned: int = 0  # records read
    flagged: int = 0  # records with at least one finding
    # (tenant, action, path, rule) -> findings
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)

    def by_rule(self) -> Counter[tuple[str, str]]:
        """(tenant, rule) -> findings, the metric's labels."""
        out: Counter[tuple[str, str]] = Counter()
        for (tenant, _, _, rule), n in self.counts.items():
            out[(tenant, rule)] += n
        return out

    def to_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "flagged": self.flagged,
                "findings": [{"tenant": t, "action": a, "path": p, "rule": r, "count": n}
                             for (t, a, p, r), n in sorted(self.counts.items())],
                "samples": [{"tenant": s.tenant, "seq": s.seq, "id": s.id, "path": s.path,
                             "rule": s.rule} for s in self.samples]}


class PiiScanner:
    """Detectors over records: a policy applied to a copy, whose `redactions` are the
    findings (the record itself is never changed)."""

    def __init__(self, detectors: Iterable[str] = DEFAULT_DETECTORS) -> None:
        names = tuple(detectors)
        self._policy = RedactionPolicy(detectors=names, secret_keys=True, raw=True)
        self._ids = Scanner(names)

    def record(self, record: dict[str, Any], raw: bytes | None = None) -> list[tuple[str, str]]:
        """(path with `*` for list indices, rule) of each finding in one record."""
        copy = orjson.loads(orjson.dumps(record))
        copy.pop("redactions", None)  # what ingest already did is not a finding
        self._policy.apply(copy)
        found = [(_fold(r["path"]), r["rule"]) for r in copy.get("redactions", ())]
        actor = record.get("actor")
        if isinstance(actor, dict):
            for name in _ACTOR_IDS:
                value = actor.get(name)
                if isinstance(value, str):
                    found += [(pointer(("actor", name)), f.rule) for f in self._ids.find(value)]
        if raw is not None:
            _, fired = self._policy.redact_raw(raw)
            found += [(_fold(r["path"]), r["rule"]) for r in fired]
        return found


def _fold(path: str) -> str:
    return _INDEX.sub("/*", path)


def scan_log(store: Backend, info: LogInfo, scanner: PiiScanner, report: ScanReport, *,
             start: int = 0, end: int | None = None, batch: int = 1024) -> int:
    """Scan seqs [start, end) of one log into `report`; the next seq to scan."""
    end = info.size if end is None else min(end, info.size)
    pos = start
    while pos < end:
        stop = min(pos + batch, end)
        raws = store.read_raws(info.id, pos, stop)
        for b in store.read_bundles(info.id, pos, stop):
            for seq, entry in enumerate(b.entries, b.first_seq):
                if not pos <= seq < stop or not entry:  # b"": purged by retention
                    continue
                rec = orjson.loads(entry)
                raw = raws.get(seq)
                found = scanner.record(rec, raw[1] if raw is not None else None)
                report.scanned += 1
                if not found:
                    continue
                report.flagged += 1
                tenant = str(rec.get("tenant", info.name))
                for path, rule in found:
                    report.counts[(tenant, str(rec.get("action")), path, rule)] += 1
                    if len(report.samples) < MAX_SAMPLES:
                        report.samples.append(Sample(tenant, seq, str(rec.get("id")), path,
                                                     rule))
        pos = stop
    return end


def scan_store(store: Backend, *, tenants: Iterable[str] = (),
               detectors: Iterable[str] = DEFAULT_DETECTORS) -> ScanReport:
    """Scan every tenant log (not `_access` logs: they hold who read what, and their
    parameters are the readers' own queries) or only `tenants`."""
    wanted = set(tenants)
    scanner = PiiScanner(detectors)
    report = ScanReport()
    for info in store.list_logs():
        if info.name.endswith("._access") or (wanted and info.name not in wanted):
            continue
        scan_log(store, info, scanner, report)
    return report


class PiiScanJob(BackgroundLoop):
    """The scheduled scan: every `interval` seconds, the records committed since the
    last pass (from the start of each log on the first), a bounded batch per pass.
    Counts accumulate in `report` (the `auditkeep_pii_findings` metric). The cursor is
    in memory: a restart scans everything again, which is what a scheduled audit wants."""

    def __init__(self, store: Backend, *, interval: float = 300.0, batch: int = 20_000,
                 detectors: Iterable[str] = DEFAULT_DETECTORS) -> None:
        super().__init__("pii-scan", interval)
        self._store = store
        self._batch = batch
        self._scanner = PiiScanner(detectors)
        self._cursors: dict[int, int] = {}
        self._lock = threading.Lock()
        self.report = ScanReport()

    def step(self) -> bool:
        budget = self._batch
        for info in self._store.list_logs():
            if info.name.endswith("._access") or budget <= 0:
                continue
            at = self._cursors.get(info.id, 0)
            if at >= info.size:
                continue
            end = min(info.size, at + budget)
            with self._lock:
                self._cursors[info.id] = scan_log(self._store, info, self._scanner,
                                                  self.report, start=at, end=end)
            budget -= end - at
        return budget <= 0

    def snapshot(self) -> tuple[int, Counter[tuple[str, str]]]:
        with self._lock:
            return self.report.scanned, self.report.by_rule()


__all__ = ["PiiScanJob", "PiiScanner", "Sample", "ScanReport", "scan_log", "scan_store"]
