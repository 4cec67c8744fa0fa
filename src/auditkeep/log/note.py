"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys (signature type 0x01).

Key IDs, verifier keys (vkeys), signer keys (skeys), signing a text and opening a
signed note with golang.org/x/mod/sumdb/note `Open` semantics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
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

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04  # c2sp.org/tlog-cosignature: timestamped Ed25519 witness keys
# Go's limit. The spec requires accepting at least 16; the cap stops a note with
# millions of signature lines from costing millions of verifications.
MAX_SIGNATURES = 100

_SIG_PREFIX = "\u2014 "  # em dash, space
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline
_HEX_KEY_ID = re.compile("[0-9a-fA-F]{8}")  # Go's ParseUint accepts either case


def _name_problem(name: str) -> str | None:
    """Why `name` is not a valid key name, or None. Never echoes the name."""
    if not name:
        return "is empty"
    if "+" in name:
        return "contains '+'"
    for ch in name:
        # str.isspace() covers Unicode White_Space (Go's unicode.IsSpace) and more.
        if ch.isspace():
            return f"contains the space character U+{ord(ch):04X}"
        if _CONTROL.match(ch):
            return f"contains the control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return f"contains the lone surrogate U+{ord(ch):04X} (not UTF-8)"
    return None


def _check_name(name: str, where: str = "") -> None:
    problem = _name_problem(name)
    if problem is not None:
        prefix = f"{where}: " if where else ""
        raise NoteError(f"{prefix}key name {name!r} {problem}")


def _b64decode(text: str, where: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4, padded); the error never echoes `text`."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise NoteError(f"{where} is not standard padded base64 ({e})") from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _check_note_chars(text: str, what: str) -> bytes:
    """UTF-8 of `text`, which must have no ASCII control characters but newline."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise NoteError(
            f"{what} {_position(text, bad.start())}: control character "
            f"U+{ord(bad.group()):04X} is not allowed"
        )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteError(
            f"{what} {_position(text, e.start)}: lone surrogate "
            f"U+{ord(text[e.start]):04X} cannot be encoded as UTF-8"
        ) from None


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte C2SP key ID of an Ed25519 key: SHA-256(name ‖ 0x0A ‖ alg ‖ key)[:4]
    (alg 0x01 for note signatures, 0x04 for cosignature/v1)."""
    _check_name(name)
    if len(public_key) != 32:
        raise NoteError(f"key {name!r}: Ed25519 public key is {len(public_key)} bytes, expected 32")
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([alg]) + public_key
    ).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    key_id: bytes
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = key_id(self.name, self.public_key)
        if self.key_id != expected:
            raise NoteError(
                f"verifier {self.name!r}: key id {self.key_id.hex()} does not match "
                f"the public key (expected {expected.hex()})"
            )
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse `name+hexkeyid+base64(0x01 ‖ 32-byte public key)`."""
        where = f"verifier key {vkey!r}"
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError(f"{where}: expected '<name>+<hex key id>+<base64 key>'")
        name, hex_id, key_b64 = parts
        _check_name(name, where)
        public = _ed25519_key(hex_id, key_b64, where, "key", "public key")
        given = bytes.fromhex(hex_id)
        expected = key_id(name, public)
        if given != expected:
            raise NoteError(
                f"{where}: key id {hex_id} does not match the key (expected {expected.hex()})"
            )
        return cls(name, given, public)

    def to_string(self) -> str:
        """The vkey form, `name+hexkeyid+base64(0x01 ‖ public key)`."""
        key = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether `sig` (raw, without key id) is this key's Ed25519 signature of `msg`."""
        try:
            self._key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 private key that signs note texts. Its repr never shows the key."""

    __slots__ = ("_key_id", "_name", "_private_key", "_public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = name
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self._public_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh random key under `name`."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse `PRIVATE+KEY+name+hexkeyid+base64(0x01 ‖ 32-byte seed)`.

        Error messages name the key but never quote its secret part.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key: expected 'PRIVATE+KEY+<name>+<hex key id>+<base64 seed>'")
        name, hex_id, seed_b64 = parts[2:]
        problem = _name_problem(name)
        if problem is not None:
            raise NoteError(f"signer key: key name {problem}")
        where = f"signer key {name!r}"
        seed = _ed25519_key(hex_id, seed_b64, where, "seed", "seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if bytes.fromhex(hex_id) != signer.key_id:
            raise NoteError(
                f"{where}: key id {hex_id} does not match the key (expected {signer.key_id.hex()})"
            )
        return signer

    def to_string(self) -> str:
        """The skey form, `PRIVATE+KEY+name+hexkeyid+base64(0x01 ‖ seed)`. Secret."""
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key = _b64encode(bytes([ALG_ED25519]) + seed)
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{key}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public_key

    def verifier(self) -> Verifier:
        """The verifier for this key under this name."""
        return Verifier(self._name, self._key_id, self._public_key)

    def with_name(self, name: str) -> Signer:
        """The same key under another name (and so another key id)."""
        return Signer(name, self._private_key)

    def sign(self, msg: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of `msg`."""
        return self._private_key.sign(msg)

    def __repr__(self) -> str:
        return f"Signer(name={self._name!r}, key_id={self._key_id.hex()!r})"


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 4-byte key id and the signature bytes after it."""

    name: str
    key_id: bytes
    sig: bytes


@dataclass(frozen=True)
class Note:
    """An opened note: its text (with final newline) and its signatures, in note order."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign `text` (ending in a newline) with every signer, in order.

    The text may contain empty lines: `open_note` splits at the last one.
    """
    if not signers:
        raise NoteError("sign note: at least one signer is needed")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(
            f"sign note: {len(signers)} signers, but a note opens with at most {MAX_SIGNATURES}"
        )
    if not text.endswith("\n"):
        raise NoteError("sign note: text does not end with a newline")
    msg = _check_note_chars(text, "sign note: text")
    lines = [f"{_SIG_PREFIX}{s.name} {_b64encode(s.key_id + s.sign(msg))}\n" for s in signers]
    return text + "\n" + "".join(lines)


def _decode_note(note: str | bytes) -> str:
    if isinstance(note, str):
        return note
    try:
        return note.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NoteError(
            f"note is not valid UTF-8: byte 0x{note[e.start]:02x} at offset {e.start} ({e.reason})"
        ) from None


def _parse_signature_line(number: int, line: str) -> Signature:
    where = f"signature line {number}"
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"{where}: does not start with an em dash and a space: {line[:40]!r}")
    name, _, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
    _check_name(name, where)
    if not sig_b64:
        raise NoteError(f"{where}: no base64 signature after key name {name!r}")
    raw = _b64decode(sig_b64, f"{where}: signature")
    if len(raw) < 5:
        raise NoteError(
            f"{where}: signature is {len(raw)} bytes, expected a 4-byte key id and more"
        )
    return Signature(name, raw[:4], raw[4:])


def _split_note(note: str | bytes) -> tuple[str, list[Signature]]:
    whole = _decode_note(note)
    _check_note_chars(whole, "note")

    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no empty line between its text and its signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines after its last empty line")
    if not block.endswith("\n"):
        raise NoteError("note does not end with a newline after its last signature line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signature lines, at most {MAX_SIGNATURES} allowed")
    return text, [_parse_signature_line(n, line) for n, line in enumerate(lines, 1)]


def split_note(note: str | bytes) -> tuple[str, list[Signature]]:
    """A signed note's text (with final newline) and its parsed signature lines, none
    verified: for signatures over another message than the text (cosignatures)."""
    return _split_note(note)


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify it against the known verifiers.

    A signature whose key name and key id both match a known verifier must verify, or
    the note is rejected; other signatures are returned unverified. At least one
    signature must verify.
    """
    text, lines = _split_note(note)

    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for v in verifiers:
        same = known.setdefault((v.name, v.key_id), [])
        if v not in same:
            same.append(v)

    msg = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for number, sig in enumerate(lines, 1):
        key = f"{sig.name}+{sig.key_id.hex()}"
        candidates = known.get((sig.name, sig.key_id))
        if candidates is None:
            # Unknown keys are ignored, even if they share a name or an id with a known one.
            if sig not in unverified:
                unverified.append(sig)
            continue
        if len(candidates) > 1:
            raise NoteError(
                f"signature line {number}: key {key} matches {len(candidates)} different verifiers"
            )
        # Unlike Go, which skips repeats unchecked, every signature of a known key is
        # verified: the spec says verifiers MUST verify them.
        if not candidates[0].verify(msg, sig.sig):
            raise NoteError(f"signature line {number}: invalid signature for key {key}")
        if all((s.name, s.key_id) != (sig.name, sig.key_id) for s in verified):
            verified.append(sig)

    if not verified:
        signed_by = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in unverified)
        raise NoteError(
            f"note has no verifiable signatures: it is signed by {signed_by}, "
            "none of them a known key"
        )
    return Note(text, tuple(verified), tuple(unverified))


