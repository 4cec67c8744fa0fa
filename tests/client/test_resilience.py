"""What the SDK promises when things fail: a server outage, a killed producer, a corrupt
spool, and a server that rolls back or forks its log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from auditkeep.client import AuditClient
from auditkeep.datadir import DataDir
from tests.client.test_client import searchable, wait_for
from tests.conftest import ServerProcess, free_port, start_server

PRODUCER = """
import sys
from auditkeep.client import AuditClient
client = AuditClient(sys.argv[1], sys.argv[2], sys.argv[3], batch_age=0.05)
i = 0
while True:
    eid = client.emit("crash.x", actor="producer", metadata={"i": i})
    sys.stdout.write(eid + "\\n")
    sys.stdout.flush()
    i += 1
"""


def in_seq_order(server: ServerProcess, action: str, n: int) -> list[dict[str, object]]:
    events = searchable(server, n, action=action)
    return sorted(events, key=lambda e: int(str(e["seq"])))


def test_outage_under_steady_emit_loses_nothing_and_keeps_order(
        data_dir: DataDir, tmp_path: Path) -> None:
    port = free_port()
    server = start_server(data_dir, port=port)
    client = AuditClient(server.url, server.admin_token, tmp_path / "spool", batch_age=0.05)
    emitted: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            emitted.append(client.emit("outage.x", actor="steady", metadata={"i": i}))
            i += 1
            time.sleep(0.002)  # a steady few hundred events a second

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(1.0)
        server.stop()  # the outage: emits go on, the spool grows
        time.sleep(2.0)
        assert client.stats()["retried"] > 0
        server = start_server(data_dir, port=port)
        time.sleep(1.0)
    finally:
        stop.set()
        producer.join()
    try:
        assert client.flush(30)
        client.close()
        stored = in_seq_order(server, "outage.x", len(emitted))
        ids = [str(e["id"]) for e in stored]
        assert len(ids) == len(set(ids)) == len(emitted)  # each exactly once
        assert ids == emitted  # in the order they were emitted...
        times = [str(e["time"]) for e in stored]
        assert times == sorted(times)  # ...which is the order of their times
    finally:
        server.stop()


def test_a_killed_producer_loses_no_returned_emit(server: ServerProcess, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with subprocess.Popen([sys.executable, "-c", PRODUCER, server.url, server.admin_token,
                           str(spool)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 1.5
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)  # mid-stream, batches in flight
        proc.wait()
        lines += proc.stdout.read().splitlines(keepends=True)
    # a line cut by the kill is an emit whose return was not seen
    returned = [line.strip() for line in lines if line.endswith("\n")]
    assert len(returned) > 100
    heir = AuditClient(server.url, server.admin_token, spool, batch_age=0.05)
    wait_for(lambda: _only_own(spool, heir))
    assert heir.stats()["sent"] > 0  # the dead producer had left events unsent
    heir.close()
    stored = {str(e["id"]) for e in searchable(server, len(returned), action="crash.x")}
    assert set(returned) <= stored


def _only_own(spool: Path, heir: AuditClient) -> bool:
    """Every spool but the heir's own was drained and removed."""
    return len(list(spool.glob("w-*"))) == 1 and heir.stats()["spooled_bytes"] == 0


def test_a_corrupt_spool_tail_is_survived_and_reported(server: ServerProcess,
                                                       tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    url = f"http://127.0.0.1:{free_port()}"  # unreachable: everything stays spooled
    first = AuditClient(url, "ak_x", spool, batch_age=60)
    ids = [first.emit("corrupt.x", actor="c") for _ in range(20)]
    first.close(0)
    (seg,) = spool.glob("w-*/seg-*.log")
    with open(seg, "r+b") as f:
        f.truncate(seg.stat().st_size - 7)  # the last record torn
        f.seek(0, os.SEEK_END)
        f.write(b"\x00garbage\xff" * 3)
    heir = AuditClient(server.url, server.admin_token, spool, batch_age=0.05)
    wait_for(lambda: _only_own(spool, heir))
    assert heir.stats()["corrupt_records"] >= 1
    heir.close()
    stored = {str(e["id"]) for e in searchable(server, 19, action="corrupt.x")}
    assert stored == set(ids[:-1])  # all but the torn one


def test_receipts_detect_a_rolled_back_and_then_forked_log(
        data_dir: DataDir, tmp_path: Path) -> None:
    port = free_port()
    server = start_server(data_dir, port=port)
    client = AuditClient(server.url, server.admin_token, tmp_path / "spool", batch_age=0.05)
    try:
        for i in range(30):
            client.emit("rb.x", actor="r", metadata={"i": i})
        assert client.flush(20)
        server.stop()
        backup = tmp_path / "backup"
        shutil.copytree(data_dir.root, backup)  # an old backup, journal and all
        server = start_server(data_dir, port=port)
        for i in range(30, 50):
            client.emit("rb.x", actor="r", metadata={"i": i})
        assert client.flush(20)
        report = client.verify_receipts()
        assert report.ok, report.problems
        assert report.checked == 50 and report.logs == {"default": 50}

        more = [client.emit("rb.x", actor="r", metadata={"i": i}) for i in range(50, 60)]
        assert client.flush(20)
        server.stop()  # the operator restores the backup: 30 entries, 30 acknowledged lost
        shutil.rmtree(data_dir.root)
        shutil.copytree(backup, data_dir.root)
        server = start_server(data_dir, port=port)
        report = client.verify_receipts()
        assert not report.ok
        assert "rolled back" in report.problems[0] and "60" in report.problems[0]

        # the server goes on from the backup and grows past what the client was shown
        with server.client() as c:
            c.post("/v1/events", json=[{"action": "other.x", "outcome": "success",
                                        "actor": {"id": "o", "type": "user"}}] * 40)
        report = client.verify_receipts()
        assert not report.ok
        assert "forked" in report.problems[0], report.problems
        assert more  # the ten events acknowledged after the last proof are the lost ones
    finally:
        client.close(0)
        server.stop()
