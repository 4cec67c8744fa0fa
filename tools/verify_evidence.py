#!/usr/bin/env python3
"""Verify an auditkeep evidence bundle using nothing but the Python standard library.

    python3 verify_evidence.py case-42.zip --key 'auditkeep.example/acme+1a2b3c4d+AQ…'

Everything a check needs is written out below, so an auditor can read it instead of
trusting a library or the log operator: the zip layout, RFC 6962/9162 Merkle hashing and
inclusion proofs, C2SP signed notes and checkpoints, Ed25519 (RFC 8032) and C2SP
tlog-cosignature/v1 witness cosignatures. Exit status 0: every check passed; 1: a check
failed (each failure names the part of the bundle); 2: the command was used wrongly.

Python 3.9 or later; runs under `python3 -I -S` (no site-packages, no project).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import struct
import sys
import time

FORMAT = "auditkeep-evidence/v1"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_SIGNATURES = 100  # a signed note carries at most this many signature lines

# ---------------------------------------------------------------------------------------
# Ed25519 signature verification, RFC 8032 §5.1 (cofactorless, canonical S only)
# ---------------------------------------------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    """RFC 8032 §5.1.3 steps 2-4: the x with x^2 = (y^2-1)/(d*y^2+1) and parity `sign`."""
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == u:
        pass
    elif vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    else:
        return None  # no square root: not a point
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(s: bytes) -> tuple[int, int, int, int] | None:
    """A 32-byte point encoding in extended coordinates (X, Y, Z, T), or None."""
    if len(s) != 32:
        return None
    n = int.from_bytes(s, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= _P:
        return None  # non-canonical y
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _point_add(p: tuple[int, int, int, int], q: tuple[int, int, int, int]
               ) -> tuple[int, int, int, int]:
    """RFC 8032 §5.1.4 (a complete formula: doubles too)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _scalar_mult(k: int, p: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    q = (0, 1, 1, 0)  # the neutral element
    while k:
        if k & 1:
            q = _point_add(q, p)
        p = _point_add(p, p)
        k >>= 1
    return q


def _points_equal(p: tuple[int, int, int, int], q: tuple[int, int, int, int]) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


_BY = 4 * pow(5, _P - 2, _P) % _P
_B = (_recover_x(_BY, 0) or 0, _BY, 1, (_recover_x(_BY, 0) or 0) * _BY % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7: whether `signature` is the key's signature of `message`.
    Checks [S]B = R + [k]A (without the cofactor) and rejects S >= L."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False  # non-canonical S: another encoding of the same signature
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(),
                       "little") % _L
    return _points_equal(_scalar_mult(s, _B), _point_add(r, _scalar_mult(k, a)))


# ---------------------------------------------------------------------------------------
# RFC 6962 / RFC 9162 Merkle tree hashing and inclusion proofs
# ---------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: list[bytes]
                              ) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the proof leads to, or None if it is malformed."""
    if not 0 <= index < size or len(leaf) != 32 or any(len(p) != 32 for p in proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None  # too many hashes
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# ---------------------------------------------------------------------------------------
# C2SP signed notes, verifier keys, checkpoints, cosignatures and tlog-proofs
# ---------------------------------------------------------------------------------------

ALG_ED25519 = 0x01  # signed-note Ed25519 signatures (the log's)
ALG_COSIGNATURE_V1 = 0x04  # tlog-cosignature/v1 Ed25519 timestamped signatures (witnesses')
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile("0|[1-9][0-9]*")


class Failure(Exception):
    """One failed check; the message starts with the part of the bundle it concerns."""


def b64decode(text: str, where: str) -> bytes:
    """Strict, canonical standard base64 (RFC 4648 §4, padded)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise Failure(f"{where} is not standard padded base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise Failure(f"{where} is not canonical base64")
    return raw


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || alg || public key)[:4] (signed-note, tlog-cosignature)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


def name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "+" in name:
        return "contains '+'"
    if any(ch.isspace() or _CONTROL.match(ch) for ch in name):
        return "contains a space or control character"
    return None


