"""SIGTERM while a slow ingest request is in flight: the request completes (201, or a
503 that acknowledged nothing), the server exits cleanly within its graceful timeout,
and every acknowledged event is stored."""

from __future__ import annotations

import socket
import time

import orjson
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.server.helpers import event

EVENTS = 400
CHUNKS = 8


def test_sigterm_drains_a_slow_request_in_flight(data_dir: DataDir) -> None:
    srv = start_server(data_dir)
    token = srv.admin_token
    body = b"".join(orjson.dumps(event(i, id=f"slow-{i}")) + b"\n" for i in range(EVENTS))
    host, port = srv.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
                 f"{token}\r\nContent-Type: application/x-ndjson\r\nContent-Length: "
                 f"{len(body)}\r\nConnection: close\r\n\r\n".encode())
    step = len(body) // CHUNKS
    for k in range(CHUNKS):
        sock.sendall(body[k * step:(k + 1) * step if k < CHUNKS - 1 else len(body)])
        if k == CHUNKS // 2:
            srv.proc.terminate()  # SIGTERM mid-request
        time.sleep(0.2)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    status = int(reply.split(b" ", 2)[1])
    srv.proc.wait(15)  # within the graceful timeout (10 s) and the node's close
    assert srv.proc.returncode == 128 + 15  # exited through its cleanup
    srv.stop()
    assert status in (201, 503), reply[:500]
    print("sigterm drain: in-flight request answered", status)
    res = CliRunner().invoke(cli, ["verify", "--data", str(data_dir.root)])
    assert res.exit_code == 0, res.output
    if status == 201:
        receipts = orjson.loads(reply.split(b"\r\n\r\n", 1)[1])["receipts"]
        assert len(receipts) == EVENTS
        srv = start_server(data_dir)
        try:
            with srv.client() as c:
                for r in receipts[:: EVENTS // 20]:
                    assert c.get(f"/v1/logs/default/entries/{r['seq']}").json()["id"] == r["id"]
                assert c.get("/v1/status").json()["logs"]["default"]["size"] >= EVENTS
        finally:
            srv.stop()
