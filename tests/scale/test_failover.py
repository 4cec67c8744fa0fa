"""Scale-out under failure, with real processes: PostgreSQL, NATS JetStream, ingest
nodes and sequencers (`serve --role …`), killed and paused while clients send.

What must hold every time: no acknowledged event is lost, none is stored twice, the
log has no seq gap, no two signed checkpoints of one size have different roots, and
`auditkeep verify` passes on the PostgreSQL store.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from nats.js.api import StreamInfo

from auditkeep.datadir import DataDir
from auditkeep.storage.open import open_store
from tests.bus.test_client import NATS_SERVER, PrivateNats
from tests.cli.test_cli import ak
from tests.conftest import ServerProcess, start_server
from tests.services import missing

LEASE_TTL = 2.0


class Cluster:
    def __init__(self, data: DataDir, pg_url: str, nats_url: str, stream: str) -> None:
        self.data, self.pg_url, self.nats_url, self.stream = data, pg_url, nats_url, stream
        self.procs: list[ServerProcess] = []

    def start(self, role: str) -> ServerProcess:
        s = start_server(self.data, "--storage", self.pg_url, "--bus", self.nats_url,
                         "--bus-stream", self.stream, "--role", role,
                         "--lease-ttl", str(LEASE_TTL), "--ingest-workers", "0",
                         "--pii-scan-interval", "0")
        self.procs.append(s)
        return s

    def leader_pid(self, timeout: float = 20.0) -> int:
        """The pid in the lease holder's name (host:pid) of the default log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(self.pg_url) as c:
                row = c.execute("SELECT l.holder FROM leases l JOIN logs g ON g.id = l.log_id "
                                "WHERE g.name = 'default' AND l.expires > clock_timestamp()"
                                ).fetchone()
            if row is not None:
                pid = int(str(row[0]).rsplit(":", 1)[1])
                if any(p.proc.pid == pid and p.proc.poll() is None for p in self.procs):
                    return pid
            time.sleep(0.1)
        with psycopg.connect(self.pg_url) as c:
            leases = c.execute("SELECT l.holder, l.epoch, l.expires, clock_timestamp() "
                               "FROM leases l").fetchall()
        logs = {p.proc.pid: (p.proc.poll(), _tail(self.data.root.parent /
                                                  f"server-{p.url.rsplit(':', 1)[1]}.log"))
                for p in self.procs}
        raise AssertionError(f"no live leader for log default; leases {leases}; "
                             f"servers (pid: exit, log tail) {logs}")

    def by_pid(self, pid: int) -> ServerProcess:
        return next(p for p in self.procs if p.proc.pid == pid)

    def close(self) -> None:
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
                p.kill()


def _tail(path: Path, lines: int = 8) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, nats_url: str, bus_prefix: str) -> Iterator[Cluster]:
    c = Cluster(DataDir(tmp_path / "data"), pg_url, nats_url, bus_prefix)
    yield c
    c.close()  # bus_prefix deletes the stream


class Load:
    """Clients posting batches with their own ids to the ingest nodes, retrying each
    batch (same ids) until it is acknowledged; what was acknowledged is recorded."""

    def __init__(self, urls: list[str], token: str, clients: int = 3, batch: int = 20) -> None:
        self.urls, self.token, self.batch = urls, token, batch
        self.acked: set[str] = set()
        self.sent: set[str] = set()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def _run(self, k: int) -> None:
        with httpx.Client(timeout=40, headers={"Authorization": f"Bearer {self.token}"}) as c:
            while not self._stop.is_set():
                with self._lock:
                    ids = [f"ev-{next(self._ids)}" for _ in range(self.batch)]
                    self.sent.update(ids)
                body = b"\n".join(orjson.dumps({"id": i, "action": "orders.create",
                                                "outcome": "success",
                                                "actor": {"id": f"c{k}", "type": "service"}})
                                  for i in ids)
                for attempt in itertools.count():
                    url = self.urls[(k + attempt) % len(self.urls)]
                    try:
                        r = c.post(url + "/v1/events", content=body,
                                   headers={"Content-Type": "application/x-ndjson"})
                    except httpx.HTTPError:
                        time.sleep(0.2)
                        continue
                    if r.status_code in (200, 201):
                        got = {x["id"] for x in r.json()["receipts"]}
                        assert got == set(ids)
                        with self._lock:
                            self.acked.update(ids)
                        break
                    assert r.status_code in (202, 503), r.text
                    time.sleep(0.2)
                    if self._stop.is_set() and attempt > 200:
                        return


