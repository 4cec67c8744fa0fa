"""SIGTERM stops the server cleanly: its indexer and ingest workers are gone when it has
exited, and its databases are closed (checkpointed), so a copy taken right then is whole."""

from __future__ import annotations

import os
from pathlib import Path

from auditkeep.datadir import DataDir
from tests.conftest import start_server


def _children(pid: int) -> set[int]:
    """Child processes of `pid`, but multiprocessing's resource tracker (it holds nothing
    of ours and exits on its own once its pipe closes)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            cmdline = (entry / "cmdline").read_bytes()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
                out.add(int(entry.name))
    return out


def test_sigterm_leaves_no_child_and_no_open_database(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    server = start_server(data)
    try:
        with server.client() as c:
            c.post("/v1/events", json=[{"action": "orders.refund", "outcome": "success",
                                        "actor": {"id": "a", "type": "user"}}] * 20
                   ).raise_for_status()
            workers = c.get("/v1/status").json()["ingest"]["worker_pids"]
        children = _children(server.proc.pid)
        assert set(workers) <= children and len(children) > len(workers)  # + the indexer
    finally:
        server.stop()
    assert server.proc.returncode == 128 + 15  # exited through its cleanup, not killed
    alive = {p for p in children if Path(f"/proc/{p}").exists()
             and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]}
    assert alive == set()
    left = sorted(p.name for p in data.root.iterdir() if p.name.endswith(("-wal", "-shm")))
    assert left == [], left
    assert os.path.getsize(data.db) > 0
