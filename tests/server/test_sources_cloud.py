"""`POST /v1/sources/cloudtrail` and `/v1/sources/gcp`, and `auditkeep import`, on real
CloudTrail records and documented-format GCP entries."""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path

import orjson
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.sources import cloudtrail
from tests.conftest import ServerProcess
from tests.server.helpers import size_of

DATA = Path(__file__).parent.parent / "data"
STRATUS = (DATA / "cloudtrail" / "stratus_records.json").read_bytes()


class TestCloudTrail:
    def test_a_log_file_is_mapped_and_each_record_kept_byte_exactly(
            self, server: ServerProcess) -> None:
        records = cloudtrail.decode_log_file(STRATUS)
        with server.client() as c:
            r = c.post("/v1/sources/cloudtrail", content=STRATUS)
            assert r.status_code == 201, r.text
            receipts = r.json()["receipts"]
            assert len(receipts) == len(records) == 310
            for i in (0, 101, 309):
                raw, record = records[i]
                rec = c.get(f"/v1/events/{receipts[i]['id']}").json()["record"]
                assert rec["id"] == f"aws:{record['eventID']}"
                assert rec["action"].startswith("aws.")
                assert rec["raw"]["sha256"] == hashlib.sha256(raw).hexdigest()
                got = c.get(f"/v1/events/{rec['id']}/raw")
                assert got.content == raw and got.content in STRATUS
                assert got.headers["x-auditkeep-raw-format"] == "aws.cloudtrail"

    def test_gzip_bodies_are_taken_and_bombs_refused(self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/sources/cloudtrail", content=gzip.compress(STRATUS))
            assert r.status_code == 201 and len(r.json()["receipts"]) == 310
            bomb = gzip.compress(b'{"Records":[' + b" " * (80 << 20) + b"]}")
            r = c.post("/v1/sources/cloudtrail", content=bomb)
            assert r.status_code == 413 and "inflates" in r.json()["detail"]
            assert c.post("/v1/sources/cloudtrail", content=b'{"Records": 5}').status_code == 400
            assert size_of(c) == 310

    def test_import_reads_a_delivered_tree_and_is_idempotent(
            self, server: ServerProcess, tmp_path: Path) -> None:
        tree = tmp_path / "AWSLogs" / "123456789012" / "CloudTrail" / "eu-west-1" / "2026"
        tree.mkdir(parents=True)
        body = orjson.loads(STRATUS)
        for k in range(3):  # three delivered files, gzipped as S3 has them
            part = {"Records": body["Records"][k * 100 : (k + 1) * 100]}
            (tree / f"123_CloudTrail_eu-west-1_{k}.json.gz").write_bytes(
                gzip.compress(orjson.dumps(part)))
        (tree / "123_CloudTrail-Digest_eu-west-1_0.json.gz").write_bytes(gzip.compress(b"{}"))
        args = ["import", "cloudtrail", "--url", server.url, "--token", server.admin_token,
                str(tmp_path / "AWSLogs")]
        first = CliRunner().invoke(cli, args)
        assert first.exit_code == 0, first.output
        assert "300 records: 300 stored, 0 already stored, 0 problem(s)" in first.output
        again = CliRunner().invoke(cli, args)
        assert "300 records: 0 stored, 300 already stored" in again.output

    def test_import_names_what_it_could_not_map_and_fails(
            self, server: ServerProcess, tmp_path: Path) -> None:
        f = tmp_path / "log.json"
        f.write_bytes(orjson.dumps({"Records": [orjson.loads(STRATUS)["Records"][0],
                                                {"eventTime": 5}]}))
        res = CliRunner().invoke(cli, ["import", "cloudtrail", "--url", server.url,
                                       "--token", server.admin_token, str(f)])
        assert res.exit_code == 1
        assert f"{f}:1: skipped, cannot be mapped" in res.output
        assert "2 records: 1 stored" in res.output


class TestGcp:
    def test_export_lines_and_a_pubsub_push_are_stored_with_their_raw(
            self, server: ServerProcess) -> None:
        lines = (DATA / "gcp" / "activity.jsonl").read_bytes()
        push = (DATA / "gcp" / "pubsub_push.json").read_bytes()
        with server.client() as c:
            r = c.post("/v1/sources/gcp", content=lines)
            assert r.status_code == 201, r.text
            first = r.json()["receipts"][0]["id"]
            assert first.startswith("gcp:")
            raw = c.get(f"/v1/events/{first}/raw").content
            assert raw == lines.splitlines()[0]
            r = c.post("/v1/sources/gcp", content=push)
            assert r.status_code == 201, r.text
            (receipt,) = r.json()["receipts"]
            data = base64.b64decode(orjson.loads(push)["message"]["data"])
            assert c.get(f"/v1/events/{receipt['id']}/raw").content == data
            rec = c.get(f"/v1/events/{receipt['id']}").json()["record"]
            assert rec["action"].startswith("gcp.") and rec["raw"]["format"] == "gcp.auditlog"

    def test_not_a_log_entry_is_a_problem(self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/sources/gcp", content=b'{"protoPayload": 3}')
            assert r.status_code == 400 and r.json()["errors"][0]["pointer"].startswith("/0")
            assert size_of(c) == 0
