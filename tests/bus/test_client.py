"""The connection: one-line ConfigErrors at start, Pushback instead of a drop later."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditkeep.bus import BusAppender, BusSequencers
from auditkeep.bus.client import Bus
from auditkeep.errors import ConfigError, Pushback
from auditkeep.log.service import LogService
from tests.log.test_sequencer import pendings
from tests.services import missing

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateNats:
    """A nats-server of the test's own, to stop, restart and configure."""

    def __init__(self, tmp: Path, config: str = "") -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.conf = tmp / "nats.conf"
        self.conf.write_text(f'listen: "127.0.0.1:{self.port}"\n'
                             f'jetstream {{ store_dir: "{tmp / "js"}" }}\n{config}')
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([NATS_SERVER, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[Callable[[str], PrivateNats]]:
    if not Path(NATS_SERVER).exists():
        missing("no nats-server binary to start a private NATS server")
    started: list[PrivateNats] = []

    def make(config: str = "") -> PrivateNats:
        server = PrivateNats(tmp_path, config)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


class TestStart:
    def test_an_unreachable_server_is_one_line(self) -> None:
        port = free_port()
        bus = Bus(f"nats://127.0.0.1:{port}", connect_timeout=1)
        try:
            with pytest.raises(ConfigError) as caught:
                bus.connect()
        finally:
            bus.close()
        assert str(caught.value) == (f"cannot reach NATS at nats://127.0.0.1:{port}: "
                                     "connection refused")

    def test_a_stream_nats_will_not_let_us_create_is_one_line(
            self, private_nats: Callable[[str], PrivateNats]) -> None:
        server = private_nats("""
            authorization { users = [ { user: "ingest", password: "pw", permissions: {
                publish: { deny: ["$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>"] } } } ] }
        """)
        bus = Bus(f"nats://ingest:pw@127.0.0.1:{server.port}", stream="DENIED",
                  connect_timeout=2)
        try:
            with pytest.raises(ConfigError) as caught:
                bus.connect()
        finally:
            bus.close()
        text = str(caught.value)
        assert text.startswith("NATS refused to create stream DENIED: ")
        assert "ermissions" in text and "\n" not in text and "pw" not in text

    def test_a_limit_jetstream_cannot_reserve_is_one_line_that_says_what_to_lower(
            self, make_bus: Callable[..., Bus]) -> None:
        with pytest.raises(ConfigError) as caught:
            make_bus(max_bytes=1 << 60)  # an exbibyte: no disk here has that free
        text = str(caught.value)
        assert "insufficient storage" in text and "(code 10047)" in text, text
        assert "(1048576 TiB)" in text and "lower --bus-max-bytes" in text, text
        assert "\n" not in text

    def test_an_existing_stream_is_updated_to_the_settings(
            self, make_bus: Callable[..., Bus]) -> None:
        make_bus(max_bytes=1 << 20)
        bus = make_bus(max_bytes=2 << 20)
        info = bus.call(bus.js.stream_info(bus.settings.stream)).result(10)
        assert info.config.max_bytes == 2 << 20
        assert info.config.discard == "new" and not info.config.max_age


class TestPushback:
    def test_a_full_stream_refuses_with_pushback(
            self, make_bus: Callable[..., Bus], logs: LogService) -> None:
        bus = make_bus(max_bytes=8192)
        appender = BusAppender(bus, logs.store, origin=logs.origin)
        refused: Pushback | None = None
        for _ in range(100):
            try:
                appender.accept("acme", pendings(3)).result(10)
            except Pushback as exc:
                refused = exc
                break
        assert refused is not None and "is full" in str(refused) and refused.retry_after > 0

    def test_nats_down_is_pushback_after_retrying_and_up_again_accepts(
            self, private_nats: Callable[[str], PrivateNats], logs: LogService) -> None:
        server = private_nats("")
        bus = Bus(server.url, stream="DOWN", publish_retry=1.5)
        bus.connect()
        appender = BusAppender(bus, logs.store, origin=logs.origin)
        try:
            assert appender.accept("acme", pendings(1)).result(10)
            server.stop()
            began = time.monotonic()
            with pytest.raises(Pushback, match="did not accept the events"):
                appender.accept("acme", pendings(1)).result(10)
            assert time.monotonic() - began >= 1.0
            server.start()  # the same store directory: the stream is still there
            sent = pendings(2)
            later = time.monotonic() + 15
            while True:
                try:
                    assert appender.accept("acme", sent).result(10) == [p.id for p in sent]
                    break
                except Pushback:
                    if time.monotonic() > later:
                        raise
            state = bus.call(bus.js.stream_info("DOWN")).result(10).state
            assert state.messages == 2
        finally:
            appender.close()
            bus.close()


def test_sequencers_read_on_after_nats_restarts(
        private_nats: Callable[[str], PrivateNats], logs: LogService) -> None:
    server = private_nats("")
    bus = Bus(server.url, stream="RESTART", publish_retry=15)
    bus.connect()
    appender = BusAppender(bus, logs.store, origin=logs.origin, reply_wait=1.0)
    seqs = BusSequencers(bus, logs, "host:7", lease_ttl=2.0, scan_interval=0.05)
    seqs.start()
    try:
        before = appender.append("acme", pendings(2)).result(30)
        server.stop()
        server.start()
        after = appender.append("acme", pendings(2)).result(40)
        assert [r.seq for r in before.receipts + after.receipts] == [0, 1, 2, 3]
        info = logs.store.get_log("acme")
        assert info is not None and (info.size, info.bus_seq) == (4, 2)
    finally:
        seqs.stop()
        appender.close()
        bus.close()