class VerifierKey:
    """A vkey, `name+hexkeyid+base64(alg || 32-byte Ed25519 key)`."""

    def __init__(self, text: str, alg: int, where: str) -> None:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise Failure(f"{where}: verifier key is not '<name>+<hex key id>+<base64 key>'")
        name, hex_id, key_b64 = parts
        problem = name_problem(name)
        if problem is not None:
            raise Failure(f"{where}: key name {problem}")
        if not re.fullmatch("[0-9a-fA-F]{8}", hex_id):
            raise Failure(f"{where}: key id {hex_id!r} is not 8 hex digits")
        raw = b64decode(key_b64, f"{where}: key")
        if len(raw) != 33 or raw[0] != alg:
            kind = "a log key (type 0x01)" if alg == ALG_ED25519 else \
                "a witness key (type 0x04, tlog-cosignature/v1 Ed25519)"
            raise Failure(f"{where}: {name} is not {kind} with a 32-byte public key")
        self.name, self.alg, self.public_key = name, alg, raw[1:]
        self.key_id = key_id(name, alg, self.public_key)
        if self.key_id != bytes.fromhex(hex_id):
            raise Failure(f"{where}: key id {hex_id} does not match {name}'s key "
                          f"(expected {self.key_id.hex()})")

    def __repr__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"


