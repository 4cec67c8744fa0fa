"""Reads of entries retention purged, over the HTTP API (in process, on real SQLite):
410 problem+json "purged" naming the retention record, other entries as before."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from auditkeep.datadir import DataDir, Node
from auditkeep.server.app import create_app
from tests.log.tamper import populate
from tests.log.test_verify_purge import purged  # noqa: F401 -- a fixture

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@pytest.fixture
def data(data_dir: DataDir) -> DataDir:
    populate(data_dir)
    return data_dir


@pytest.fixture
def api(purged: Node) -> Iterator[TestClient]:  # noqa: F811 -- the fixture imported above
    token = purged.data.admin_token.read_text().strip()
    with TestClient(create_app(purged), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.mark.parametrize("fmt", ["record", "canonical"])
def test_a_purged_entry_is_410_purged_naming_the_record(api: TestClient, fmt: str) -> None:
    r = api.get("/v1/logs/default/entries/4", params={"format": fmt})
    assert r.status_code == 410
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:auditkeep:problem:purged"
    assert "seq 4" in body["detail"] and "seq 120" in body["detail"]


def test_a_kept_entry_still_reads(api: TestClient) -> None:
    r = api.get("/v1/logs/default/entries/6")
    assert r.status_code == 200 and r.json()["seq"] == 6
