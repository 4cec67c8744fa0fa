"""Shared fixtures: real data directories, and a real server process on a loopback port."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from auditkeep.datadir import DataDir, Node, open_node

pytest_plugins = ["tests.services"]


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data")


@pytest.fixture
def node(data_dir: DataDir) -> Iterator[Node]:
    n = open_node(data_dir)
    n.start()
    yield n
    n.close()


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    data: DataDir

    @property
    def admin_token(self) -> str:
        return self.data.admin_token.read_text().strip()

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, headers={
            "Authorization": f"Bearer {token or self.admin_token}"})

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, and wait until the server and its indexer child are gone (a test may
        copy or reopen the data directory next)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        wait_indexer_gone(self.data)


def wait_indexer_gone(data: DataDir, timeout: float = 15.0) -> bool:
    """Wait until no indexer process holds the data directory's index lock."""
    lock_path = Path(str(data.search_db) + ".lock")
    if not lock_path.exists():
        return True
    deadline = time.monotonic() + timeout
    with open(lock_path, "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(lock, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    # tests.services is imported here, not above: a module of pytest_plugins imported
    # before pytest registers it would miss assertion rewriting.
    from tests.services import TEST_STREAM_BYTES

    # Servers the tests start with --bus make their stream this size.
    os.environ.setdefault("AUDITKEEP_BUS_MAX_BYTES", str(TEST_STREAM_BYTES))


def pytest_sessionstart(session: pytest.Session) -> None:
    from tests.services import delete_stale_test_streams

    if not hasattr(session.config, "workerinput"):  # once, before xdist starts workers
        gone = delete_stale_test_streams()
        if gone:
            print(f"deleted {len(gone)} test streams an earlier run left on NATS")


#: Every server the tests started: one a fixture failed to stop (an assertion in its
#: set-up after the start) is killed when the session ends rather than left running.
_STARTED: list[ServerProcess] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for s in _STARTED:
        if s.proc.poll() is None:
            s.kill()


def start_server(data: DataDir, *extra: str, port: int | None = None) -> ServerProcess:
    """`auditkeep serve` in a child process on a loopback port (a free one unless given,
    e.g. to restart a server where its clients expect it); waits until ready."""
    port = port or free_port()
    if "--rules" not in extra and "--detection" not in extra:
        # Tests of other features count the events in a log: the shipped rules' alert
        # records would add to them. Detection is tested with its own rules directory.
        extra = ("--no-detection", *extra)
    log_path = data.root.parent / f"server-{port}.log"
    cmd = [sys.executable, "-m", "auditkeep", "serve", "--data", str(data.root), "--port",
           str(port), "--log-level", "warning", *extra]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                started = ServerProcess(proc, url, data)
                _STARTED.append(started)
                return started
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server never became ready: {log_path.read_text()}")


@pytest.fixture
def server(data_dir: DataDir) -> Iterator[ServerProcess]:
    s = start_server(data_dir)
    yield s
    s.stop()
