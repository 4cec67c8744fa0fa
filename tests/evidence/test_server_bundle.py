"""Evidence bundles from a real server: fetched with `auditkeep evidence`, verified by
tools/verify_evidence.py in an isolated Python without the project, then tampered with
byte by byte, re-zipped by a forger, signed by the wrong key and cosigned k of n."""

from __future__ import annotations

import base64
import io
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from auditkeep.log.note import Signer, sign_note
from auditkeep.sources import cloudtrail
from auditkeep.storage.base import Cosignature
from auditkeep.storage.sqlite import SQLiteBackend
from auditkeep.witness.cosignature import WitnessSigner
from tests.conftest import ServerProcess, start_server
from tests.evidence.verifier import TOOL, V, members, rezip
from tests.server.test_reads import token, wait_searchable

DATA = Path(__file__).parent.parent / "data"
STRATUS = (DATA / "cloudtrail" / "stratus_records.json").read_bytes()
CLOUDTRAIL = 12  # records sent through the CloudTrail source (each keeps its raw original)
PLAIN = 6  # events sent to POST /v1/events
WITNESSES = [WitnessSigner(f"witness.example/w{i}",
                           Ed25519PrivateKey.from_private_bytes(bytes([40 + i]) * 32))
             for i in range(2)]


def isolated_python() -> str:
    """The system interpreter, run with -I -S: no site-packages, no project on the path."""
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and Path(candidate).exists() and not candidate.startswith(
                str(Path(sys.prefix))):
            return candidate
    return sys.executable  # still isolated by -I -S


@dataclass
class Served:
    server: ServerProcess
    audit: str
    log_key: str
    bundle: bytes
    path: Path