def read_keys(text: str, alg: int, where: str) -> list[VerifierKey]:
    """One vkey per non-empty line (lines starting with # are comments)."""
    return [VerifierKey(line, alg, f"{where} line {number}")
            for number, line in enumerate(text.split("\n"), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def split_note(note: str, where: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A signed note's text (with its final newline) and (name, key id, signature) of
    each signature line, after the last empty line."""
    bad = _CONTROL.search(note)
    if bad is not None:
        raise Failure(f"{where}: control character U+{ord(bad.group()):04X} in the note")
    split = note.rfind("\n\n")
    if split < 0:
        raise Failure(f"{where}: no empty line between the note's text and its signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block or not block.endswith("\n"):
        raise Failure(f"{where}: the signature lines do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise Failure(f"{where}: {len(lines)} signature lines, at most {MAX_SIGNATURES}")
    sigs = []
    for number, line in enumerate(lines, 1):
        at = f"{where}: signature line {number}"
        if not line.startswith("\u2014 "):
            raise Failure(f"{at} does not start with an em dash and a space")
        name, _, sig_b64 = line[2:].partition(" ")
        problem = name_problem(name)
        if problem is not None:
            raise Failure(f"{at}: key name {problem}")
        raw = b64decode(sig_b64, f"{at}: signature")
        if len(raw) < 5:
            raise Failure(f"{at}: signature is too short for a key id and a signature")
        sigs.append((name, raw[:4], raw[4:]))
    return text, sigs


def open_note(note: str, keys: list[VerifierKey], where: str) -> tuple[str, list[VerifierKey]]:
    """The note's text and the keys whose Ed25519 (type 0x01) signatures verify. A
    signature of a known key that does not verify fails; unknown keys are skipped; at
    least one known key must have signed."""
    text, sigs = split_note(note, where)
    msg = text.encode("utf-8")
    verified: list[VerifierKey] = []
    for number, (name, kid, sig) in enumerate(sigs, 1):
        for k in keys:
            if k.name == name and k.key_id == kid:
                if not ed25519_verify(k.public_key, msg, sig):
                    raise Failure(f"{where}: signature line {number} of {k!r} does not verify")
                if k not in verified:
                    verified.append(k)
    if not verified:
        signed = ", ".join(f"{n}+{kid.hex()}" for n, kid, _ in sigs) or "nobody"
        raise Failure(f"{where}: not signed by any trusted key (signed by {signed})")
    return text, verified


def cosignatures(text: str, sigs: list[tuple[str, bytes, bytes]], witnesses: list[VerifierKey],
                 where: str) -> list[tuple[VerifierKey, int]]:
    """Each witness with a valid tlog-cosignature/v1 on the checkpoint `text`, and the
    time it cosigned. A known witness's cosignature that does not verify fails."""
    out: list[tuple[VerifierKey, int]] = []
    for number, (name, kid, sig) in enumerate(sigs, 1):
        for w in witnesses:
            if w.name != name or w.key_id != kid:
                continue
            at = f"{where}: cosignature line {number} of witness {w!r}"
            if len(sig) != 72:
                raise Failure(f"{at} is {len(sig)} bytes, expected an 8-byte time and 64 bytes")
            stamp = int.from_bytes(sig[:8], "big")
            if stamp >= 2**63:
                raise Failure(f"{at}: its timestamp exceeds 2^63-1")
            msg = f"cosignature/v1\ntime {stamp}\n{text}".encode()
            if not ed25519_verify(w.public_key, msg, sig[8:]):
                raise Failure(f"{at} does not verify")
            if all(w is not seen for seen, _ in out):
                out.append((w, stamp))
    return out


def parse_checkpoint(text: str, where: str) -> tuple[str, int, bytes]:
    """A tlog-checkpoint body: origin, tree size and root hash (extension lines allowed)."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 3 or not lines[0]:
        raise Failure(f"{where}: not a checkpoint (origin, tree size, root hash lines)")
    if not _DECIMAL.fullmatch(lines[1]) or len(lines[1]) > 20 or int(lines[1]) >= 2**64:
        raise Failure(f"{where}: tree size {lines[1][:30]!r} is not a decimal uint64")
    root = b64decode(lines[2], f"{where}: root hash")
    if len(root) != 32:
        raise Failure(f"{where}: root hash is {len(root)} bytes, expected 32")
    if any(not ext for ext in lines[3:]):
        raise Failure(f"{where}: empty extension line")
    return lines[0], int(lines[1]), root


def parse_proof(text: str, where: str) -> tuple[int, list[bytes], str]:
    """A c2sp.org/tlog-proof@v1: the index, the inclusion proof hashes and the checkpoint
    note that follows them."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != PROOF_HEADER:
        raise Failure(f"{where}: not a {PROOF_HEADER} proof")
    i = 1
    if len(lines) > i and lines[i].startswith("extra "):
        b64decode(lines[i][len("extra "):], f"{where}: extra data")
        i += 1
    if len(lines) <= i or not lines[i].startswith("index ") \
            or not _DECIMAL.fullmatch(lines[i][len("index "):]):
        raise Failure(f"{where}: no 'index N' line after the header")
    index = int(lines[i][len("index "):])
    hashes = []
    for number, line in enumerate(lines[i + 1:], i + 2):
        h = b64decode(line, f"{where}: line {number}")
        if len(h) != 32:
            raise Failure(f"{where}: line {number} is not a 32-byte hash")
        hashes.append(h)
    return index, hashes, note


# ---------------------------------------------------------------------------------------
# The zip: only the layout auditkeep writes, so that every byte of the file is checked
# ---------------------------------------------------------------------------------------

_LOCAL = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory file header, 46 bytes
_END = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
VERSION_MADE_BY = (3 << 8) | 20  # Unix, zip 2.0
VERSION_NEEDED = 20
EXTERNAL_ATTR = 0o100644 << 16  # a regular file, rw-r--r--
MEMBER_NAME = re.compile(r"(entries/[0-9]+\.json|proofs/[0-9]+\.proof|raw/[0-9]+\.[a-z0-9]+"
                         r"|keys/log\.vkey|keys/witnesses\.vkeys|checkpoint\.txt"
                         r"|manifest\.json|README\.md)")


def read_zip(data: bytes) -> dict[str, bytes]:
    """The members of an evidence zip by name, after checking its whole layout: stored
    (uncompressed) members back to back from offset 0, each local header equal to its
    central directory entry, CRC-32s, no extra fields or comments, nothing appended."""
    if len(data) < _END.size:
        raise Failure("zip: the file is too short to be a zip")
    (sig, disk, cd_disk, on_disk, total, cd_size, cd_offset,
     comment_len) = _END.unpack_from(data, len(data) - _END.size)
    where = "zip end of central directory record"
    if sig != b"PK\x05\x06":
        raise Failure(f"{where}: not found in the last 22 bytes (a comment or junk at the end?)")
    if disk or cd_disk or on_disk != total or comment_len:
        raise Failure(f"{where}: multi-disk fields or a comment (evidence zips have neither)")
    if cd_offset + cd_size != len(data) - _END.size:
        raise Failure(f"{where}: the central directory does not end where the record starts")
    members: dict[str, bytes] = {}
    pos, expected_offset = cd_offset, 0
    for i in range(total):
        where = f"zip central directory entry {i + 1}"
        if pos + _CENTRAL.size > cd_offset + cd_size:
            raise Failure(f"{where}: runs past the central directory")
        (sig, made_by, needed, flags, method, mtime, mdate, crc, csize, usize, name_len,
         extra_len, comment_len, disk_start, int_attr, ext_attr,
         offset) = _CENTRAL.unpack_from(data, pos)
        raw_name = data[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len]
        name = raw_name.decode("ascii", "replace")
        where = f"zip central directory entry {i + 1} ({name!r})"
        if sig != b"PK\x01\x02":
            raise Failure(f"{where}: bad signature")
        if not MEMBER_NAME.fullmatch(name):
            raise Failure(f"{where}: not a member an evidence bundle has")
        if name in members:
            raise Failure(f"{where}: a second member of that name")
        if (made_by, needed, flags, method, extra_len, comment_len, disk_start, int_attr,
                ext_attr) != (VERSION_MADE_BY, VERSION_NEEDED, 0, 0, 0, 0, 0, 0, EXTERNAL_ATTR):
            raise Failure(f"{where}: version, flags, method, attributes, extra field or "
                          "comment differ from what auditkeep writes (stored, no extras)")
        pos += _CENTRAL.size + name_len
        if offset != expected_offset:
            raise Failure(f"{name}: does not start where the previous member ends "
                          f"(offset {offset}, expected {expected_offset})")
        if offset + _LOCAL.size > cd_offset:
            raise Failure(f"{name}: local header runs into the central directory")
        local = _LOCAL.unpack_from(data, offset)
        if local[0] != b"PK\x03\x04":
            raise Failure(f"{name}: bad local header signature")
        if local[1:] != (needed, flags, method, mtime, mdate, crc, csize, usize, name_len, 0):
            raise Failure(f"{name}: local header differs from its central directory entry")
        start = offset + _LOCAL.size
        if data[start:start + name_len] != raw_name:
            raise Failure(f"{name}: local header names {data[start:start + name_len]!r}")
        start += name_len
        if csize != usize or start + csize > cd_offset:
            raise Failure(f"{name}: sizes are inconsistent")
        body = data[start:start + csize]
        if binascii.crc32(body) != crc:
            raise Failure(f"{name}: CRC-32 mismatch (the member's bytes were changed)")
        members[name] = body
        expected_offset = start + csize
    if pos != cd_offset + cd_size:
        raise Failure("zip central directory: its size does not match its entries")
    if expected_offset != cd_offset:
        raise Failure("zip: bytes between the last member and the central directory")
    return members


# ---------------------------------------------------------------------------------------
# The bundle
# ---------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.summary: dict[str, object] = {}
        self.witnessed = 0
        self.signers: list[str] = []

    def fail(self, message: str) -> None:
        self.failures.append(message)


def _text(members: dict[str, bytes], name: str) -> str:
    try:
        return members[name].decode("utf-8")
    except KeyError:
        raise Failure(f"{name}: missing from the bundle") from None
    except UnicodeDecodeError:
        raise Failure(f"{name}: not UTF-8 text") from None


def _seq_of(name: str) -> int:
    return int(name.split("/", 1)[1].split(".", 1)[0])


def check_manifest(members: dict[str, bytes], report: Report) -> dict[str, object]:
    try:
        manifest = json.loads(_text(members, "manifest.json"))
    except ValueError as exc:
        raise Failure(f"manifest.json: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Failure(f"manifest.json: not an {FORMAT} manifest")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise Failure("manifest.json: 'files' is not a list of {path, sha256, size}")
    listed = {f["path"]: f for f in files}
    present = set(members) - {"manifest.json"}
    for path in sorted(present - set(listed)):
        report.fail(f"{path}: in the zip but not listed in manifest.json")
    for path in sorted(set(listed) - present):
        report.fail(f"{path}: listed in manifest.json but missing from the zip")
    if len(listed) != len(files):
        report.fail("manifest.json: a file is listed twice")
    for path in sorted(present & set(listed)):
        body = members[path]
        if listed[path].get("sha256") != hashlib.sha256(body).hexdigest() \
                or listed[path].get("size") != len(body):
            report.fail(f"{path}: SHA-256 or size differs from manifest.json")
    return manifest


def verify_bundle(data: bytes, log_keys: list[VerifierKey] | None = None,
                  witness_keys: list[VerifierKey] | None = None,
                  min_witnesses: int = 0) -> Report:
    """Every check on the bundle's bytes; the report lists each failure by part."""
    report = Report()
    try:
        _verify(data, log_keys, witness_keys, min_witnesses, report)
    except Failure as exc:
        report.fail(str(exc))
    return report


def _verify(data: bytes, log_keys: list[VerifierKey] | None,
            witness_keys: list[VerifierKey] | None, min_witnesses: int, report: Report) -> None:
    members = read_zip(data)
    manifest = check_manifest(members, report)

    if log_keys is None:
        log_keys = read_keys(_text(members, "keys/log.vkey"), ALG_ED25519, "keys/log.vkey")
        report.notes.append("the log key was taken from the bundle (keys/log.vkey): this "
                            "proves integrity relative to the bundle's own key only; pass "
                            "--key with the log's key obtained out of band")
    if witness_keys is None:
        witness_keys = read_keys(members.get("keys/witnesses.vkeys", b"").decode(
            "utf-8", "replace"), ALG_COSIGNATURE_V1, "keys/witnesses.vkeys")
        if witness_keys:
            report.notes.append("witness keys were taken from the bundle "
                                "(keys/witnesses.vkeys); pass --witness to use your own")

    note = _text(members, "checkpoint.txt")
    text, verified = open_note(note, log_keys, "checkpoint.txt")
    origin, size, root = parse_checkpoint(text, "checkpoint.txt")
    if all(k.name != origin for k in verified):
        report.fail(f"checkpoint.txt: signed, but not under the log's origin {origin!r}")
    _, sigs = split_note(note, "checkpoint.txt")
    witness_keys = distinct(witness_keys)
    cosigned = cosignatures(text, sigs, witness_keys, "checkpoint.txt")
    if len(cosigned) < min_witnesses:
        given = ", ".join(repr(w) for w in witness_keys) or "none given"
        report.fail(f"checkpoint.txt: {len(cosigned)} valid witness cosignature(s), "
                    f"{min_witnesses} required (witnesses: {given})")

    cp = manifest.get("checkpoint")
    if not isinstance(cp, dict) or cp.get("size") != size \
            or cp.get("root") != base64.b64encode(root).decode() \
            or manifest.get("origin") != origin:
        report.fail("manifest.json: its origin or checkpoint size/root differ from "
                    "checkpoint.txt")

    entries = {_seq_of(n): members[n] for n in members if n.startswith("entries/")}
    proofs = {_seq_of(n): n for n in members if n.startswith("proofs/")}
    raws = {_seq_of(n): n for n in members if n.startswith("raw/")}
    purged_list = manifest.get("purged", [])
    purged: dict[int, bytes] = {}
    for item in purged_list if isinstance(purged_list, list) else [None]:
        if not isinstance(item, dict) or not isinstance(item.get("seq"), int) \
                or not isinstance(item.get("leaf_hash"), str):
            report.fail("manifest.json: 'purged' is not a list of {seq, leaf_hash}")
            break
        purged[item["seq"]] = b64decode(item["leaf_hash"], f"manifest.json: purged seq "
                                                           f"{item['seq']} leaf hash")
    seqs = manifest.get("seqs")
    if seqs != sorted(set(entries) | set(purged)):
        report.fail("manifest.json: 'seqs' does not list exactly the bundle's entries and "
                    "purged seqs")
    for seq in sorted(set(entries) & set(purged)):
        report.fail(f"entries/{seq}.json: listed as purged in manifest.json too")

    records: dict[int, dict[str, object]] = {}
    for seq, body in sorted(entries.items()):
        name = f"entries/{seq}.json"
        try:
            record = json.loads(body)
        except ValueError:
            report.fail(f"{name}: not JSON")
            record = None
        if isinstance(record, dict):
            records[seq] = record
            if record.get("seq") != seq:
                report.fail(f"{name}: its seq field is {record.get('seq')!r}, not {seq}")
        elif record is not None:
            report.fail(f"{name}: not a JSON object")

    for seq in sorted(set(entries) | set(purged)):
        leaf = leaf_hash(entries[seq]) if seq in entries else purged[seq]
        where = proofs.get(seq)
        if where is None:
            report.fail(f"proofs/{seq}.proof: missing (every event needs its proof)")
            continue
        try:
            index, hashes, proof_note = parse_proof(_text(members, where), where)
        except Failure as exc:
            report.fail(str(exc))
            continue
        if index != seq:
            report.fail(f"{where}: proves index {index}, not seq {seq}")
        elif proof_note != note:
            report.fail(f"{where}: its checkpoint differs from checkpoint.txt")
        elif root_from_inclusion_proof(index, size, leaf, hashes) != root:
            what = f"entries/{seq}.json" if seq in entries else f"purged seq {seq}'s leaf hash"
            report.fail(f"{where}: inclusion proof does not lead to the checkpoint root "
                        f"(for {what})")
    for seq in sorted(set(proofs) - set(entries) - set(purged)):
        report.fail(f"{proofs[seq]}: a proof for no entry of the bundle")

    listed_unavailable = manifest.get("raw_unavailable")
    unavailable = {item.get("seq") for item in listed_unavailable if isinstance(item, dict)} \
        if isinstance(listed_unavailable, list) else set()
    for seq, record in sorted(records.items()):
        raw = record.get("raw")
        if isinstance(raw, dict) and seq not in raws and seq not in unavailable:
            report.fail(f"entries/{seq}.json: names a raw original, but raw/{seq}.* is missing")
    for seq, where in sorted(raws.items()):
        raw = records.get(seq, {}).get("raw")
        if not isinstance(raw, dict) or not isinstance(raw.get("sha256"), str):
            report.fail(f"{where}: no entry of the bundle names this raw original")
        elif hashlib.sha256(members[where]).hexdigest() != raw["sha256"]:
            report.fail(f"{where}: SHA-256 differs from the digest in entries/{seq}.json")
        elif raw.get("size", len(members[where])) != len(members[where]):
            report.fail(f"{where}: size differs from the size in entries/{seq}.json")

    if unavailable:
        report.notes.append(f"{len(unavailable)} raw original(s) not in the bundle "
                            "(erased or not kept; see manifest.json raw_unavailable)")
    if purged:
        report.notes.append(f"{len(purged)} purged event(s): proven present by leaf hash "
                            "only, their contents are gone (retention)")
    report.witnessed = len(cosigned)
    report.signers = [repr(k) for k in verified]
    report.summary = {
        "origin": origin, "tree_size": size, "root": base64.b64encode(root).decode(),
        "entries": len(entries), "purged": len(purged), "raw": len(raws),
        "log_keys": [repr(k) for k in verified],
        "witnesses": [{"key": repr(w), "time": t} for w, t in cosigned],
        "tenant": manifest.get("tenant"), "query": manifest.get("query"),
    }


def distinct(keys: list[VerifierKey]) -> list[VerifierKey]:
    """The keys without repeats of one public key: a witness given twice (or under two
    names) still counts once towards --min-witnesses."""
    out: list[VerifierKey] = []
    for k in keys:
        if all(k.public_key != seen.public_key for seen in out):
            out.append(k)
    return out


def _load_keys(values: list[str], alg: int, what: str) -> list[VerifierKey]:
    """Each value is a vkey or a file of vkeys, one a line."""
    out: list[VerifierKey] = []
    for value in values:
        if re.fullmatch(r"[^+\s]+\+[0-9a-fA-F]{8}\+\S+", value.strip()):
            out.append(VerifierKey(value, alg, what))
            continue
        try:
            with open(value, encoding="utf-8") as f:
                out.extend(read_keys(f.read(), alg, value))
        except OSError as exc:
            raise Failure(f"{what} {value}: {exc.strerror}") from None
    return distinct(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an auditkeep evidence bundle.")
    parser.add_argument("bundle", help="the evidence .zip")
    parser.add_argument("--key", action="append", default=None, metavar="VKEY",
                        help="the log's verifier key (or a file of them), obtained out of band")
    parser.add_argument("--witness", action="append", default=None, metavar="VKEY",
                        help="a witness's tlog-cosignature verifier key (type 0x04) or a file "
                             "of them; repeatable")
    parser.add_argument("--min-witnesses", type=int, default=0, metavar="K",
                        help="require valid cosignatures from at least K of the witnesses")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.min_witnesses < 0:
        parser.error("--min-witnesses must be 0 or more")
    try:
        log_keys = _load_keys(args.key, ALG_ED25519, "--key") if args.key else None
        witnesses = _load_keys(args.witness, ALG_COSIGNATURE_V1, "--witness") \
            if args.witness else None
        if args.min_witnesses and witnesses is not None and args.min_witnesses > len(witnesses):
            parser.error(f"--min-witnesses {args.min_witnesses} exceeds the "
                         f"{len(witnesses)} witness key(s) given")
        with open(args.bundle, "rb") as f:
            data = f.read()
    except Failure as exc:
        print(f"verify_evidence: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"verify_evidence: {args.bundle}: {exc.strerror}", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = verify_bundle(data, log_keys, witnesses, args.min_witnesses)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"ok": not report.failures, "failures": report.failures,
                          "notes": report.notes, **report.summary,
                          "seconds": round(elapsed, 3)}, indent=2))
    elif report.failures:
        for message in report.failures:
            print(f"FAIL {message}")
        print(f"{args.bundle}: {len(report.failures)} check(s) failed")
    else:
        s = report.summary
        signers = ", ".join(report.signers)
        print(f"OK {args.bundle}: {s['entries']} entries and {s['purged']} purged event(s) "
              f"included in {s['origin']} at tree size {s['tree_size']}; {s['raw']} raw "
              f"original(s) match; checkpoint signed by {signers}; {report.witnessed} "
              f"witness cosignature(s) verified ({elapsed:.2f}s)")
        for message in report.notes:
            print(f"note: {message}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
