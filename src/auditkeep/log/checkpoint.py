"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a log's tree head as signed note text."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditkeep.errors import NoteError
from auditkeep.log.note import Note, Signer, Verifier, open_note, sign_note

MAX_TREE_SIZE = 2**64 - 1  # the size is a uint64 in every implementation we interoperate with
_DECIMAL = re.compile("[0-9]+")  # not \d, which also matches non-ASCII digits
_CONTROL = re.compile("[\x00-\x1f]")  # a line holds no newline and, as note text, no control


def _line_problem(line: str) -> str | None:
    bad = _CONTROL.search(line)
    if bad is not None:
        return f"contains the control character U+{ord(bad.group()):04X}"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in line):
        return "contains a lone surrogate (not UTF-8)"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's origin, tree size and RFC 6962 root hash, plus optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise NoteError("checkpoint origin is empty")
        problem = _line_problem(self.origin)
        if problem is not None:
            raise NoteError(f"checkpoint origin {self.origin!r} {problem}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError(f"checkpoint tree size {self.size!r} is not an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {self.size} is outside 0..2^64-1")
        if not isinstance(self.root, bytes):
            raise NoteError(f"checkpoint root hash is a {type(self.root).__name__}, not bytes")
        if len(self.root) != 32:
            raise NoteError(f"checkpoint root hash is {len(self.root)} bytes, expected 32")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for i, ext in enumerate(self.extensions):
            if not ext:
                raise NoteError(f"checkpoint extension {i} is empty")
            problem = _line_problem(ext)
            if problem is not None:
                raise NoteError(f"checkpoint extension {i} {ext!r} {problem}")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text strictly (no leading zeros, canonical base64 root)."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(
                f"checkpoint has {len(lines)} line(s), expected at least 3 "
                "(origin, tree size, root hash)"
            )
        for number, line in enumerate(lines, 1):
            problem = _line_problem(line)
            if problem is not None:
                raise NoteError(f"checkpoint line {number}: {problem}")

        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError("checkpoint line 1: origin is empty")
        size = _parse_size(size_text)
        root = _parse_root(root_text)
        for number, ext in enumerate(extensions, 4):
            if not ext:
                raise NoteError(f"checkpoint line {number}: extension line is empty")
        return cls(origin, size, root, tuple(extensions))


def _parse_size(text: str) -> int:
    where = "checkpoint line 2"
    if not _DECIMAL.fullmatch(text):
        raise NoteError(f"{where}: tree size {text[:40]!r} is not a decimal number")
    if len(text) > 1 and text[0] == "0":
        raise NoteError(f"{where}: tree size {text[:40]!r} has a leading zero")
    # Check the length before int(): Python refuses to convert over 4300 digits.
    if len(text) > len(str(MAX_TREE_SIZE)) or int(text) > MAX_TREE_SIZE:
        raise NoteError(f"{where}: tree size {text[:40]!r} exceeds 2^64-1")
    return int(text)


def _parse_root(text: str) -> bytes:
    where = "checkpoint line 3"
    try:
        root = base64.b64decode(text, validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII input
        raise NoteError(f"{where}: root hash is not standard padded base64 ({e})") from None
    if len(root) != 32:
        raise NoteError(f"{where}: root hash is {len(root)} bytes, expected 32")
    if base64.b64encode(root).decode("ascii") != text:
        # Unused trailing bits set: another text for the same hash.
        raise NoteError(f"{where}: root hash {text!r} is not canonical base64")
    return root


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The signed note of `cp`. The log signs under its origin (`signer.with_name`)."""
    return sign_note(cp.to_text(), [signer])


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[Verifier], origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint, parse it and, if `origin` is given, check its origin."""
    opened = open_note(note, verifiers)
    cp = Checkpoint.parse(opened.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint line 1: origin {cp.origin!r} is not the expected {origin!r}")
    return cp, opened


__all__ = ["MAX_TREE_SIZE", "Checkpoint", "open_checkpoint", "sign_checkpoint"]


def with_cosignatures(note: str, lines: Sequence[str]) -> str:
    """The log's signed checkpoint with witnesses' cosignature lines appended (a signed
    note may carry any number of signatures; verifiers skip keys they do not know)."""
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)