def fetch(s: ServerProcess, tok: str, out: Path, *args: str) -> str:
    res = CliRunner().invoke(cli, ["evidence", "--url", s.url, "--token", tok, "-o", str(out),
                                   *args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("evidence")
    config = root / "auditkeep.yaml"  # witnesses nobody runs: their keys go into bundles
    config.write_text("witnesses:\n" + "".join(
        f"  - url: http://127.0.0.1:9/\n    vkey: {w.vkey}\n    interval: 3600\n"
        for w in WITNESSES))
    s = start_server(DataDir(root / "data"), "--config", str(config))
    try:
        with s.client() as c:
            events = [{"action": "orders.delete", "outcome": "success", "category": "data_change",
                       "actor": {"id": f"u{i}", "type": "user", "email": f"u{i}@example.org"},
                       "resource": {"type": "order", "id": str(i)}} for i in range(PLAIN)]
            assert c.post("/v1/events", json=events).status_code in (200, 201)
            body = {"Records": orjson.loads(STRATUS)["Records"][:CLOUDTRAIL]}
            r = c.post("/v1/sources/cloudtrail", content=orjson.dumps(body))
            assert r.status_code == 201, r.text
            wait_searchable(c, PLAIN + CLOUDTRAIL)
            log_key = next(k["verifier"] for k in c.get("/v1/keys").json()["keys"]
                           if k["name"].endswith("/default"))
        audit = token(s, "audit")
        path = root / "case-42.zip"
        fetch(s, audit, path)
        yield Served(s, audit, log_key, path.read_bytes(), path)
    finally:
        s.stop()


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([isolated_python(), "-I", "-S", str(TOOL), *args],
                          capture_output=True, text=True, timeout=60, cwd="/")


class TestFetchAndVerify:
    def test_the_stdlib_verifier_passes_a_real_bundle_in_an_isolated_python(
            self, served: Served) -> None:
        done = run_tool(str(served.path), "--key", served.log_key)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("OK ")
        assert f"{PLAIN + CLOUDTRAIL} entries" in done.stdout
        assert f"{CLOUDTRAIL} raw original(s) match" in done.stdout
        assert "relative to the bundle's own key" not in done.stdout

    def test_without_a_key_it_says_it_trusts_the_bundles_own_key(self, served: Served) -> None:
        done = run_tool(str(served.path), "--json")
        assert done.returncode == 0, done.stdout
        result = orjson.loads(done.stdout)
        assert result["ok"] and result["entries"] == PLAIN + CLOUDTRAIL
        assert any("relative to the bundle's own key only" in n for n in result["notes"])

    def test_the_bundle_holds_the_exact_entries_raw_originals_and_one_checkpoint(
            self, served: Served) -> None:
        with zipfile.ZipFile(io.BytesIO(served.bundle)) as z:
            assert z.testzip() is None
            infos = z.infolist()
            assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
            names = {i.filename for i in infos}
            manifest = orjson.loads(z.read("manifest.json"))
            checkpoint = z.read("checkpoint.txt").decode()
            with served.server.client(served.audit) as c:
                for seq in manifest["seqs"]:
                    entry = c.get(f"/v1/logs/default/entries/{seq}",
                                  params={"format": "canonical"}).content
                    assert z.read(f"entries/{seq}.json") == entry
                    proof = z.read(f"proofs/{seq}.proof").decode()
                    assert proof.startswith(f"c2sp.org/tlog-proof@v1\nindex {seq}\n")
                    assert proof.endswith("\n\n" + checkpoint)
        raws = sorted(n for n in names if n.startswith("raw/"))
        assert len(raws) == CLOUDTRAIL and all(n.endswith(".json") for n in raws)
        with zipfile.ZipFile(io.BytesIO(served.bundle)) as z:
            for n in raws:
                assert z.read(n) in STRATUS or orjson.loads(z.read(n)) in [
                    r for _, r in cloudtrail.decode_log_file(STRATUS)]
        assert {"README.md", "keys/log.vkey", "checkpoint.txt"} <= names
        with zipfile.ZipFile(io.BytesIO(served.bundle)) as z:
            assert z.read("keys/witnesses.vkeys").decode().split() == [
                w.vkey for w in WITNESSES]
            assert z.read("keys/log.vkey").decode().split() == [served.log_key]
        assert manifest["counts"] == {"selected": PLAIN + CLOUDTRAIL,
                                      "entries": PLAIN + CLOUDTRAIL, "purged": 0,
                                      "raw": CLOUDTRAIL, "raw_unavailable": 0}
        assert manifest["checkpoint"]["size"] >= PLAIN + CLOUDTRAIL

    def test_the_export_is_on_the_access_log(self, served: Served) -> None:
        with served.server.client() as c:
            wait_searchable(c, 1, tenant="default._access", action="auditkeep.read.evidence")
            found = c.get("/v1/events", params={"tenant": "default._access",
                                                "action": "auditkeep.read.evidence"}).json()
        meta = found["events"][0]["metadata"]
        assert meta["path"] == "/v1/evidence" and meta["results"] == PLAIN + CLOUDTRAIL

    def test_a_selection_over_the_limit_is_refused_not_cut_short(self, served: Served) -> None:
        with served.server.client(served.audit) as c:
            r = c.get("/v1/evidence", params={"query": "", "limit": 3})
        assert r.status_code == 400
        assert r.json()["errors"][0]["pointer"] == "/query/limit"
        assert "selects more than 3 events" in r.json()["detail"]
        res = CliRunner().invoke(cli, ["evidence", "--url", served.server.url, "--token",
                                       served.audit, "--limit", "3", "-o",
                                       str(served.path.with_name("no.zip"))])
        assert res.exit_code == 1 and "selects more than 3 events" in res.output
        assert not served.path.with_name("no.zip").exists()

    def test_a_read_scope_is_not_enough_and_a_query_narrows(self, served: Served) -> None:
        with served.server.client(token(served.server, "read")) as c:
            assert c.get("/v1/evidence").status_code == 403
        out = served.path.with_name("orders.zip")
        fetch(served.server, served.audit, out, "--query", "action:orders.delete")
        done = run_tool(str(out), "--key", served.log_key)
        assert done.returncode == 0 and f"{PLAIN} entries" in done.stdout


def _layout(bundle: bytes) -> tuple[list[tuple[str, int, int, int]], int, int]:
    """(name, local header offset, data offset, data size) of each member; the central
    directory's offset and the end record's offset."""
    end = len(bundle) - 22
    _, _, _, _, total, _, cd_offset, _ = struct.unpack_from("<4s4H2LH", bundle, end)
    out, pos = [], cd_offset
    for _ in range(total):
        fields = struct.unpack_from("<4s6H3L5H2L", bundle, pos)
        size, name_len, offset = fields[8], fields[10], fields[16]
        name = bundle[pos + 46:pos + 46 + name_len].decode()
        out.append((name, offset, offset + 30 + name_len, size))
        pos += 46 + name_len
    return out, cd_offset, end


def _flip(bundle: bytes, at: int) -> bytes:
    b = bytearray(bundle)
    b[at] ^= 0x01 if at % 2 else 0x80
    return bytes(b)


def _failures(bundle: bytes, key: str) -> list[str]:
    report = V.verify_bundle(bundle, [V.VerifierKey(key, V.ALG_ED25519, "--key")])
    return list(report.failures)


class TestTampering:
    def test_flipping_any_byte_fails_and_names_the_part(self, served: Served) -> None:
        bundle = served.bundle
        layout, cd_offset, end = _layout(bundle)
        cases: list[tuple[int, tuple[str, ...]]] = []
        for name, header, data, size in layout:
            for at in (header, header + 4, header + 8, header + 10, header + 14, header + 18,
                       header + 22, header + 26, header + 28, header + 30):
                cases.append((at, (name,)))
            for at in sorted({data, data + size // 2, data + size - 1}):
                cases.append((at, (name,)))
        pos = cd_offset
        for name, _, _, _ in layout:
            for field in (0, 4, 6, 8, 10, 12, 16, 20, 24, 28, 30, 32, 34, 36, 38, 42, 46):
                cases.append((pos + field, ("central directory", name)))
            pos += 46 + len(name)
        cases += [(at, ("central directory", "zip")) for at in range(end, len(bundle))]
        manifest = next(m for m in layout if m[0] == "manifest.json")
        cases += [(manifest[2] + i, ("manifest.json",)) for i in range(0, manifest[3], 97)]
        assert len(cases) > 500
        for at, parts in cases:
            failures = _failures(_flip(bundle, at), served.log_key)
            assert failures, f"flipping byte {at} went unnoticed"
            assert any(p in failures[0] for p in parts), (at, parts, failures)

    def test_a_changed_entry_rezipped_with_a_matching_manifest_fails_on_its_proof(
            self, served: Served) -> None:
        parts = dict(members(served.bundle))
        seq = orjson.loads(parts["manifest.json"])["seqs"][2]
        entry = orjson.loads(parts[f"entries/{seq}.json"])
        entry["outcome"] = "failure" if entry["outcome"] == "success" else "success"
        forged = rezip(served.bundle, {f"entries/{seq}.json": orjson.dumps(entry)})
        failures = _failures(forged, served.log_key)
        assert failures == [f"proofs/{seq}.proof: inclusion proof does not lead to the "
                            f"checkpoint root (for entries/{seq}.json)"]

    def test_a_changed_raw_original_fails_on_its_digest(self, served: Served) -> None:
        raw = sorted(n for n, _ in members(served.bundle) if n.startswith("raw/"))[0]
        forged = rezip(served.bundle, {raw: dict(members(served.bundle))[raw] + b" "})
        seq = raw.split("/")[1].split(".")[0]
        assert _failures(forged, served.log_key) == [
            f"{raw}: SHA-256 differs from the digest in entries/{seq}.json"]

    def test_a_member_missing_from_the_manifest_is_named(self, served: Served) -> None:
        parts = dict(members(served.bundle))
        manifest = orjson.loads(parts["manifest.json"])
        manifest["files"] = [f for f in manifest["files"] if f["path"] != "README.md"]
        forged = rezip(served.bundle, {"manifest.json": orjson.dumps(manifest)},
                       fix_manifest=False)
        assert _failures(forged, served.log_key) == [
            "README.md: in the zip but not listed in manifest.json"]

    def test_a_checkpoint_signed_by_another_key_fails(self, served: Served) -> None:
        parts = dict(members(served.bundle))
        note = parts["checkpoint.txt"].decode()
        text = note[:note.rfind("\n\n") + 1]
        origin = text.split("\n", 1)[0]
        mallory = Signer("x", Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))
        forged_note = sign_note(text, [mallory.with_name(origin)])
        changed = {"checkpoint.txt": forged_note.encode()}
        for name, body in parts.items():
            if name.startswith("proofs/"):
                changed[name] = body.replace(parts["checkpoint.txt"], forged_note.encode())
        forged = rezip(served.bundle, changed)
        failures = _failures(forged, served.log_key)
        assert len(failures) == 1 and failures[0].startswith("checkpoint.txt: not signed by "
                                                             "any trusted key")
        # With the forger's own key shipped in keys/log.vkey it "passes" -- which is why
        # the key must come out of band; the tool says so.
        changed["keys/log.vkey"] = (mallory.with_name(origin).verifier().to_string()
                                    + "\n").encode()
        report = V.verify_bundle(rezip(served.bundle, changed))
        assert not report.failures
        assert any("bundle's own key only" in n for n in report.notes)

    def test_a_bad_signature_under_the_right_key_id_fails(self, served: Served) -> None:
        parts = dict(members(served.bundle))
        note = parts["checkpoint.txt"].decode()
        head, sig_line = note[:note.rfind("\n\n") + 2], note[note.rfind("\n\n") + 2:]
        name, b64 = sig_line[2:].rstrip("\n").split(" ")
        raw = bytearray(base64.b64decode(b64))
        raw[10] ^= 0x20
        bad = f"{head}\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
        changed = {"checkpoint.txt": bad}
        for n, body in parts.items():
            if n.startswith("proofs/"):
                changed[n] = body.replace(parts["checkpoint.txt"], bad)
        failures = _failures(rezip(served.bundle, changed), served.log_key)
        assert failures == [f"checkpoint.txt: signature line 1 of {name}+{raw[:4].hex()} "
                            "does not verify"]


class TestWitnesses:
    def test_k_of_n_cosignatures(self, served: Served) -> None:
        s = served.server
        with s.client() as c:
            note = c.get("/v1/logs/default/checkpoint").text
        text = note[:note.rfind("\n\n") + 1]
        size, root = int(text.split("\n")[1]), base64.b64decode(text.split("\n")[2])
        store = SQLiteBackend(s.data.db)
        try:
            log = store.get_log("default")
            assert log is not None
            w = WITNESSES[0]
            store.put_cosignature(Cosignature(
                log.id, size, root, w.name, w.cosign(text, 1_765_000_000),
                datetime.now(UTC).isoformat()))
        finally:
            store.close()
        out = served.path.with_name("cosigned.zip")
        fetch(s, served.audit, out)
        both = [arg for w in WITNESSES for arg in ("--witness", w.vkey)]
        two = run_tool(str(out), "--key", served.log_key, *both, "--min-witnesses", "2")
        assert two.returncode == 1
        assert "checkpoint.txt: 1 valid witness cosignature(s), 2 required" in two.stdout
        own = run_tool(str(out), "--key", served.log_key, "--min-witnesses", "2")
        assert own.returncode == 1 and "1 valid witness cosignature(s), 2 required" in own.stdout
        own = run_tool(str(out), "--key", served.log_key, "--min-witnesses", "1")
        assert own.returncode == 0 and "witness keys were taken from the bundle" in own.stdout
        one = run_tool(str(out), "--key", served.log_key, *both, "--min-witnesses", "1")
        assert one.returncode == 0, one.stdout
        assert "1 witness cosignature(s) verified" in one.stdout
        with zipfile.ZipFile(out) as z:
            assert z.read("checkpoint.txt").decode() == note + WITNESSES[0].cosign(
                text, 1_765_000_000)
            assert orjson.loads(z.read("manifest.json"))["checkpoint"]["cosignatures"] == 1
