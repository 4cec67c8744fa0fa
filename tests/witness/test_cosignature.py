"""cosignature/v1 lines: key ids, the signed message and verification, cross-checked
against hashlib and cryptography directly and against the C2SP example line."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditkeep.errors import NoteError
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint, with_cosignatures
from auditkeep.log.note import Signer, split_note
from auditkeep.witness.cosignature import WitnessSigner, WitnessVerifier, count_cosignatures

SEED = bytes(range(32))
TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
# The cosignature line of the example in c2sp.org/tlog-cosignature.
SPEC_LINE = ("\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEh"
             "ZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==")


def _signer(name: str = "witness.example/w1") -> WitnessSigner:
    return WitnessSigner(name, Ed25519PrivateKey.from_private_bytes(SEED))


def _log_note() -> str:
    log = Signer("example.com/behind-the-sofa", Ed25519PrivateKey.from_private_bytes(b"\1" * 32))
    return sign_checkpoint(Checkpoint.parse(TEXT), log)


class TestKeys:
    def test_key_id_is_sha256_of_name_newline_0x04_key(self) -> None:
        w = _signer()
        want = hashlib.sha256(b"witness.example/w1\n\x04" + w.public_key).digest()[:4]
        assert w.key_id == want
        # Not the note-signature (0x01) id of the same key and name.
        assert w.key_id != hashlib.sha256(b"witness.example/w1\n\x01" + w.public_key).digest()[:4]

    def test_vkey_and_skey_round_trip(self) -> None:
        w = _signer()
        name, hex_id, key = w.vkey.split("+", 2)
        assert (name, hex_id) == ("witness.example/w1", w.key_id.hex())
        assert base64.b64decode(key) == b"\x04" + w.public_key
        assert WitnessVerifier.parse(w.vkey) == w.verifier()
        again = WitnessSigner.parse(w.to_string())
        assert again.vkey == w.vkey
        assert base64.b64decode(w.to_string().split("+", 4)[4]) == b"\x04" + SEED
        assert "PRIVATE" not in repr(w)

    @pytest.mark.parametrize(("part", "message"), [
        ("shape", "expected '<name>"),
        ("id", "does not match"),
        ("alg", "not 0x04"),
    ])
    def test_bad_vkeys_are_refused(self, part: str, message: str) -> None:
        name, hex_id, key = _signer().vkey.split("+", 2)
        if part == "shape":
            vkey = f"{name}-{hex_id}"
        elif part == "id":
            vkey = f"{name}+00000000+{key}"
        else:
            vkey = f"{name}+{hex_id}+" + base64.b64encode(
                b"\x01" + base64.b64decode(key)[1:]).decode()
        with pytest.raises(NoteError, match=message):
            WitnessVerifier.parse(vkey)

    def test_a_log_vkey_is_not_a_witness_vkey(self) -> None:
        log = Signer("example.com/log", Ed25519PrivateKey.from_private_bytes(SEED))
        with pytest.raises(NoteError, match="0x01 is not 0x04"):
            WitnessVerifier.parse(log.verifier().to_string())

    def test_skey_errors_never_quote_the_seed(self) -> None:
        skey = _signer().to_string()
        bad = skey[:-6] + "!!!!=="
        with pytest.raises(NoteError) as e:
            WitnessSigner.parse(bad)
        assert skey.split("+", 4)[4][:20] not in str(e.value)


class TestCosign:
    def test_line_is_key_id_timestamp_and_ed25519_over_the_message(self) -> None:
        w = _signer()
        line = w.cosign(TEXT, 1679315147)
        assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
        raw = base64.b64decode(line.split(" ")[2])
        assert raw[:4] == w.key_id
        assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
        msg = b"cosignature/v1\ntime 1679315147\n" + TEXT.encode()
        # Ed25519 is deterministic: the same bytes as signing directly.
        assert raw[12:] == Ed25519PrivateKey.from_private_bytes(SEED).sign(msg)

    def test_verify_returns_the_timestamp(self) -> None:
        w = _signer()
        note = with_cosignatures(_log_note(), [w.cosign(TEXT, 1700000000)])
        assert w.verifier().verify(note) == 1700000000

    def test_verify_refuses_another_checkpoint_or_a_tampered_time(self) -> None:
        w = _signer()
        line = w.cosign(TEXT, 1700000000)
        other = TEXT.replace("20852163", "20852164")
        assert w.verifier().verify(other + "\n" + line) is None
        raw = bytearray(base64.b64decode(line.split(" ")[2]))
        raw[11] ^= 1
        forged = f"\u2014 witness.example/w1 {base64.b64encode(bytes(raw)).decode()}\n"
        assert w.verifier().verify(with_cosignatures(_log_note(), [forged])) is None

    def test_cosign_refuses_a_signed_note_as_text(self) -> None:
        with pytest.raises(NoteError):
            _signer().cosign(_log_note(), 1)

    def test_timestamp_bounds(self) -> None:
        with pytest.raises(NoteError, match="2\\^63"):
            _signer().cosign(TEXT, 2**63)
        with pytest.raises(NoteError, match="not an integer"):
            _signer().cosign(TEXT, True)

    def test_the_spec_example_line_parses_as_id_and_timestamp(self) -> None:
        _, sigs = split_note(TEXT + "\n" + SPEC_LINE + "\n")
        (sig,) = sigs
        assert sig.name == "witness.example.com/w1"
        assert len(sig.sig) == 72  # u64 timestamp + 64-byte Ed25519 signature
        assert struct.unpack(">Q", sig.sig[:8]) == (1679315147,)


class TestCount:
    def test_counts_distinct_valid_witnesses_only(self) -> None:
        a, b = _signer("w.example/a"), WitnessSigner.generate("w.example/b")
        c = WitnessSigner.generate("w.example/c")
        stranger = WitnessSigner.generate("w.example/a")  # same name, other key
        note = with_cosignatures(_log_note(), [
            a.cosign(TEXT, 1), a.cosign(TEXT, 2), b.cosign(TEXT, 3), stranger.cosign(TEXT, 4)])
        assert count_cosignatures(note, [a.verifier(), b.verifier(), c.verifier()]) == {
            "w.example/a", "w.example/b"}
        assert count_cosignatures(note, [stranger.verifier()]) == {"w.example/a"}
        assert count_cosignatures(_log_note(), [a.verifier()]) == set()
