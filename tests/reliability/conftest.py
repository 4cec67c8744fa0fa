"""Fixtures of the reliability suite: a data directory on a small tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.helpers import event


def _can_mount() -> str | None:
    """None if this process may mount a tmpfs, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (run the reliability suite as root)"
    if shutil.which("mount") is None:
        return "no mount(8) on this machine"
    return None


class SmallDisk:
    """A tmpfs of a few MB: its size can grow (remount) while mounted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def remount(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    why = _can_mount()
    if why is not None:
        pytest.skip(why)
    path = tmp_path / "disk"
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        for log in path.glob("server-*.log"):  # kept for a failure's post-mortem
            shutil.copy(log, tmp_path / log.name)
        subprocess.run(["umount", "-l", str(path)], check=False)


def ingest_until_full(c: httpx.Client, *, batch: int, refusals: int, seconds: float
                      ) -> tuple[dict[str, int], list[httpx.Response]]:
    """Send batches until `refusals` of them are refused (or `seconds` pass): the
    acknowledged ids with their seqs, and the refused answers."""
    acked: dict[str, int] = {}
    full: list[httpx.Response] = []
    n = 0
    deadline = time.monotonic() + seconds
    while len(full) < refusals and time.monotonic() < deadline:
        r = c.post("/v1/events", json=[event(n + i, id=f"e{n + i}") for i in range(batch)])
        n += batch
        if r.status_code == 201:
            acked.update((x["id"], x["seq"]) for x in r.json()["receipts"])
        else:
            full.append(r)
    assert full, "the disk never filled"
    assert acked
    return acked, full


def assert_storage_full(r: httpx.Response, *statuses: int) -> None:
    """A clear refusal: 507 (or one of `statuses`) storage-full problem+json, Retry-After,
    saying nothing of the request was stored."""
    assert r.status_code in (statuses or (507,)), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["type"].endswith("storage-full"), body
    assert "full" in body["detail"] and "nothing" in body["detail"], body


def post_until_accepted(c: httpx.Client, seconds: float) -> httpx.Response:
    """Once space returns: one event, retried until it is acknowledged (or time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        r = c.post("/v1/events", json=[event(0, id="after")])
        if r.status_code == 201 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)
