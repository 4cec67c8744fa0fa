"""A witness (c2sp.org/tlog-witness): keeps the latest checkpoint size and root of each
log it knows, and cosigns a new checkpoint only if it provably extends that one.

`Witness.add_checkpoint` is the protocol; `witness_app` serves it over HTTP
(`POST /add-checkpoint`, `GET /healthz`). Its state goes through the storage Backend's
compare-and-set `set_witness_head`, so two requests racing from the same old size
cannot both win, even across processes sharing one database.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from auditkeep.errors import NoteError, ProofError
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint
from auditkeep.log.merkle import verify_consistency
from auditkeep.log.note import Verifier, split_note
from auditkeep.storage.base import Backend
from auditkeep.witness.cosignature import WitnessSigner

log = logging.getLogger(__name__)

MAX_BODY = 64 << 10  # a checkpoint, 63 proof hashes and up to 100 signature lines fit
MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"
_OLD = re.compile("old (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    """An HTTP answer of the protocol: status, content type and text body."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def _bad(message: str) -> WitnessAnswer:
    return WitnessAnswer(400, message + "\n")


def parse_request(body: bytes) -> tuple[int, list[bytes], str] | WitnessAnswer:
    """The old size, proof hashes and checkpoint note of an add-checkpoint body, or the
    400 answer saying what is malformed."""
    if len(body) > MAX_BODY:
        return _bad(f"request body is {len(body)} bytes, at most {MAX_BODY} allowed")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return _bad(f"request body is not UTF-8 (byte offset {e.start})")
    head, sep, note = text.partition("\n\n")
    if not sep:
        return _bad("request body has no empty line before the checkpoint")
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if match is None:
        return _bad("line 1: expected 'old <size>' (decimal, no leading zeros)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        return _bad(f"{len(lines) - 1} consistency proof lines, at most {MAX_PROOF_LINES}")
    proof = []
    for number, line in enumerate(lines[1:], 2):
        try:
            h = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            return _bad(f"line {number}: consistency proof hash is not base64")
        if len(h) != 32:
            return _bad(f"line {number}: consistency proof hash is {len(h)} bytes, expected 32")
        proof.append(h)
    return int(match.group(1)), proof, note


class Witness:
    """The witness's rules for the logs it knows (origin -> the log's verifier keys)."""

    def __init__(self, signer: WitnessSigner, logs: Iterable[Verifier], store: Backend,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.store = store
        self._clock = clock
        self.logs: dict[str, list[Verifier]] = {}
        for v in logs:
            self.logs.setdefault(v.name, []).append(v)

    def add_checkpoint(self, body: bytes) -> WitnessAnswer:
        """WitnessAnswer one add-checkpoint request body as the spec says."""
        parsed = parse_request(body)
        if isinstance(parsed, WitnessAnswer):
            return parsed
        old, proof, note = parsed
        try:
            text, _ = split_note(note)
            cp = Checkpoint.parse(text)
        except NoteError as exc:
            return _bad(f"checkpoint: {exc.detail}")
        verifiers = self.logs.get(cp.origin)
        if verifiers is None:
            return WitnessAnswer(404, f"unknown log origin {cp.origin!r}\n")
        try:
            open_checkpoint(note, verifiers)
        except NoteError as exc:
            return WitnessAnswer(403, f"checkpoint is not signed by a known key of the log: "
                               f"{exc.detail}\n")
        if old > cp.size:
            return _bad(f"old size {old} is larger than the checkpoint's size {cp.size}")
        return self._advance(cp, old, proof)

    def _advance(self, cp: Checkpoint, old: int, proof: list[bytes]) -> WitnessAnswer:
        head = self.store.witness_head(cp.origin)
        size, root = head if head is not None else (0, b"")
        if old != size:
            return _conflict(size)
        if old == cp.size and old > 0 and root != cp.root:
            log.warning("witness: %s signed two roots for size %d (a fork)", cp.origin, old)
            return WitnessAnswer(409, f"the checkpoint's root differs from the one cosigned for "
                               f"size {old}: the log forked\n")
        if old == 0 and proof:
            return WitnessAnswer(422, "a consistency proof from size 0 must be empty\n")
        if 0 < old < cp.size:
            try:
                verify_consistency(old, cp.size, proof, root, cp.root)
            except ProofError as exc:
                # The log signed it: worth keeping as evidence of misbehaviour.
                log.warning("witness: %s sent a checkpoint of size %d that does not extend "
                            "size %d: %s", cp.origin, cp.size, old, exc.detail)
                return WitnessAnswer(422, f"consistency proof does not verify: {exc.detail}\n")
        elif old == cp.size and proof:
            return WitnessAnswer(422, f"the proof between equal sizes must be empty, "
                               f"got {len(proof)} hashes\n")
        if not self.store.set_witness_head(cp.origin, old, cp.size, cp.root):
            latest = self.store.witness_head(cp.origin)
            return _conflict(latest[0] if latest is not None else 0)
        return WitnessAnswer(200, self.signer.cosign(cp.to_text(), int(self._clock())))


def _conflict(size: int) -> WitnessAnswer:
    return WitnessAnswer(409, f"{size}\n", SIZE_TYPE)


def witness_app(witness: Witness) -> Starlette:
    """The witness's HTTP interface: the submission prefix is the root."""

    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse(f"request body over {MAX_BODY} bytes\n", 413)
        answer = await run_in_threadpool(witness.add_checkpoint, body)
        return Response(answer.body, answer.status, media_type=answer.content_type)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


__all__ = ["MAX_BODY", "SIZE_TYPE", "Witness", "WitnessAnswer", "parse_request", "witness_app"]
