"""An archive in a real S3-compatible server (moto's server mode, a child process on a
loopback port): sealed, listed and verified through obstore, then read by DuckDB."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auditkeep.archive.objects import Objects, open_objects
from auditkeep.archive.reading import search_archive
from auditkeep.archive.seal import Archiver
from auditkeep.archive.verify import verify_archive
from auditkeep.datadir import Node
from auditkeep.query.index import Window
from auditkeep.query.lang import parse
from auditkeep.storage.base import Purge
from tests.archive.conftest import TENANT, WIDTH
from tests.conftest import free_port

BUCKET = "audit-archive"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    moto = Path(sys.executable).with_name("moto_server")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.05)
        assert httpx.put(f"{url}/{BUCKET}").status_code == 200
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Objects:
    # Credentials from the standard variables, as a deployment would pass them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return open_objects(f"s3://{BUCKET}/auditkeep", endpoint=s3_endpoint, region="us-east-1",
                        allow_http=True)


def test_seal_and_verify_in_s3(filled: Node, s3: Objects, s3_endpoint: str) -> None:
    report = Archiver(filled.logs, s3, WIDTH).run()
    assert [r.url for r in report.sealed] == [
        f"s3://{BUCKET}/auditkeep/acme/00000000000000000000-00000000000000000256.parquet",
        f"s3://{BUCKET}/auditkeep/acme/00000000000000000256-00000000000000000512.parquet"]
    listing = httpx.get(f"{s3_endpoint}/{BUCKET}?list-type=2&prefix=auditkeep/").text
    assert "auditkeep/acme/00000000000000000000-00000000000000000256.manifest" in listing
    vkeys = [k.verifier(filled.logs.origin(TENANT)).to_string() for k in filled.keys.published()]
    checked = verify_archive(s3, vkeys, hot=filled.store)
    assert checked.ok and [r.rows for r in checked.ranges] == [256, 256]
    # include=archive reads byte ranges of the objects: a purged event is found in S3
    info = filled.logs.info(TENANT)
    filled.store.purge(Purge(info.id, list(range(300, 310)), record_seq=599))
    found = search_archive(filled.logs, s3, TENANT, parse("resource.id:305"), Window(), 10)
    assert [(seq, rec["resource"]["id"]) for _, seq, rec in found] == [(305, "305")]
    name = "acme/00000000000000000256-00000000000000000512.parquet"
    s3.put(name, s3.get(name) + b"\0")
    problems = verify_archive(s3, vkeys).problems
    assert (problems[0].name, problems[0].check) == (name, "sha256")
    assert {p.name for p in problems} == {name}
