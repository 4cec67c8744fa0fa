"""C2SP tlog-checkpoints: the vector corpus, strict parsing, signing and opening."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from auditkeep.errors import NoteError
from auditkeep.log.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from auditkeep.log.note import Signer, Verifier, open_note

VECTOR_FILE = Path(__file__).parent.parent / "data" / "signed-note" / "signed_note_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
CHECKPOINT_NOTES = [v for v in VECTORS["notes"] if "checkpoint" in v["expect"]]
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
ROOT_B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
ORIGIN = "example.com/log42"
LOG = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))


def _text_of(note: str) -> str:
    return note[: note.rindex("\n\n") + 1]


class TestCheckpointVectors:
    @pytest.mark.parametrize("vector", CHECKPOINT_NOTES, ids=lambda v: v["id"])
    def test_signed_checkpoints_open_to_origin_size_and_root(self, vector: dict[str, Any]) -> None:
        want = vector["expect"]["checkpoint"]
        verifiers = [Verifier.parse(k) for k in vector["verifier_keys"]]
        cp, note = open_checkpoint(vector["note"], verifiers, origin=want["origin"])
        assert cp == Checkpoint(want["origin"], want["size"], base64.b64decode(want["root_b64"]))
        assert [f"{s.name}+{s.key_id.hex()}" for s in note.verified] == vector["expect"]["verified"]
        assert cp.to_text() == note.text

    @pytest.mark.parametrize("vector", CHECKPOINT_NOTES, ids=lambda v: v["id"])
    def test_signed_checkpoints_with_another_origin_are_rejected(
        self, vector: dict[str, Any]
    ) -> None:
        verifiers = [Verifier.parse(k) for k in vector["verifier_keys"]]
        with pytest.raises(NoteError, match=r"origin 'go\.sum database tree' is not the expected"):
            open_checkpoint(vector["note"], verifiers, "Go rocks but I might have the wrong ID")

    @pytest.mark.parametrize("vector", VECTORS["parse_only"], ids=lambda v: v["id"])
    def test_keyless_examples_parse(self, vector: dict[str, Any]) -> None:
        cp = Checkpoint.parse(_text_of(vector["note"]))
        assert cp == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)

    def test_benchmark_checkpoint_with_cosignatures_parses(self) -> None:
        [vector] = [v for v in VECTORS["notes"] if v["id"] == "sumdb-plus-benchmark-cosigs"]
        verifiers = [Verifier.parse(k) for k in vector["verifier_keys"]]
        cp, note = open_checkpoint(vector["note"], verifiers, "go.sum database tree")
        assert cp.size == 6476701
        assert len(note.verified) == 4


class TestCheckpointText:
    def test_to_text_is_origin_size_root_then_extensions(self) -> None:
        cp = Checkpoint(ORIGIN, 20852163, ROOT, ("ext one", "ext two"))
        assert cp.to_text() == f"{ORIGIN}\n20852163\n{ROOT_B64}\next one\next two\n"

    def test_empty_tree_has_size_zero(self) -> None:
        assert Checkpoint.parse(f"{ORIGIN}\n0\n{ROOT_B64}\n").size == 0

    def test_largest_size_is_two_to_the_64_minus_one(self) -> None:
        text = f"{ORIGIN}\n{MAX_TREE_SIZE}\n{ROOT_B64}\n"
        assert Checkpoint.parse(text).size == 2**64 - 1

    def test_origin_may_contain_spaces(self) -> None:
        assert Checkpoint.parse(f"go.sum database tree\n1\n{ROOT_B64}\n").origin == (
            "go.sum database tree"
        )

    def test_extension_lines_are_kept_in_order(self) -> None:
        cp = Checkpoint.parse(f"{ORIGIN}\n1\n{ROOT_B64}\nb\na\n")
        assert cp.extensions == ("b", "a")

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            (f"{ORIGIN}\n1\n{ROOT_B64}", "checkpoint text does not end with a newline"),
            (f"{ORIGIN}\n1\n", "checkpoint has 2 line(s), expected at least 3"),
            ("\n", "checkpoint has 1 line(s)"),
            (f"\n1\n{ROOT_B64}\n", "checkpoint line 1: origin is empty"),
            (f"{ORIGIN}\n01\n{ROOT_B64}\n", "checkpoint line 2: tree size '01' has a leading zero"),
            (f"{ORIGIN}\n00\n{ROOT_B64}\n", "tree size '00' has a leading zero"),
            (f"{ORIGIN}\n\n{ROOT_B64}\n", "tree size '' is not a decimal number"),
            (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "tree size '-1' is not a decimal number"),
            (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "tree size '+1' is not a decimal number"),
            (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "is not a decimal number"),
            (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "tree size '1_000' is not a decimal number"),
            (f"{ORIGIN}\n0x10\n{ROOT_B64}\n", "is not a decimal number"),
            (f"{ORIGIN}\n\u0661\n{ROOT_B64}\n", "is not a decimal number"),  # Arabic-Indic 1
            (f"{ORIGIN}\n\uff11\n{ROOT_B64}\n", "is not a decimal number"),  # fullwidth 1
            (f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", "tree size '18446744073709551616' exceeds"),
            (f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n", "exceeds 2^64-1"),
            (f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n", "checkpoint line 3: root hash is not standard"),
            (f"{ORIGIN}\n1\n{ROOT_B64[:-2]}\n", "root hash is not standard padded base64"),
            (f"{ORIGIN}\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", "not standard"),
            (f"{ORIGIN}\n1\n \n", "root hash is not standard padded base64"),
            (f"{ORIGIN}\n1\n{ROOT_B64[:-4]}\n", "root hash is 30 bytes, expected 32"),
            (f"{ORIGIN}\n1\n\n", "root hash is 0 bytes, expected 32"),
            (
                f"{ORIGIN}\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
                "root hash 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=' is not canonical",
            ),
            (f"{ORIGIN}\n1\n{ROOT_B64}\n\n", "checkpoint line 4: extension line is empty"),
            (f"{ORIGIN}\n1\n{ROOT_B64}\na\n\nb\n", "checkpoint line 5: extension line is empty"),
            (
                f"{ORIGIN}\r\n1\n{ROOT_B64}\n",
                "checkpoint line 1: contains the control character U+000D",
            ),
            (f"{ORIGIN}\n1\n{ROOT_B64}\na\tb\n", "checkpoint line 4: contains the control"),
            (f"a\udc80\n1\n{ROOT_B64}\n", "checkpoint line 1: contains a lone surrogate"),
        ],
    )
    def test_parse_rejects_saying_which_line_is_wrong(self, text: str, problem: str) -> None:
        with pytest.raises(NoteError, match=re.escape(problem)):
            Checkpoint.parse(text)


class TestCheckpointFields:
    @pytest.mark.parametrize(
        ("kwargs", "problem"),
        [
            ({"origin": ""}, "checkpoint origin is empty"),
            ({"origin": "a\nb"}, "control character U+000A"),
            ({"size": -1}, "tree size -1 is outside 0..2^64-1"),
            ({"size": 2**64}, "is outside 0..2^64-1"),
            ({"size": True}, "tree size True is not an integer"),
            ({"size": 1.0}, "is not an integer"),
            ({"root": bytes(31)}, "root hash is 31 bytes, expected 32"),
            ({"root": "x" * 32}, "root hash is a str, not bytes"),
            ({"extensions": ("",)}, "checkpoint extension 0 is empty"),
            ({"extensions": ("ok", "a\nb")}, "checkpoint extension 1 'a\\nb' contains"),
        ],
    )
    def test_constructor_rejects_what_could_not_be_written(
        self, kwargs: dict[str, Any], problem: str
    ) -> None:
        fields: dict[str, Any] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
        with pytest.raises(NoteError, match=re.escape(problem)):
            Checkpoint(**fields)

    def test_extensions_given_as_a_list_become_a_tuple(self) -> None:
        cp = Checkpoint(ORIGIN, 1, ROOT, ["a"])  # type: ignore[arg-type]
        assert cp.extensions == ("a",)
        assert hash(cp) == hash(Checkpoint(ORIGIN, 1, ROOT, ("a",)))


class TestSignAndOpen:
    def test_signed_checkpoint_opens_to_the_same_checkpoint(self) -> None:
        cp = Checkpoint(ORIGIN, 7, ROOT)
        note = sign_checkpoint(cp, LOG)
        assert note.startswith(cp.to_text() + "\n— example.com/log42 ")
        opened, signed = open_checkpoint(note, [LOG.verifier()], origin=ORIGIN)
        assert opened == cp
        assert [s.key_id for s in signed.verified] == [LOG.key_id]

    def test_origin_is_optional(self) -> None:
        cp = Checkpoint(ORIGIN, 7, ROOT, ("ext",))
        assert open_checkpoint(sign_checkpoint(cp, LOG), [LOG.verifier()])[0] == cp

    def test_bytes_note_opens(self) -> None:
        cp = Checkpoint(ORIGIN, 7, ROOT)
        assert open_checkpoint(sign_checkpoint(cp, LOG).encode(), [LOG.verifier()])[0] == cp

    def test_wrong_origin_is_rejected(self) -> None:
        note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), LOG)
        with pytest.raises(
            NoteError,
            match=re.escape(
                "checkpoint line 1: origin 'example.com/log42' is not the expected "
                "'example.com/log43'"
            ),
        ):
            open_checkpoint(note, [LOG.verifier()], origin="example.com/log43")

    def test_checkpoint_signed_by_another_key_is_rejected(self) -> None:
        note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), OTHER)
        with pytest.raises(NoteError, match="no verifiable signatures"):
            open_checkpoint(note, [LOG.verifier()], origin=ORIGIN)

    def test_per_log_key_names_do_not_verify_each_other(self) -> None:
        # One key signs every log under the log's origin, so each log has its own key id.
        log_a, log_b = LOG.with_name("example.com/a"), LOG.with_name("example.com/b")
        note = sign_checkpoint(Checkpoint("example.com/a", 1, ROOT), log_a)
        with pytest.raises(NoteError, match="no verifiable signatures"):
            open_checkpoint(note, [log_b.verifier()])
        assert open_checkpoint(note, [log_a.verifier()], "example.com/a")[0].size == 1

    @pytest.mark.parametrize(
        ("old", "new"), [("\n7\n", "\n8\n"), ("\n7\n", "\n07\n"), ("log42", "log43")]
    )
    def test_edited_checkpoint_text_is_rejected(self, old: str, new: str) -> None:
        note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), LOG).replace(old, new, 1)
        with pytest.raises(NoteError, match="invalid signature"):
            open_checkpoint(note, [LOG.verifier()])

    def test_signed_note_that_is_not_a_checkpoint_is_rejected_after_verifying(self) -> None:
        from auditkeep.log.note import sign_note

        note = sign_note(f"{ORIGIN}\n07\n{ROOT_B64}\n", [LOG])
        assert open_note(note, [LOG.verifier()]).text.startswith(ORIGIN)
        with pytest.raises(NoteError, match="tree size '07' has a leading zero"):
            open_checkpoint(note, [LOG.verifier()])


line_chars = st.characters(codec="utf-8", min_codepoint=0x20)
checkpoints = st.builds(
    Checkpoint,
    origin=st.text(line_chars, min_size=1, max_size=60),
    size=st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(line_chars, min_size=1, max_size=30), max_size=3).map(tuple),
)


class TestProperties:
    @given(cp=checkpoints)
    def test_parse_inverts_to_text(self, cp: Checkpoint) -> None:
        assert Checkpoint.parse(cp.to_text()) == cp

    @given(cp=checkpoints)
    def test_to_text_inverts_parse(self, cp: Checkpoint) -> None:
        text = cp.to_text()
        assert Checkpoint.parse(text).to_text() == text

    @given(cp=checkpoints)
    def test_sign_then_open_round_trips(self, cp: Checkpoint) -> None:
        opened, _ = open_checkpoint(sign_checkpoint(cp, LOG), [LOG.verifier()], cp.origin)
        assert opened == cp

    @given(text=st.text(max_size=200))
    def test_arbitrary_text_parses_or_raises_note_error(self, text: str) -> None:
        try:
            cp = Checkpoint.parse(text)
        except NoteError:
            return
        assert cp.to_text() == text
