"""The agent against a real server: killed and restarted mid-stream, a server outage, files
rotated while tailed. Each ends with every line's event stored exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from auditkeep.agent.config import load_config
from auditkeep.agent.runner import Agent, line_id, open_client
from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from auditkeep.sources.k8s import map_event
from tests.client.test_client import searchable, wait_for
from tests.conftest import ServerProcess, free_port, start_server
from tests.server.helpers import size_of

K8S_SAMPLES = Path(__file__).parent.parent / "data" / "k8s" / "falco_k8s_audit_events.jsonl"


def write_config(tmp_path: Path, url: str, token: str, files: list[dict[str, Any]],
                 **extra: Any) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"url": url, "token": token, "state_dir": "state",
                                    "poll_interval": 0.05, "batch_age": 0.05,
                                    "files": files, **extra}))
    return path


class Writer(threading.Thread):
    """Appends `n` lines at a steady pace, some of them in two writes (a partial line
    sits in the file for a moment), optionally rotating (rename + create) every
    `rotate_every` lines."""

    def __init__(self, path: Path, n: int, make: Callable[[int], bytes], *,
                 per_ms: float = 0.5, rotate_every: int | None = None) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.n = n
        self.make = make
        self.pause = 1 / (per_ms * 1000)
        self.rotate_every = rotate_every
        self.lines: list[bytes] = []
        self.rotations = 0

    def run(self) -> None:
        fh = open(self.path, "ab")  # noqa: SIM115 - reopened on each rotation
        reopen = False
        try:
            for i in range(self.n):
                self._write(fh, i)
                if reopen:
                    fh.close()
                    fh = open(self.path, "ab")  # noqa: SIM115
                    reopen = False
                if self.rotate_every and i % self.rotate_every == self.rotate_every - 1:
                    self.rotations += 1
                    os.rename(self.path, f"{self.path}.{self.rotations}")
                    # The writer learns of the rotation late (logrotate's postrotate
                    # signal): its next line still lands in the renamed file.
                    reopen = True
        finally:
            fh.close()

    def _write(self, fh: Any, i: int) -> None:
        line = self.make(i)
        self.lines.append(line)
        if i % 10 == 3:
            fh.write(line[:7])
            fh.flush()
            time.sleep(self.pause)
            fh.write(line[7:] + b"\n")
        else:
            fh.write(line + b"\n")
        fh.flush()
        time.sleep(self.pause)


def app_line(i: int) -> bytes:
    ev: dict[str, Any] = {"action": "agent.e2e", "actor": {"id": f"u{i % 5}", "type": "user"},
                          "outcome": "success", "metadata": {"i": i}}
    if i % 2 == 0:
        ev["id"] = f"e2e-{i}"  # half carry their own id, half get one from the line
    return orjson.dumps(ev)


def expected_ids(lines: list[bytes]) -> set[str]:
    return {str(orjson.loads(x).get("id") or line_id(x)) for x in lines}


def assert_stored_exactly_once(server: ServerProcess, want: set[str], **params: Any) -> None:
    found = searchable(server, len(want), **params)
    ids = [str(e["id"]) for e in found]
    assert len(ids) == len(set(ids)) == len(want)
    assert set(ids) == want
    with server.client() as c:
        assert size_of(c) == len(want)  # nothing was committed twice


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """The agent in its own process, returned once it says it is following its files
    (its signal handlers are in place then)."""
    before = log.read_bytes().count(b"following") if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "auditkeep", "agent", "run", "--config",
                                 str(config), "--log-level", "warning"],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while log.read_bytes().count(b"following") <= before:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the agent did not start"
        time.sleep(0.02)
    return proc


def stop_agent(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(20)


@pytest.fixture
def in_process() -> Iterator[Callable[[Path], Agent]]:
    """Agents run in a thread of the test, with a real AuditClient."""
    running: list[tuple[Agent, Any, threading.Event, threading.Thread]] = []

    def start(config: Path) -> Agent:
        cfg = load_config(config)
        client = open_client(cfg)
        agent = Agent(cfg, client)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,))
        thread.start()
        running.append((agent, client, stop, thread))
        return agent

    yield start
    for agent, client, stop, thread in running:
        stop.set()
        thread.join(10)
        agent.close()
        client.close(5)


def test_agent_killed_and_restarted_mid_stream(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    config = write_config(tmp_path, server.url, server.admin_token,
                          [{"path": str(path), "format": "json"}])
    agent_log = tmp_path / "agent.log"
    writer = Writer(path, 1200, app_line, per_ms=0.5)
    writer.start()
    first = start_agent(config, agent_log)
    time.sleep(1.0)
    assert stop_agent(first, signal.SIGKILL) == -signal.SIGKILL  # mid-stream, mid-batch
    time.sleep(0.3)  # lines keep coming while no agent runs
    second = start_agent(config, agent_log)
    time.sleep(0.8)
    assert stop_agent(second) == 0
    third = start_agent(config, agent_log)
    writer.join()
    try:
        assert_stored_exactly_once(server, expected_ids(writer.lines), action="agent.e2e")
    finally:
        assert stop_agent(third) == 0, agent_log.read_text()
    res = CliRunner().invoke(cli, ["agent", "status", "--state", str(tmp_path / "state"),
                                         "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert status["running"] is False
    assert status["counters"]["invalid"] == 0
    (f,) = status["files"]
    assert f["lag_bytes"] == 0 and f["line"] == 1200


def test_a_server_outage_loses_and_repeats_nothing(data_dir: DataDir, tmp_path: Path,
                                                   in_process: Callable[[Path], Agent]
                                                   ) -> None:
    port = free_port()
    server = start_server(data_dir, port=port)
    path = tmp_path / "app.jsonl"
    config = write_config(tmp_path, server.url, server.admin_token,
                          [{"path": str(path), "format": "json"}])
    writer = Writer(path, 1500, app_line, per_ms=0.5)
    writer.start()
    agent = in_process(config)
    try:
        time.sleep(0.7)
        server.stop()  # the outage: lines go on being read and spooled
        time.sleep(1.5)
        server = start_server(data_dir, port=port)
        writer.join()
        assert_stored_exactly_once(server, expected_ids(writer.lines), action="agent.e2e")
        wait_for(lambda: agent.status()["counters"]["sent"] >= 1500)  # rewritten each second
        counters = agent.status()["counters"]
        assert counters["retried"] > 0
        assert counters["read"] == counters["events"] == 1500
        assert counters["dropped"] == counters["invalid"] == 0
    finally:
        server.stop()


def k8s_lines() -> list[dict[str, Any]]:
    return [json.loads(x) for x in K8S_SAMPLES.read_text().splitlines()]


def test_rotation_while_tailing(server: ServerProcess, tmp_path: Path,
                                in_process: Callable[[Path], Agent]) -> None:
    path = tmp_path / "audit.log"
    samples = k8s_lines()

    def make(i: int) -> bytes:
        obj = dict(samples[i % len(samples)])
        obj["auditID"] = str(uuid.UUID(int=i + 1))
        return orjson.dumps(obj)

    config = write_config(tmp_path, server.url, server.admin_token,
                          [{"path": str(path), "format": "k8s-audit"}], rotate_wait=0.5)
    writer = Writer(path, 1000, make, per_ms=0.5, rotate_every=170)
    writer.start()
    agent = in_process(config)
    writer.join()
    want: set[str] = set()
    for line in writer.lines:
        event = map_event(orjson.loads(line))
        if event is not None:  # ResponseStarted events are not kept
            want.add(event["id"])
    assert writer.rotations >= 5
    assert_stored_exactly_once(server, want)

    # A copytruncate once the agent has caught up (it loses, by design, whatever a
    # follower has not read before the truncation).
    wait_for(lambda: agent.status()["files"][0]["lag_bytes"] == 0)
    shutil.copy(path, tmp_path / "audit.log.copy")
    with open(path, "r+b") as f:
        f.truncate(0)
    extra = [make(5000 + i) for i in range(20)]
    with open(path, "ab") as f:
        f.write(b"".join(x + b"\n" for x in extra))
    for line in extra:
        event = map_event(orjson.loads(line))
        if event is not None:
            want.add(event["id"])
    assert_stored_exactly_once(server, want)
    wait_for(lambda: agent.status()["files"][0]["truncations"] == 1)
    (status,) = agent.status()["files"]
    assert status["rotations"] == writer.rotations and status["truncations"] == 1
    assert agent.status()["counters"]["invalid"] == 0