__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "key_id",
    "open_note",
    "parse_ed25519_key",
    "sign_note",
    "split_note",
]


def _ed25519_key(hex_id: str, b64: str, where: str, part: str, what: str,
                 alg: int = ALG_ED25519) -> bytes:
    """The 32 key bytes of `base64(alg ‖ key)`, after checking the key id's form."""
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(f"{where}: key id {hex_id!r} is not 8 hex digits")
    raw = _b64decode(b64, f"{where}: {part}")
    if not raw:
        raise NoteError(f"{where}: {part} is empty")
    if raw[0] != alg:
        kind = "Ed25519" if alg == ALG_ED25519 else "Ed25519 cosignature/v1"
        raise NoteError(f"{where}: signature type 0x{raw[0]:02x} is not 0x{alg:02x} ({kind})")
    if len(raw) != 33:
        raise NoteError(f"{where}: Ed25519 {what} is {len(raw) - 1} bytes, expected 32")
    return raw[1:]


def parse_ed25519_key(text: str, alg: int, *, secret: bool = False) -> tuple[str, str, bytes]:
    """Split `name+hexkeyid+base64(alg ‖ 32 bytes)` (a vkey, or an skey without its
    `PRIVATE+KEY+` prefix when `secret`): (name, hex key id, the 32 bytes). The key id's
    form is checked, not its value. Errors never quote a secret."""
    parts = text.split("+", 2)
    where = "signer key" if secret else f"verifier key {text!r}"
    if len(parts) != 3:
        raise NoteError(f"{where}: expected '<name>+<hex key id>+<base64 key>'")
    name, hex_id, b64 = parts
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"{where}: key name {problem}" if secret
                        else f"{where}: key name {name!r} {problem}")
    if secret:
        where = f"signer key {name!r}"
    raw = _ed25519_key(hex_id, b64, where, "seed" if secret else "key",
                       "seed" if secret else "public key", alg)
    return name, hex_id, raw