def _settle(cluster: Cluster, expect: set[str], timeout: float = 60.0) -> list[dict[str, object]]:
    """Wait until every id in `expect` is in the log; return the log's records."""
    store = open_store(cluster.pg_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            info = store.get_log("default")
            assert info is not None
            records = [orjson.loads(e) for b in store.read_bundles(info.id, 0, info.size)
                       for e in b.entries]
            if expect <= {str(r["id"]) for r in records} or time.monotonic() > deadline:
                return records
            time.sleep(0.5)
    finally:
        store.close()


def _check(cluster: Cluster, load: Load) -> None:
    records = _settle(cluster, load.acked)
    ids = [str(r["id"]) for r in records]
    assert [r["seq"] for r in records] == list(range(len(records))), "seq gap"
    assert len(ids) == len(set(ids)), "an event was stored twice"
    missing = load.acked - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert set(ids) <= load.sent
    with psycopg.connect(cluster.pg_url) as c:
        forks = c.execute("SELECT size FROM checkpoints GROUP BY log_id, size "
                          "HAVING count(DISTINCT root) > 1").fetchall()
    assert not forks, f"two signed checkpoints of one size differ: {forks}"
    r = ak("verify", "--data", str(cluster.data.root), "--storage", cluster.pg_url)
    assert r.returncode == 0, r.stdout + r.stderr


def _admin(cluster: Cluster) -> str:
    return cluster.data.admin_token.read_text().strip()


def test_sigkill_the_leader_repeatedly_under_load(cluster: Cluster) -> None:
    cluster.start("sequencer")
    cluster.start("sequencer")
    ingest = [cluster.start("ingest"), cluster.start("ingest")]
    with Load([s.url for s in ingest], _admin(cluster)) as load:
        for _ in range(3):
            time.sleep(2.0)
            leader = cluster.by_pid(cluster.leader_pid())
            with leader.client() as c:
                scale = c.get("/v1/status").json()["scale"]
            assert scale["role"] == "sequencer" and "default" in scale["leading"]
            before = len(load.acked)
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait(10)
            cluster.start("sequencer")  # two again: one leads, one stands by
            deadline = time.monotonic() + 20
            while len(load.acked) == before and time.monotonic() < deadline:
                time.sleep(0.1)  # the other took over and commits again
            assert len(load.acked) > before, "nobody took over"
        time.sleep(1.0)
    assert len(load.acked) > 0
    _check(cluster, load)


def test_sigkill_an_ingest_node_under_load(cluster: Cluster) -> None:
    cluster.start("sequencer")
    a, b = cluster.start("ingest"), cluster.start("ingest")
    with Load([a.url, b.url], _admin(cluster)) as load:
        for _ in range(2):
            time.sleep(1.5)
            victim = next(p for p in (a, b) if p.proc.poll() is None)
            victim.kill()
            time.sleep(0.5)
            replacement = cluster.start("ingest")
            load.urls = [p.url for p in cluster.procs
                         if p.proc.poll() is None and p in (a, b, replacement)] or load.urls
            a, b = (b, replacement) if victim is a else (a, replacement)
        time.sleep(1.0)
    _check(cluster, load)


def test_a_paused_leader_is_fenced_off_when_it_wakes(cluster: Cluster) -> None:
    cluster.start("sequencer")
    cluster.start("sequencer")
    ingest = cluster.start("ingest")
    with Load([ingest.url], _admin(cluster), clients=2) as load:
        time.sleep(1.5)
        first = cluster.leader_pid()
        os.kill(first, signal.SIGSTOP)  # mid-stream: it may hold messages it pulled
        time.sleep(LEASE_TTL * 2 + 1)
        second = cluster.leader_pid()
        assert second != first
        before = len(load.acked)
        time.sleep(2.0)
        assert len(load.acked) > before, "the new leader does not commit"
        os.kill(first, signal.SIGCONT)  # wakes past its lease: its late commits are refused
        time.sleep(3.0)
        assert cluster.leader_pid() == second, "the woken leader took the log back"
        woken = cluster.by_pid(first)
        log = (cluster.data.root.parent / f"server-{woken.url.rsplit(':', 1)[1]}.log")
        assert "lost the lease of log" in log.read_text(), "the woken leader did not stop"
    _check(cluster, load)
    with psycopg.connect(cluster.pg_url) as c:
        (epoch,) = c.execute("SELECT epoch FROM leases").fetchone() or (0,)
    assert epoch >= 2


@pytest.fixture
def restricted_nats(tmp_path: Path) -> Iterator[str]:
    """A NATS server of our own whose only user may not touch JetStream's API."""
    if not Path(NATS_SERVER).exists():
        missing("no nats-server binary to start a private NATS server")
    server = PrivateNats(tmp_path, """
authorization {
  users = [{ user: "auditor", password: "s3cret",
             permissions: { publish: { deny: ["$JS.API.>"] } } }]
}
""")
    server.start()
    yield server.url.replace("nats://", "nats://auditor:s3cret@")
    server.stop()


def test_restart_nats_repeatedly_under_load(tmp_path: Path, pg_url: str) -> None:
    if not Path(NATS_SERVER).exists():
        missing("no nats-server binary to start a private NATS server")
    nats_server = PrivateNats(tmp_path)  # our own: restarting it disturbs no other test
    nats_server.start()
    cluster = Cluster(DataDir(tmp_path / "data"), pg_url, nats_server.url, "AUDITKEEP")
    try:
        cluster.start("sequencer")
        ingest = cluster.start("ingest")
        with Load([ingest.url], _admin(cluster), clients=2) as load:
            for _ in range(2):
                time.sleep(1.5)
                nats_server.stop()
                time.sleep(1.0)  # ingest answers 503 meanwhile; clients retry
                nats_server.start()
                before = len(load.acked)
                deadline = time.monotonic() + 30
                while len(load.acked) == before and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert len(load.acked) > before, "nothing committed after NATS came back"
            time.sleep(1.0)
        _check(cluster, load)
    finally:
        cluster.close()
        nats_server.stop()


def test_bad_configuration_is_one_line_and_a_non_zero_exit(
        tmp_path: Path, pg_url: str, nats_url: str, restricted_nats: str) -> None:
    data = str(tmp_path / "d")
    cases = [
        ("--storage", pg_url, "--bus", restricted_nats, "--role", "ingest"),
        ("--storage", pg_url, "--bus", restricted_nats.replace("s3cret", "wrong"),
         "--role", "ingest"),
        ("--storage", "postgresql://postgres@127.0.0.1:1/postgres"),
        ("--storage", "postgresql://no_such_role_ak@127.0.0.1:5432/postgres"),
        ("--storage", pg_url, "--bus", "nats://127.0.0.1:1", "--role", "ingest"),
        ("--role", "sequencer"),
        ("--bus", nats_url),
        ("--storage", pg_url, "--bus", nats_url, "--bus-max-bytes", "8 parsecs"),
        ("--storage", pg_url, "--bus", nats_url, "--bus-max-bytes", "1KiB"),
    ]
    for args in cases:
        r = ak("serve", "--data", data, "--port", "0", *args)
        assert r.returncode != 0, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "s3cret" not in r.stderr  # never the password


def test_the_stream_is_made_with_the_size_limit_given(
        tmp_path: Path, pg_url: str, nats_url: str, bus_prefix: str) -> None:
    s = start_server(DataDir(tmp_path / "d"), "--storage", pg_url, "--bus", nats_url,
                     "--bus-stream", bus_prefix, "--bus-max-bytes", "48MiB", "--role",
                     "ingest", "--ingest-workers", "0", "--pii-scan-interval", "0")
    try:
        assert stream_info(nats_url, bus_prefix).config.max_bytes == 48 << 20
    finally:
        s.stop()


def stream_info(nats_url: str, stream: str) -> StreamInfo:
    import asyncio

    import nats

    async def run() -> StreamInfo:
        nc = await nats.connect(nats_url)
        try:
            return await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
    return asyncio.run(run())
