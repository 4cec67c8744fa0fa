"""What the producer keeps of the server's answers, so it can hold the server to them.

Each acknowledged batch returns receipts `{id, seq, leaf_hash}` and a signed checkpoint.
The SDK keeps the latest checkpoint (on disk, beside the spool) and the receipts not yet
proven. `verify` fetches the server's current checkpoint and proves that it extends the
kept one (a server that truncated, rolled back or forked its log cannot) and that every
kept receipt is included in it. Once proven, receipts are dropped: the current checkpoint
becomes the kept one, and later consistency proofs carry them along.

With witness keys and `min_witnesses=k`, `verify` also fetches the largest checkpoint
witnesses have cosigned (`?witnessed=true`), requires valid cosignatures from at least
k of the given witnesses on it (c2sp.org/tlog-cosignature), proves it consistent with
the current one, and proves receipts in it: then no server can have shown this client
a view of the log that those witnesses did not see. Receipts beyond the witnessed size
are proven in the current checkpoint and kept (`pending`) until a later `verify`.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkeep.errors import ProofError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint
from auditkeep.log.note import Verifier
from auditkeep.witness.cosignature import WitnessVerifier, count_cosignatures

log = logging.getLogger(__name__)

MAX_RECEIPTS = 100_000


@dataclass(frozen=True, slots=True)
class Receipt:
    id: str
    seq: int
    leaf_hash: bytes


@dataclass(slots=True)
class ReceiptReport:
    """The outcome of `verify_receipts()`: `ok` unless the server broke a promise."""

    checked: int = 0  # receipts proven included
    logs: dict[str, int] = field(default_factory=dict)  # tenant -> current tree size
    problems: list[str] = field(default_factory=list)
    unverifiable: int = 0  # receipts forgotten (over MAX_RECEIPTS) before they were proven
    # With witnesses: per tenant, the witnessed checkpoint's size and the witnesses whose
    # cosignatures on it are valid; receipts proven but not yet witnessed (kept).
    witnessed: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


#: GET a path of the server's API and return the response's JSON or text.
Fetch = Callable[[str, dict[str, Any] | None], Any]


class ReceiptBook:
    def __init__(self, directory: Path | None, verifier_keys: Sequence[str] | None = None,
                 max_receipts: int = MAX_RECEIPTS) -> None:
        self._dir = directory
        self._lock = threading.Lock()
        self._pinned = [Verifier.parse(k) for k in verifier_keys or ()]
        self._checkpoints: dict[str, str] = {}
        self._receipts: dict[str, list[Receipt]] = {}
        self._max = max_receipts
        self._forgotten = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for p in directory.glob("*.checkpoint"):
                self._checkpoints[p.stem] = p.read_text()

    def record(self, answer: dict[str, Any]) -> None:
        """Keep what one 2xx answer to `POST /v1/events` promised."""
        tenant = str(answer["tenant"])
        got = [Receipt(r["id"], int(r["seq"]), base64.b64decode(r["leaf_hash"]))
               for r in answer["receipts"]]
        with self._lock:
            kept = self._receipts.setdefault(tenant, [])
            kept.extend(got)
            if len(kept) > self._max:
                self._forgotten += len(kept) - self._max
                del kept[: len(kept) - self._max]
            note = answer.get("checkpoint")
            if note and self._newer(tenant, note):
                self._checkpoints[tenant] = note
                self._save(tenant, note)

    def latest_checkpoint(self, tenant: str) -> str | None:
        with self._lock:
            return self._checkpoints.get(tenant)

    def _newer(self, tenant: str, note: str) -> bool:
        held = self._checkpoints.get(tenant)
        if held is None:
            return True
        try:
            return Checkpoint.parse(_body(note)).size >= Checkpoint.parse(_body(held)).size
        except ProofError:
            return True  # keep the server's word; `verify` will judge its signature

    def _save(self, tenant: str, note: str) -> None:
        if self._dir is None:
            return
        # One temporary name per process: a forked child shares this directory with its
        # parent, and two writers of one name rename each other's file away (seen in CI).
        tmp = self._dir / f"{tenant}.checkpoint.{os.getpid()}.tmp"
        tmp.write_text(note)
        tmp.replace(self._dir / f"{tenant}.checkpoint")

    def verify(self, fetch: Fetch, witnesses: Sequence[str] = (),
               min_witnesses: int | None = None) -> ReceiptReport:
        """Prove every kept checkpoint extended and every kept receipt included; with
        `witnesses` (vkeys), in a checkpoint cosigned by `min_witnesses` of them (default:
        all of them)."""
        quorum = _Quorum.of(witnesses, min_witnesses)
        report = ReceiptReport()
        verifiers = self._verifiers(fetch)
        with self._lock:
            tenants = sorted(set(self._checkpoints) | set(self._receipts))
            report.unverifiable, self._forgotten = self._forgotten, 0
        for tenant in tenants:
            with self._lock:
                held = self._checkpoints.get(tenant)
                receipts = list(self._receipts.get(tenant, ()))
            pending: list[Receipt] = []
            try:
                current_note = fetch(f"/v1/logs/{tenant}/checkpoint", None)
                current, _ = open_checkpoint(current_note, verifiers)
                report.logs[tenant] = current.size
                if held is not None:
                    _check_extends(fetch, tenant, open_checkpoint(held, verifiers)[0], current)
                cover = current
                if quorum.k:
                    cover = quorum.witnessed(fetch, tenant, verifiers, current, report)
                for r in receipts:
                    if r.seq < cover.size:
                        _check_included(fetch, tenant, r, cover)
                    else:
                        _check_included(fetch, tenant, r, current)
                        pending.append(r)
            except ProofError as exc:
                report.problems.append(f"{tenant}: {exc.detail}")
                continue
            report.checked += len(receipts) - len(pending)
            report.pending += len(pending)
            with self._lock:
                done = self._receipts.get(tenant, [])
                done[: len(receipts)] = pending
                if self._newer(tenant, current_note):
                    self._checkpoints[tenant] = current_note
                    self._save(tenant, current_note)
        return report

    def _verifiers(self, fetch: Fetch) -> list[Verifier]:
        if self._pinned:
            return self._pinned
        # Trust on first use: the keys the server publishes. An auditor who does not trust
        # the server passes `verifier_keys` obtained out of band.
        return [Verifier.parse(k["verifier"]) for k in fetch("/v1/keys", None)["keys"]]


@dataclass(frozen=True, slots=True)
class _Quorum:
    """The witnesses a verification trusts and how many of them must have cosigned."""

    verifiers: tuple[WitnessVerifier, ...]
    k: int

    @classmethod
    def of(cls, witnesses: Sequence[str], min_witnesses: int | None) -> _Quorum:
        if isinstance(witnesses, str):
            raise TypeError("witnesses is a list of verifier keys, not one string")
        verifiers = tuple(WitnessVerifier.parse(w.strip()) for w in witnesses)
        k = len(verifiers) if min_witnesses is None else min_witnesses
        if not 0 <= k <= len(verifiers):
            raise ValueError(f"min_witnesses={k} needs at least {k} witness keys, "
                             f"{len(verifiers)} given")
        return cls(verifiers, k)

    def witnessed(self, fetch: Fetch, tenant: str, verifiers: list[Verifier],
                  current: Checkpoint, report: ReceiptReport) -> Checkpoint:
        """The largest cosigned checkpoint, checked: log-signed, cosigned by k of the
        witnesses, consistent with `current`."""
        need = f"{self.k} required (of {len(self.verifiers)} witness keys given)"
        try:
            note = fetch(f"/v1/logs/{tenant}/checkpoint", {"witnessed": "true"})
        except Exception as exc:  # the caller's fetch may raise anything (404: none yet)
            raise ProofError(f"no witnessed checkpoint to check: 0 valid cosignatures of "
                             f"the {need} ({exc})") from None
        cp, _ = open_checkpoint(note, verifiers)
        valid = count_cosignatures(note, self.verifiers)
        report.witnessed[tenant] = (cp.size, sorted(valid))
        if len(valid) < self.k:
            names = f" (valid: {', '.join(sorted(valid))})" if valid else ""
            raise ProofError(f"the witnessed checkpoint of size {cp.size} carries "
                             f"{len(valid)} valid cosignature(s) of the {need}{names}")
        if cp.size <= current.size:
            _check_extends(fetch, tenant, cp, current)
        else:
            _check_extends(fetch, tenant, current, cp)
        return cp


def _body(note: str) -> str:
    return note.split("\n\n", 1)[0] + "\n"


def _check_extends(fetch: Fetch, tenant: str, held: Checkpoint, current: Checkpoint) -> None:
    if current.size < held.size:
        raise ProofError(f"the log was rolled back: the server's checkpoint has {current.size} "
                         f"entries, it signed {held.size} before")
    if current.size == held.size:
        if current.root != held.root:
            raise ProofError(f"the log forked: two different roots for size {held.size}")
        return
    p = fetch(f"/v1/logs/{tenant}/proof/consistency", {"from": held.size, "to": current.size})
    try:
        merkle.verify_consistency(held.size, current.size, _hashes(p), held.root, current.root)
    except ProofError as exc:
        raise ProofError(f"the log forked: the tree of size {current.size} does not extend "
                         f"the one of size {held.size} this client was given ({exc.detail})"
                         ) from None


def _check_included(fetch: Fetch, tenant: str, r: Receipt, current: Checkpoint) -> None:
    if r.seq >= current.size:
        raise ProofError(f"event {r.id!r} was acknowledged at seq {r.seq}, but the log now "
                         f"has only {current.size} entries: it was rolled back")
    p = fetch(f"/v1/logs/{tenant}/proof/inclusion", {"seq": r.seq, "size": current.size})
    try:
        merkle.verify_inclusion(r.leaf_hash, r.seq, current.size, _hashes(p), current.root)
    except ProofError as exc:
        raise ProofError(f"event {r.id!r} (seq {r.seq}) is not in the log as acknowledged: "
                         f"{exc.detail}") from None


def _hashes(proof: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(h) for h in proof["hashes"]]
