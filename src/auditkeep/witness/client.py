"""The log's side of c2sp.org/tlog-witness: send a checkpoint with a consistency proof to
one witness and get back its cosignature, checked with the witness's key."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from auditkeep.errors import NoteError, WitnessError
from auditkeep.log.checkpoint import Checkpoint
from auditkeep.log.note import split_note
from auditkeep.witness.cosignature import WitnessVerifier
from auditkeep.witness.server import SIZE_TYPE

_SIG_PREFIX = "\u2014 "


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The witness's valid cosignature line on the checkpoint, and its timestamp."""

    line: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class Conflict:
    """409: the witness's latest cosigned size for the log is `size`, not the old size."""

    size: int


#: A consistency proof from the first size to the second, as a list of hashes.
ProofSource = Callable[[int, int], Sequence[bytes]]


class WitnessClient:
    """One witness: its URL (the submission prefix) and its verifier key."""

    def __init__(self, url: str, verifier: WitnessVerifier, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.verifier = verifier
        self._http = httpx.Client(timeout=timeout, transport=transport,
                                  headers={"Content-Type": "text/plain; charset=utf-8"})

    @property
    def name(self) -> str:
        return self.verifier.name

    def close(self) -> None:
        self._http.close()

    def add_checkpoint(self, old: int, proof: Sequence[bytes], note: str) -> Cosigned | Conflict:
        """POST one add-checkpoint request. Raises WitnessError when the witness refuses
        (400/403/404/422), fails, or answers without a valid cosignature of its key."""
        body = f"old {old}\n" + "".join(
            base64.b64encode(h).decode("ascii") + "\n" for h in proof) + "\n" + note
        where = f"witness {self.name} ({self.url})"
        try:
            resp = self._http.post(f"{self.url}/add-checkpoint", content=body.encode("utf-8"))
        except httpx.HTTPError as exc:
            raise WitnessError(f"{where}: cannot reach it: {exc}") from None
        if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(
                SIZE_TYPE):
            text = resp.text.strip()
            if not text.isdigit():
                raise WitnessError(f"{where}: 409 with a malformed size {text[:40]!r}",
                                   witness_status=409)
            return Conflict(int(text))
        if resp.status_code != 200:
            detail = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
            raise WitnessError(f"{where} answered {resp.status_code}"
                               + (f": {detail}" if detail else ""),
                               witness_status=resp.status_code)
        return self._cosignature(note, resp.text, where)

    def _cosignature(self, note: str, answer: str, where: str) -> Cosigned:
        try:
            text, _ = split_note(note)
            Checkpoint.parse(text)
        except NoteError as exc:
            raise WitnessError(f"{where}: the checkpoint sent is malformed: {exc.detail}"
                               ) from None
        lines = [line + "\n" for line in answer.split("\n") if line.startswith(_SIG_PREFIX)]
        for line in lines:
            try:
                _, sigs = split_note(text + "\n" + line)
            except NoteError:
                continue
            timestamp = self.verifier.check(text, sigs[0])
            if timestamp is not None:
                return Cosigned(line, timestamp)
        raise WitnessError(f"{where}: its answer holds no valid cosignature of key "
                           f"{self.verifier.name}+{self.verifier.key_id.hex()} "
                           f"({len(lines)} signature line(s))", witness_status=200)


def push(client: WitnessClient, note: str, size: int, known: int,
         proof: ProofSource) -> Cosigned:
    """Send the checkpoint `note` (of `size`) with a proof from `known`, the witness's
    last size as far as we know; on 409 retry once from the size the witness says."""
    answer = client.add_checkpoint(known, proof(known, size) if 0 < known < size else [], note)
    if isinstance(answer, Cosigned):
        return answer
    if answer.size > size:
        raise WitnessError(f"witness {client.name} has cosigned size {answer.size}, larger "
                           f"than this log's checkpoint of size {size}: the log was rolled "
                           "back, or another log shares its origin", witness_status=409)
    retry = client.add_checkpoint(
        answer.size, proof(answer.size, size) if 0 < answer.size < size else [], note)
    if isinstance(retry, Conflict):
        raise WitnessError(f"witness {client.name} answered 409 twice (its size moved from "
                           f"{answer.size} to {retry.size}); another log process may be "
                           "pushing the same origin", witness_status=409)
    return retry


__all__ = ["Conflict", "Cosigned", "ProofSource", "WitnessClient", "push"]
