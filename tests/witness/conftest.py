"""A small in-memory log for the witness tests: entries, signed checkpoints, proofs."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint
from auditkeep.log.note import Signer


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
        import base64

        hashes = self.proof(old, size) if proof is None else proof
        return (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
                + "\n" + (note or self.note(size))).encode()
