"""The signed manifest of one sealed range: what the Parquet file must hash to, which
subtree of the log it holds, and the checkpoint that covers it.

On disk a manifest is a C2SP signed note whose text is one line of RFC 8785 JSON. It
is signed under the key name "<origin>/archive", never the log's own "<origin>", so a
manifest cannot pass for a checkpoint (the key ID covers the name) and a checkpoint
cannot pass for a manifest.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from auditkeep.errors import CorruptionError
from auditkeep.log.canonical import canonical_bytes
from auditkeep.log.note import Note, Signer, Verifier, key_id, open_note, sign_note

FORMAT = "auditkeep-archive/1"
SUFFIX = ".manifest"
PARQUET = ".parquet"


def manifest_key_name(origin: str) -> str:
    return f"{origin}/archive"


def range_name(log: str, first: int, end: int) -> str:
    """The object name stem of a range: zero-padded so names sort by seq."""
    return f"{log}/{first:020d}-{end:020d}"


@dataclass(frozen=True, slots=True)
class Manifest:
    log: str
    tenant: str
    origin: str
    first: int
    end: int
    width: int
    rows: int
    file: str  # the Parquet object's name, relative to the archive URL
    sha256: str  # hex, of the whole file
    file_size: int
    root: bytes  # the subtree's root: node (log2 width, first / width)
    proof: tuple[bytes, ...]  # its inclusion proof into the checkpoint's tree
    checkpoint: str  # the signed checkpoint note, with any cosignature lines
    checkpoint_size: int
    keys: tuple[str, ...]  # vkeys of the log's published keys (checkpoint names)
    created: str

    def to_json(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {
            "format": FORMAT, "log": self.log, "tenant": self.tenant, "origin": self.origin,
            "first": self.first, "end": self.end, "width": self.width, "rows": self.rows,
            "file": {"name": self.file, "sha256": self.sha256, "size": self.file_size},
            "subtree": {"level": self.width.bit_length() - 1, "index": self.first // self.width,
                        "root": b64(self.root).decode(),
                        "proof": [b64(p).decode() for p in self.proof]},
            "checkpoint": {"size": self.checkpoint_size, "note": self.checkpoint},
            "keys": list(self.keys), "created": self.created,
        }

    def text(self) -> str:
        return canonical_bytes(self.to_json()).decode() + "\n"

    def sign(self, signer: Signer) -> str:
        """The manifest as a signed note, under "<origin>/archive"."""
        return sign_note(self.text(), [signer.with_name(manifest_key_name(self.origin))])

    @classmethod
    def from_json(cls, obj: Any) -> Manifest:
        """Strictly: CorruptionError naming the first field that is missing or wrong."""
        try:
            if obj["format"] != FORMAT:
                raise CorruptionError(f"manifest format {obj['format']!r} is not {FORMAT}")
            sub, f, cp = obj["subtree"], obj["file"], obj["checkpoint"]
            m = cls(
                _str(obj, "log"), _str(obj, "tenant"), _str(obj, "origin"), _int(obj, "first"),
                _int(obj, "end"), _int(obj, "width"), _int(obj, "rows"), _str(f, "name"),
                _str(f, "sha256"), _int(f, "size"), _hash(sub["root"], "subtree.root"),
                tuple(_hash(p, f"subtree.proof[{i}]") for i, p in enumerate(sub["proof"])),
                _str(cp, "note"), _int(cp, "size"), tuple(str(k) for k in obj["keys"]),
                _str(obj, "created"))
        except (KeyError, TypeError) as exc:
            raise CorruptionError(f"manifest field {exc} is missing or of the wrong type"
                                  ) from None
        if m.end - m.first != m.width or (sub.get("level"), sub.get("index")) != (
                m.width.bit_length() - 1, m.first // max(m.width, 1)):
            raise CorruptionError("manifest subtree level/index do not match first, end, width")
        return m


def _str(obj: Any, key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value


def _int(obj: Any, key: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(key)
    return value


def _hash(text: Any, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise CorruptionError(f"manifest {where} is not base64") from None
    if len(raw) != 32:
        raise CorruptionError(f"manifest {where} is {len(raw)} bytes, expected 32")
    return raw


def parse_manifest(note: bytes | str) -> tuple[Manifest, str]:
    """The manifest in a signed note, unverified, and the note's text. CorruptionError
    if it is not one (the signature is checked by `open_manifest`)."""
    whole = note.decode("utf-8", "replace") if isinstance(note, bytes) else note
    split = whole.rfind("\n\n")
    if split < 0:
        raise CorruptionError("manifest is not a signed note (no empty line before signatures)")
    text = whole[:split + 1]
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CorruptionError(f"manifest text is not JSON: {exc}") from None
    m = Manifest.from_json(obj)
    if m.text() != text:
        raise CorruptionError("manifest text is not in canonical form (RFC 8785)")
    return m, text


def archive_verifiers(vkeys: Sequence[str]) -> list[Verifier]:
    """For each trusted log key (named after the log's origin) the same public key under
    "<origin>/archive": trust in a key covers both what it signs as the log and as the
    archiver, and the names keep the two kinds of note apart."""
    out = []
    for text in vkeys:
        v = Verifier.parse(text)
        out.append(v)
        if not v.name.endswith("/archive"):
            name = manifest_key_name(v.name)
            out.append(Verifier(name, key_id(name, v.public_key), v.public_key))
    return out


def open_manifest(note: bytes | str, verifiers: Sequence[Verifier]) -> tuple[Manifest, Note]:
    """Verify the manifest's signature (by a key named "<origin>/archive") and parse it."""
    m, _ = parse_manifest(note)
    wanted = manifest_key_name(m.origin)
    # Only keys of that name count: a note signed as the log (a checkpoint) never opens.
    return m, open_note(note, [v for v in verifiers if v.name == wanted])
