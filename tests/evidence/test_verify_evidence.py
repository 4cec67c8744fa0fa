"""tools/verify_evidence.py's hand-written parts against published vectors and against
the libraries the rest of auditkeep uses: Ed25519 (RFC 8032, `cryptography`), RFC 6962
trees, C2SP signed notes, checkpoints, tlog-proofs and tlog-cosignature/v1."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auditkeep.evidence import tlog_proof
from auditkeep.witness.cosignature import WitnessSigner, WitnessVerifier, count_cosignatures
from tests.evidence.verifier import V

DATA = Path(__file__).parent.parent / "data"
NOTES: dict[str, Any] = json.loads((DATA / "signed-note" / "signed_note_vectors.json")
                                   .read_text(encoding="utf-8"))
TREES: dict[str, Any] = json.loads((DATA / "rfc6962" / "rfc6962_vectors.json").read_text())

# RFC 8032 §7.1, TEST 1-3: (secret key, public key, message, signature), hex.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]
L = 2**252 + 27742317777372353535851937790883648493


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class TestEd25519:
    @pytest.mark.parametrize(("secret", "public", "msg", "sig"), RFC8032)
    def test_rfc8032_vectors_verify_and_any_changed_bit_does_not(
            self, secret: str, public: str, msg: str, sig: str) -> None:
        pk, m, s = bytes.fromhex(public), bytes.fromhex(msg), bytes.fromhex(sig)
        assert _public(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))) == pk
        assert V.ed25519_verify(pk, m, s)
        for i in (0, 31, 32, 63):
            bad = bytearray(s)
            bad[i] ^= 0x04
            assert not V.ed25519_verify(pk, m, bytes(bad))
        assert not V.ed25519_verify(pk, m + b"x", s)

    def test_signatures_made_by_cryptography_verify(self) -> None:
        for i in range(12):
            key = Ed25519PrivateKey.from_private_bytes(bytes([i + 7]) * 32)
            msg = b"checkpoint %d\n" % i * (i + 1)
            sig = key.sign(msg)
            assert V.ed25519_verify(_public(key), msg, sig)
            other = _public(Ed25519PrivateKey.from_private_bytes(bytes([i + 8]) * 32))
            assert not V.ed25519_verify(other, msg, sig)

    def test_non_canonical_s_is_rejected(self) -> None:
        _, public, msg, sig = RFC8032[0]
        s = int.from_bytes(bytes.fromhex(sig)[32:], "little")
        malleated = bytes.fromhex(sig)[:32] + (s + L).to_bytes(32, "little")
        assert not V.ed25519_verify(bytes.fromhex(public), bytes.fromhex(msg), malleated)

    def test_undecodable_points_are_rejected(self) -> None:
        _, public, msg, sig = RFC8032[1]
        p = 2**255 - 19
        non_canonical_y = (p + 1).to_bytes(32, "little")  # y >= p
        assert not V.ed25519_verify(non_canonical_y, bytes.fromhex(msg), bytes.fromhex(sig))
        not_on_curve = (2).to_bytes(32, "little")  # y = 2 has no x
        assert V._decode_point(not_on_curve) is None
        assert not V.ed25519_verify(bytes.fromhex(public), b"", bytes(64))


class TestMerkle:
    @pytest.mark.parametrize("vector", TREES["hasher_vectors"], ids=lambda v: v["desc"])
    def test_hashes_match_rfc6962_vectors(self, vector: dict[str, Any]) -> None:
        if vector["kind"] == "leaf":
            assert V.leaf_hash(bytes.fromhex(vector["input_hex"])).hex() == vector["want"]
        elif vector["kind"] == "node":
            got = V.node_hash(bytes.fromhex(vector["left_hex"]), bytes.fromhex(
                vector["right_hex"]))
            assert got.hex() == vector["want"]

    @pytest.mark.parametrize("vector", TREES["inclusion_proofs"] + TREES["inclusion_probes"],
                             ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}")
    def test_inclusion_proofs_and_probes(self, vector: dict[str, Any]) -> None:
        root = V.root_from_inclusion_proof(
            vector["leaf_index"], vector["tree_size"], bytes.fromhex(vector["leaf_hash"]),
            [bytes.fromhex(h) for h in vector["proof"]])
        assert (root == bytes.fromhex(vector["root"])) is vector["want_valid"]


def _note_text(vector: dict[str, Any]) -> str | None:
    if "note_b64" in vector:
        try:
            return base64.b64decode(vector["note_b64"]).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(vector["note"])


class TestSignedNotes:
    @pytest.mark.parametrize("vector", NOTES["notes"], ids=lambda v: v["id"])
    def test_the_signed_note_corpus(self, vector: dict[str, Any]) -> None:
        note = _note_text(vector)
        expect = vector["expect"]
        keys = [V.VerifierKey(k, V.ALG_ED25519, "test") for k in vector["verifier_keys"]]
        if not expect["ok"]:
            if note is not None:  # else: not UTF-8, which a note must be
                with pytest.raises(V.Failure):
                    V.open_note(note, keys, "note")
            return
        assert note is not None
        text, verified = V.open_note(note, keys, "note")
        assert [repr(k) for k in verified] == expect["verified"]
        if "text" in expect:
            assert text == expect["text"]
        if "checkpoint" in expect:
            origin, size, root = V.parse_checkpoint(text, "note")
            want = expect["checkpoint"]
            assert (origin, size, base64.b64encode(root).decode()) == (
                want["origin"], want["size"], want["root_b64"])

    @pytest.mark.parametrize("vector", NOTES["bad_verifier_keys"], ids=lambda v: v["why"])
    def test_bad_verifier_keys_are_refused(self, vector: dict[str, Any]) -> None:
        with pytest.raises(V.Failure):
            V.VerifierKey(vector["vkey"], V.ALG_ED25519, "test")

    def test_the_c2sp_cosigned_example_parses_with_a_timestamped_cosignature(self) -> None:
        example = next(v for v in NOTES["parse_only"]
                       if v["id"] == "c2sp-cosigned-checkpoint-example")
        text, sigs = V.split_note(example["note"], "note")
        assert V.parse_checkpoint(text, "note")[:2] == ("example.com/behind-the-sofa", 20852163)
        assert [len(s) for _, _, s in sigs] == [64, 72]


class TestCosignatures:
    TEXT = "example.com/log\n42\n" + base64.b64encode(bytes(range(32))).decode() + "\n"

    def test_auditkeep_witness_cosignatures_verify(self) -> None:
        w = WitnessSigner("w.example/1", Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32))
        line = w.cosign(self.TEXT, 1_700_000_000)
        _, sigs = V.split_note(self.TEXT + "\n" + line, "note")
        key = V.VerifierKey(w.vkey, V.ALG_COSIGNATURE_V1, "test")
        assert [(repr(k), t) for k, t in V.cosignatures(self.TEXT, sigs, [key], "n")] == [
            (repr(key), 1_700_000_000)]

    def test_a_cosignature_made_by_hand_from_the_spec_verifies_in_both(self) -> None:
        """tlog-cosignature/v1: key id over 0x04, 8-byte big-endian time, then Ed25519
        over "cosignature/v1\\ntime <t>\\n" and the checkpoint body."""
        key = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
        name, stamp = "witness.example/hand", 1_712_345_678
        kid = V.key_id(name, 0x04, _public(key))
        msg = b"cosignature/v1\ntime %d\n" % stamp + self.TEXT.encode()
        raw = kid + struct.pack(">Q", stamp) + key.sign(msg)
        line = f"\u2014 {name} {base64.b64encode(raw).decode()}\n"
        vkey = f"{name}+{kid.hex()}+" + base64.b64encode(b"\x04" + _public(key)).decode()
        witness = V.VerifierKey(vkey, V.ALG_COSIGNATURE_V1, "test")
        _, sigs = V.split_note(self.TEXT + "\n" + line, "note")
        assert len(V.cosignatures(self.TEXT, sigs, [witness], "n")) == 1
        assert count_cosignatures(self.TEXT + "\n" + line,
                                  [WitnessVerifier.parse(vkey)]) == {name}

    def test_a_known_witness_with_a_bad_cosignature_fails(self) -> None:
        w = WitnessSigner("w.example/2", Ed25519PrivateKey.from_private_bytes(bytes([4]) * 32))
        other_text = self.TEXT.replace("42", "43")
        _, sigs = V.split_note(self.TEXT + "\n" + w.cosign(other_text, 5), "note")
        with pytest.raises(V.Failure, match="does not verify"):
            V.cosignatures(self.TEXT, sigs, [V.VerifierKey(w.vkey, 0x04, "t")], "n")

    def test_a_log_key_is_not_a_witness_key(self) -> None:
        with pytest.raises(V.Failure, match="type 0x04"):
            V.VerifierKey(NOTES["verifier_keys"][0]["vkey"], V.ALG_COSIGNATURE_V1, "--witness")


class TestTlogProof:
    def test_what_auditkeep_writes_parses_back(self) -> None:
        hashes = [bytes([i]) * 32 for i in range(3)]
        note = "o\n5\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 o AAAAAAA=\n"
        assert V.parse_proof(tlog_proof(4, hashes, note), "p") == (4, hashes, note)
        assert V.parse_proof(tlog_proof(0, [], note), "p") == (0, [], note)

    def test_the_c2sp_example_shape_with_extra_data_parses(self) -> None:
        h = base64.b64encode(bytes(32)).decode()
        text = (f"c2sp.org/tlog-proof@v1\nextra YWdl\nindex 73894\n{h}\n{h}\n\n"
                "example.com/fancylog\n109482\n" + h + "\n\n\u2014 x AAAAAAA=\n")
        index, hashes, note = V.parse_proof(text, "p")
        assert index == 73894 and len(hashes) == 2 and note.startswith("example.com/")

    @pytest.mark.parametrize("bad", ["c2sp.org/tlog-proof@v2\nindex 1\n\nx",
                                     "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
                                     "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx",
                                     "c2sp.org/tlog-proof@v1\nindex 1"])
    def test_malformed_proofs_are_refused(self, bad: str) -> None:
        with pytest.raises(V.Failure):
            V.parse_proof(bad, "p")


def test_a_witness_given_twice_counts_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = WitnessSigner("w.example/4", Ed25519PrivateKey.from_private_bytes(bytes([6]) * 32))
    renamed = WitnessSigner("w.example/alias", Ed25519PrivateKey.from_private_bytes(
        bytes([6]) * 32))
    with pytest.raises(SystemExit) as exc:
        V.main([str(tmp_path / "x.zip"), "--witness", w.vkey, "--witness", w.vkey,
                "--witness", renamed.vkey, "--min-witnesses", "2"])
    assert exc.value.code == 2
    assert "exceeds the 1 witness key" in capsys.readouterr().err


def test_more_witnesses_required_than_given_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = WitnessSigner("w.example/3", Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32))
    with pytest.raises(SystemExit) as exc:
        V.main([str(tmp_path / "x.zip"), "--witness", w.vkey, "--min-witnesses", "2"])
    assert exc.value.code == 2
    assert "exceeds the 1 witness key" in capsys.readouterr().err


def test_the_verifier_imports_nothing_but_the_standard_library() -> None:
    import ast
    import sys

    from tests.evidence.verifier import TOOL
    tree = ast.parse(TOOL.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
