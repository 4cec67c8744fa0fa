"""Building bundles in process on a real SQLite file: purged events, the checkpoint a
bundle proves against, the zip layout any zip tool reads."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.errors import ValidationError
from auditkeep.evidence import Selection, build_bundle, choose_checkpoint, write_zip
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.storage.base import Cosignature, Purge
from auditkeep.witness.cosignature import WitnessSigner
from tests.evidence.verifier import V, members, rezip

WITNESS = WitnessSigner("witness.example/a", Ed25519PrivateKey.from_private_bytes(b"\x11" * 32))


def _open(data: DataDir) -> Node:
    return open_node(data, with_index=False, sequencer_options={"checkpoint_interval": 0.0})


def _append(n: Node, count: int, start: int = 0) -> None:
    body = orjson.dumps([{"action": "users.login", "outcome": "success", "category": "auth",
                          "actor": {"id": f"u{i}", "type": "user"},
                          "resource": {"type": "session", "id": str(i)}}
                         for i in range(start, start + count)])
    pendings = prepare(decode_events(body, ndjson=False), tenant="default", submitter="tok_t",
                       may_set_tenant=False)
    n.logs.append("default", pendings).result(10)


@pytest.fixture
def data(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    return DataDir(tmp_path_factory.mktemp("ev") / "data")


@pytest.fixture
def node(data: DataDir) -> Iterator[Node]:
    n = _open(data)
    _append(n, 5)
    _append(n, 5, 5)
    yield n
    n.close()


def _key(n: Node) -> list[object]:
    origin = n.logs.origin("default")
    return [V.VerifierKey(k.verifier(origin).to_string(), V.ALG_ED25519, "--key")
            for k in n.keys.published()]


class TestPurged:
    def test_purged_events_are_listed_with_their_leaf_hash_and_still_proven(
            self, node: Node, data: DataDir) -> None:
        info = node.logs.info("default")
        leaves = {s: node.logs.inclusion_proof("default", s)[1] for s in (2, 3)}
        node.store.purge(Purge(info.id, [2, 3], record_seq=9))
        node.close()
        fresh = _open(data)  # the log service caches bundles; a purge runs in retention/
        try:
            bundle = build_bundle(fresh.logs, Selection("default", "default", [1, 2, 3, 4]))
            report = V.verify_bundle(bundle, _key(fresh))
        finally:
            fresh.close()
        assert report.failures == []
        assert any("2 purged event(s)" in n for n in report.notes)
        with zipfile.ZipFile(io.BytesIO(bundle)) as z:
            names = set(z.namelist())
            manifest = orjson.loads(z.read("manifest.json"))
        assert {"entries/1.json", "entries/4.json", "proofs/2.proof"} <= names
        assert "entries/2.json" not in names
        assert manifest["purged"] == [
            {"seq": s, "leaf_hash": base64.b64encode(leaves[s]).decode(), "purged_by": 9}
            for s in (2, 3)]

    def test_a_wrong_leaf_hash_for_a_purged_event_fails_on_its_proof(
            self, node: Node, data: DataDir) -> None:
        node.store.purge(Purge(node.logs.info("default").id, [2], record_seq=9))
        node.close()
        fresh = _open(data)
        try:
            bundle = build_bundle(fresh.logs, Selection("default", "default", [2]))
            keys = _key(fresh)
        finally:
            fresh.close()
        manifest = orjson.loads(dict(members(bundle))["manifest.json"])
        manifest["purged"][0]["leaf_hash"] = base64.b64encode(b"\x00" * 32).decode()
        forged = rezip(bundle, {"manifest.json": orjson.dumps(manifest)})
        assert V.verify_bundle(forged, keys).failures == [
            "proofs/2.proof: inclusion proof does not lead to the checkpoint root "
            "(for purged seq 2's leaf hash)"]


class TestCheckpointChoice:
    def test_the_cosigned_checkpoint_covering_the_selection_is_preferred(
            self, node: Node) -> None:
        info = node.logs.info("default")
        stored = {c.size: c for c in node.store.checkpoints(info.id)}
        assert {5, 10} <= set(stored)
        text = stored[5].note[:stored[5].note.rfind("\n\n") + 1]
        node.store.put_cosignature(Cosignature(info.id, 5, stored[5].root, WITNESS.name,
                                               WITNESS.cosign(text, 1_700_000_000), "now"))
        cp, lines = choose_checkpoint(node.logs, info, least_size=5)
        assert cp.size == 5 and len(lines) == 1
        cp, lines = choose_checkpoint(node.logs, info, least_size=6)  # seq 5 needs size 6+
        assert cp.size == 10 and lines == []
        bundle = build_bundle(node.logs, Selection("default", "default", [0, 4],
                                                   witness_keys=[WITNESS.vkey]))
        report = V.verify_bundle(bundle, _key(node), min_witnesses=1)
        assert report.failures == [] and report.witnessed == 1

    def test_an_empty_selection_still_proves_the_checkpoint(self, node: Node) -> None:
        report = V.verify_bundle(build_bundle(node.logs, Selection("default", "default", [])),
                                 _key(node))
        assert report.failures == [] and report.summary["entries"] == 0


class TestLayout:
    def test_any_zip_tool_reads_the_layout_and_names_are_checked(self) -> None:
        when = datetime(2026, 12, 7, 15, 4, 33, tzinfo=UTC)
        data = write_zip([("README.md", b"hello"), ("entries/0.json", b"{}")], when)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.testzip() is None
            assert [(i.filename, i.date_time, i.compress_type) for i in z.infolist()] == [
                ("README.md", (2026, 12, 7, 15, 4, 32), 0),
                ("entries/0.json", (2026, 12, 7, 15, 4, 32), 0)]
        assert V.read_zip(data) == {"README.md": b"hello", "entries/0.json": b"{}"}
        with pytest.raises(ValidationError):
            write_zip([("../etc/passwd\n", b"")], when)

    def test_junk_appended_or_prepended_is_refused(self) -> None:
        data = write_zip([("README.md", b"hello")], datetime(2026, 1, 1, tzinfo=UTC))
        for bad in (data + b"\x00", b"\x00" + data):
            with pytest.raises(V.Failure):
                V.read_zip(bad)
