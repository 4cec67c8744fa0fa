"""Witness cosignatures (c2sp.org/tlog-cosignature, cosignature/v1): timestamped Ed25519
signatures over a checkpoint, as extra signature lines of the log's signed note.

A cosignature line is `— <witness name> base64(key id ‖ u64 timestamp ‖ signature)`; the
key id is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4] and the signed message is
`cosignature/v1\\ntime <timestamp>\\n` followed by the checkpoint text.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from auditkeep.errors import NoteError
from auditkeep.log.checkpoint import Checkpoint
from auditkeep.log.note import ALG_COSIGNATURE_V1, Signature, key_id, parse_ed25519_key, split_note

MAX_TIMESTAMP = 2**63 - 1  # the spec's bound on the u64 timestamp
_SIG_PREFIX = "\u2014 "  # em dash, space


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: header line, time line, checkpoint text."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteError(f"cosignature timestamp {timestamp!r} is not an integer")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_text.encode("utf-8")


def _checkpoint_text(text: str) -> str:
    # Parsing proves it is one checkpoint body (no signature block, no empty line).
    Checkpoint.parse(text)
    return text


@dataclass(frozen=True)
class WitnessVerifier:
    """A witness's name and Ed25519 public key: checks its cosignatures on checkpoints."""

    name: str
    key_id: bytes
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = key_id(self.name, self.public_key, ALG_COSIGNATURE_V1)
        if self.key_id != expected:
            raise NoteError(
                f"witness {self.name!r}: key id {self.key_id.hex()} does not match "
                f"the public key (expected {expected.hex()})"
            )
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> WitnessVerifier:
        """Parse `name+hexkeyid+base64(0x04 ‖ 32-byte public key)`."""
        name, hex_id, public = parse_ed25519_key(vkey, ALG_COSIGNATURE_V1)
        expected = key_id(name, public, ALG_COSIGNATURE_V1)
        if bytes.fromhex(hex_id) != expected:
            raise NoteError(
                f"verifier key {vkey!r}: key id {hex_id} does not match the key "
                f"(expected {expected.hex()})"
            )
        return cls(name, expected, public)

    def to_string(self) -> str:
        """The vkey form, `name+hexkeyid+base64(0x04 ‖ public key)`."""
        key = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def check(self, checkpoint_text: str, sig: Signature) -> int | None:
        """The timestamp of `sig` if it is this witness's valid cosignature of the text."""
        if (sig.name, sig.key_id) != (self.name, self.key_id) or len(sig.sig) != 72:
            return None
        (timestamp,) = struct.unpack(">Q", sig.sig[:8])
        if timestamp > MAX_TIMESTAMP:
            return None
        try:
            self._key.verify(sig.sig[8:], signed_message(checkpoint_text, timestamp))
        except InvalidSignature:
            return None
        return int(timestamp)

    def verify(self, checkpoint_note: str | bytes) -> int | None:
        """The timestamp of this witness's valid cosignature in a signed checkpoint note,
        or None when the note carries none (lines of other keys are ignored)."""
        text, sigs = split_note(checkpoint_note)
        for sig in sigs:
            timestamp = self.check(text, sig)
            if timestamp is not None:
                return timestamp
        return None


class WitnessSigner:
    """A witness's named Ed25519 private key. Its repr never shows the key."""

    __slots__ = ("_key", "_key_id", "_name", "_public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = name
        self._key = private_key
        self._public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self._public_key, ALG_COSIGNATURE_V1)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        """A fresh random key under `name` (a schema-less URL, e.g. `witness.example/w1`)."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> WitnessSigner:
        """Parse `PRIVATE+KEY+name+hexkeyid+base64(0x04 ‖ 32-byte seed)`."""
        if not skey.startswith("PRIVATE+KEY+"):
            raise NoteError(
                "witness key: expected 'PRIVATE+KEY+<name>+<hex key id>+<base64 seed>'"
            )
        name, hex_id, seed = parse_ed25519_key(skey[len("PRIVATE+KEY+"):], ALG_COSIGNATURE_V1,
                                               secret=True)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if bytes.fromhex(hex_id) != signer.key_id:
            raise NoteError(f"witness key {name!r}: key id {hex_id} does not match the key "
                            f"(expected {signer.key_id.hex()})")
        return signer

    def to_string(self) -> str:
        """The skey form. Secret."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{key}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def verifier(self) -> WitnessVerifier:
        return WitnessVerifier(self._name, self._key_id, self._public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string to give to logs and clients."""
        return self.verifier().to_string()

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """The cosignature line (ending in a newline) on a checkpoint's note text."""
        msg = signed_message(_checkpoint_text(checkpoint_text), timestamp)
        raw = self._key_id + struct.pack(">Q", timestamp) + self._key.sign(msg)
        return f"{_SIG_PREFIX}{self._name} {base64.b64encode(raw).decode('ascii')}\n"

    def __repr__(self) -> str:
        return f"WitnessSigner(name={self._name!r}, key_id={self._key_id.hex()!r})"


def count_cosignatures(note: str | bytes, verifiers: Iterable[WitnessVerifier]) -> set[str]:
    """The names of the given witnesses with a valid cosignature in the signed note.

    Only the cosignatures are checked: verify the log's own signature separately.
    """
    text, sigs = split_note(note)
    valid: set[str] = set()
    for v in verifiers:
        if any(v.check(text, sig) is not None for sig in sigs):
            valid.add(v.name)
    return valid


__all__ = [
    "MAX_TIMESTAMP",
    "WitnessSigner",
    "WitnessVerifier",
    "count_cosignatures",
    "signed_message",
]
