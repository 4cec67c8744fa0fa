"""For the witness tests: a small in-memory log (entries, signed checkpoints, proofs), and
a real SQLite node with a witness job whose witness is reached in-process."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint
from auditkeep.log.note import Signer, Verifier
from auditkeep.pipeline.config_keeping import WitnessConfig
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.storage.memory import MemoryBackend
from auditkeep.witness.cosignature import WitnessSigner
from auditkeep.witness.job import WitnessJob
from auditkeep.witness.server import Witness


class FakeLog:
    """A log of `origin` whose tree is built from leaves `prefix-0`, `prefix-1`, …"""

    def __init__(self, origin: str = "example.test/log", prefix: str = "entry",
                 seed: bytes = b"\x07" * 32) -> None:
        self.origin = origin
        self.signer = Signer(origin, Ed25519PrivateKey.from_private_bytes(seed))
        self.tree = merkle.CompactTree()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.prefix = prefix

    @property
    def vkey(self) -> str:
        return self.signer.verifier().to_string()

    def grow(self, to: int) -> None:
        while self.tree.size < to:
            leaf = merkle.leaf_hash(f"{self.prefix}-{self.tree.size}".encode())
            for level, index, h in self.tree.append(leaf):
                self.nodes[(level, index)] = h

    def _read(self, coords: object) -> list[bytes]:
        return [self.nodes[c] for c in coords]  # type: ignore[attr-defined]

    def root(self, size: int) -> bytes:
        return merkle.root_from_reader(size, self._read)

    def note(self, size: int, signer: Signer | None = None) -> str:
        self.grow(size)
        return sign_checkpoint(Checkpoint(self.origin, size, self.root(size)),
                               signer or self.signer)

    def proof(self, old: int, size: int) -> list[bytes]:
        self.grow(size)
        return merkle.consistency_proof(old, size, self._read) if 0 < old < size else []

    def body(self, old: int, size: int, proof: list[bytes] | None = None,
             note: str | None = None) -> bytes:
        hashes = self.proof(old, size) if proof is None else proof
        return (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
                + "\n" + (note or self.note(size))).encode()


class InProcess(httpx.BaseTransport):
    """Hands each add-checkpoint request to a Witness, as its HTTP app would."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness
        self.requests: list[bytes] = []
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = request.read()
        self.requests.append(body)
        answer = self.witness.add_checkpoint(body)
        return httpx.Response(answer.status, content=answer.body.encode(),
                              headers={"content-type": answer.content_type})


def append_events(n: Node, count: int, start: int = 0, tenant: str = "default") -> None:
    body = orjson.dumps([{"action": "orders.delete", "actor": {"id": f"u{i}", "type": "user"},
                          "outcome": "success", "resource": {"type": "order", "id": str(i)}}
                         for i in range(start, start + count)])
    pendings = prepare(decode_events(body, ndjson=False), tenant=tenant,
                       submitter="tok_test", may_set_tenant=False)
    n.logs.append(tenant, pendings).result(10)


@pytest.fixture
def node(data_dir: DataDir) -> Iterator[Node]:
    n = open_node(data_dir, with_index=False, sequencer_options={"checkpoint_interval": 0.0})
    yield n
    n.close()


def log_verifiers(n: Node) -> list[Verifier]:
    origin = n.logs.origin("default")
    return [k.verifier(origin) for k in n.keys.published()]


@pytest.fixture
def signer() -> WitnessSigner:
    return WitnessSigner.generate("witness.test/w1")


def witness_job(n: Node, signer: WitnessSigner, witness: Witness | None = None,
                vkey: str | None = None, logs: tuple[str, ...] = ()
                ) -> tuple[WitnessJob, InProcess]:
    """A job pushing every log of `n` (or `logs`) to an in-process witness."""
    witness = witness or Witness(signer, log_verifiers(n), MemoryBackend())
    transport = InProcess(witness)
    config = WitnessConfig("w1", "http://witness.test", vkey or signer.vkey, interval=30,
                           logs=logs)
    return WitnessJob(n.logs, [config], transport=transport), transport


def default_id(n: Node) -> int:
    return n.logs.info("default").id
