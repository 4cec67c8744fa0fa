"""200 idle connections and 200 sending their headers a byte a second (slowloris) do not
block a normal request, and the server closes them after its header timeout."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx

from auditkeep.datadir import DataDir
from tests.conftest import start_server

HELD = 200
TIMEOUT = 3.0  # the server's --header-timeout in this test
REQUEST = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 64


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        s.settimeout(0.01)
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_slow_connections_neither_block_nor_stay(data_dir: DataDir) -> None:
    srv = start_server(data_dir, "--header-timeout", str(TIMEOUT))
    host, port = srv.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(HELD)]
    slow = [socket.create_connection((host, int(port))) for _ in range(HELD)]
    stop = threading.Event()

    def drip() -> None:  # one more header byte a second on every slow connection
        k = 0
        while not stop.is_set() and k < len(REQUEST):
            for s in slow:
                with contextlib.suppress(OSError):
                    s.send(REQUEST[k:k + 1])
            k += 1
            stop.wait(1.0)

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        time.sleep(1.0)
        with httpx.Client(base_url=srv.url, timeout=5.0, headers={
                "Authorization": f"Bearer {srv.admin_token}"}) as c:
            r = c.get("/v1/status")  # answered while all 400 are held
            assert r.status_code == 200
        deadline = time.monotonic() + TIMEOUT + 5
        open_ = idle + slow
        while open_ and time.monotonic() < deadline:
            open_ = [s for s in open_ if not _closed_by_peer(s)]
            time.sleep(0.2)
        assert open_ == [], f"{len(open_)} of {2 * HELD} connections still open"
        with httpx.Client(base_url=srv.url, timeout=5.0) as c:
            assert c.get("/healthz").status_code == 200
    finally:
        stop.set()
        dripper.join()
        for s in idle + slow:
            s.close()
        srv.stop()
