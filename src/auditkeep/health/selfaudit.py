"""Scheduled self-audit: the node checks its own stored log, with bounded reads a pass.

Each pass: (1) every stored checkpoint's signature with the published keys, and the
consistency of successive stored checkpoints (a proof computed from the stored tiles,
verified with log.merkle); (2) `spot_checks` random stored tiles against hashes
recomputed from the level below (level 0: from the entries' bytes; a purged entry's
leaf lives only in its tile and is skipped); (3) on its own slower schedule, a full
`verify_log` with the checkpoint journal. Any finding: the SLI `integrity_failure`, a
critical system alert (rule auditkeep.self_audit) and GET /v1/status.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditkeep.background import BackgroundLoop
from auditkeep.errors import NoteError, ProofError
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.merkle import consistency_proof, leaf_hashes, node_hash, verify_consistency
from auditkeep.log.verify import verify_log
from auditkeep.storage.base import TILE_WIDTH, LogInfo

if TYPE_CHECKING:
    from auditkeep.datadir import Node

log = logging.getLogger(__name__)
RULE = "auditkeep.self_audit"
MAX_PAIRS = 256  # successive checkpoint pairs checked a log a pass (the newest)


@dataclass
class AuditResult:
    """One pass: when, which checks ran, and what they found (one line each)."""

    started: str
    checks: list[str]
    findings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the checks with findings
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started, "checks": self.checks, "ok": self.ok,
                "failed": self.failed, "findings": self.findings, "seconds": round(self.seconds, 3)}


class SelfAudit:
    """The checks of one pass over a node's store (no schedule: see SelfAuditJob)."""

    def __init__(self, n: Node, *, spot_checks: int = 64, rng: random.Random | None = None
                 ) -> None:
        self._node = n
        self.spot_checks = spot_checks
        self._rng = rng or random.Random()

    def run(self, *, full: bool = False) -> AuditResult:
        started = time.monotonic()
        checks = ["checkpoints", "tiles"] + (["verify"] if full else [])
        result = AuditResult(datetime.now(UTC).isoformat(timespec="seconds"), checks)
        logs = [info for info in self._node.store.list_logs() if info.size > 0]
        self._add(result, "checkpoints", [f for i in logs for f in self.check_checkpoints(i)])
        self._add(result, "tiles", self.spot_check_tiles(logs))
        if full:
            self._add(result, "verify", [f for i in logs for f in self.full_verify(i)])
        result.seconds = time.monotonic() - started
        return result

    @staticmethod
    def _add(result: AuditResult, check: str, found: list[str]) -> None:
        if found:
            result.failed.append(check)
            result.findings += found

    def _verifiers(self, info: LogInfo) -> list[Any]:
        return [k.verifier(info.origin) for k in self._node.keys.published()]

    def check_checkpoints(self, info: LogInfo) -> list[str]:
        store = self._node.store
        verifiers = self._verifiers(info)
        found: list[str] = []
        good: list[tuple[int, bytes]] = []
        for cp in store.checkpoints(info.id):
            try:
                parsed, _ = open_checkpoint(cp.note, verifiers, origin=info.origin)
            except NoteError as exc:
                found.append(f"{info.name}: checkpoint size {cp.size} forged-checkpoint: not "
                             f"signed by a published key: {exc}")
                continue
            if parsed.size != cp.size or parsed.root != cp.root:
                found.append(f"{info.name}: checkpoint size {cp.size} forged-checkpoint: the "
                             "stored size/root differ from the signed note")
                continue
            good.append((parsed.size, parsed.root))
        # The empty tree is consistent with every tree (RFC 6962): nothing to prove.
        good = sorted({g for g in good if g[0] > 0})[-(MAX_PAIRS + 1):]

        def read(coords: Any) -> list[bytes]:
            return store.read_nodes(info.id, coords)

        for (s1, r1), (s2, r2) in itertools.pairwise(good):
            if s1 == s2:
                found.append(f"{info.name}: checkpoint size {s1} forked-checkpoint: two "
                             "signed roots")
                continue
            try:
                proof = consistency_proof(s1, s2, read)
                verify_consistency(s1, s2, proof, r1, r2)
            except (ProofError, ValueError, KeyError, IndexError) as exc:
                found.append(f"{info.name}: checkpoints {s1} -> {s2} inconsistent: {exc}")
        return found

    def spot_check_tiles(self, logs: list[LogInfo]) -> list[str]:
        found: list[str] = []
        if not logs:
            return found
        for _ in range(self.spot_checks):
            info = self._rng.choice(logs)
            levels = [lv for lv in range(64) if info.size >> lv >= 1]
            level = self._rng.choice(levels)
            nodes = info.size >> level
            tile = self._rng.randrange((nodes + TILE_WIDTH - 1) // TILE_WIDTH)
            problem = self._check_tile(info, level, tile)
            if problem is not None:
                found.append(problem)
        return sorted(set(found))

    def _check_tile(self, info: LogInfo, level: int, tile: int) -> str | None:
        store = self._node.store
        rows = store.read_tile_range(info.id, level, tile, tile + 1)
        stored = rows[0] if rows else b""
        first = tile * TILE_WIDTH
        count = min(TILE_WIDTH, (info.size >> level) - first)
        where = f"{info.name}: tile ({level}, {tile})"
        if len(stored) < count * 32:
            return f"{where} tile-mismatch: holds {len(stored) // 32} of {count} nodes"
        mine: list[bytes | None]
        if level == 0:
            mine = self._leaves(info, first, count)
        else:
            below = b"".join(store.read_tile_range(info.id, level - 1, 2 * tile, 2 * tile + 2))
            if len(below) < 2 * count * 32:
                return f"{where} tile-mismatch: the level below is incomplete"
            mine = [node_hash(below[64 * i: 64 * i + 32], below[64 * i + 32: 64 * i + 64])
                    for i in range(count)]
        for i, h in enumerate(mine):
            if h is not None and stored[32 * i: 32 * i + 32] != h:
                return (f"{where} tile-mismatch: node ({level}, {first + i}) differs from the "
                        "hash recomputed from " + ("its entry" if level == 0 else
                                                   "the level below"))
        return None

    def _leaves(self, info: LogInfo, first: int, count: int) -> list[bytes | None]:
        entries: dict[int, bytes] = {}
        for b in self._node.store.read_bundles(info.id, first, first + count):
            for i, entry in enumerate(b.entries):
                entries[b.first_seq + i] = entry
        out: list[bytes | None] = []
        for seq in range(first, first + count):
            e = entries.get(seq)
            # Purged (zero bytes): the leaf lives only in the tile; verify checks the mark.
            out.append(leaf_hashes([e])[0] if e else None)
        return out

    def full_verify(self, info: LogInfo) -> list[str]:
        data = self._node.data
        journal: list[str] = []
        if data is not None:
            path = Path(data.journal) / f"{info.name}.checkpoints"
            if path.exists():
                journal = [x.decode() for x in path.read_bytes().split(b"\x00\n") if x.strip()]
        report = verify_log(self._node.store, info, self._verifiers(info), journal)
        return [str(f) for f in report.findings]


def record(n: Node, result: AuditResult) -> None:
    """The SLI and, on a finding, the critical alert (health/alerts.py)."""
    if result.ok:
        return
    slis = n.options.get("slis")
    if slis is not None:
        for check in result.failed:
            slis.integrity_failure(check)
    try:
        from auditkeep.health.alerts import raise_system_alert

        raise_system_alert(n, rule=RULE, level="critical",
                           title=f"self-audit: {len(result.findings)} integrity finding(s)",
                           details={"findings": result.findings[:20],
                                    "checks": result.checks, "started": result.started})
    except Exception:  # the finding is still in /v1/status and the metric
        log.exception("self-audit: could not raise the alert")


class SelfAuditJob(BackgroundLoop):
    """n.options["self_audit"]: a pass every `every` s (the first at start), a full
    verify every `full_every` s (the first `full_every` s after start)."""

    def __init__(self, n: Node, *, every: float = 3600.0, spot_checks: int = 64,
                 full_every: float = 86_400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("self-audit", every)
        self.audit = SelfAudit(n, spot_checks=spot_checks)
        self._node = n
        self.full_every = full_every
        self._clock = clock
        # The first full verify after `full_every`, not at start-up (a restart under
        # load should not add a whole read of the log); inf: never.
        self._last_full = clock()
        self.last: AuditResult | None = None
        self.last_failure: AuditResult | None = None
        self.passes = 0

    def step(self) -> bool:
        now = self._clock()
        full = now - self._last_full >= self.full_every
        result = self.audit.run(full=full)
        if full:
            self._last_full = now
        self.last = result
        self.passes += 1
        if not result.ok:
            self.last_failure = result
            log.error("self-audit found %d problem(s): %s", len(result.findings),
                      "; ".join(result.findings[:5]))
        record(self._node, result)
        return False

    def status(self) -> dict[str, Any]:
        return {"passes": self.passes, "last": None if self.last is None else self.last.to_json(),
                "last_failure": None if self.last_failure is None
                else self.last_failure.to_json(), "last_error": self.last_error}
