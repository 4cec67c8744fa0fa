"""Several sequencer processes on one log: one leads, another takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditkeep.bus import BusAppender, BusSequencers
from auditkeep.bus.client import Bus
from auditkeep.log.service import LogService
from auditkeep.storage.sqlite import SQLiteBackend
from tests.bus.conftest import eventually, log_service
from tests.bus.test_end_to_end import stored_ids
from tests.log.test_sequencer import pendings
from tests.services import TEST_STREAM_BYTES


@pytest.fixture
def appender(bus: Bus, logs: LogService) -> Iterator[BusAppender]:
    a = BusAppender(bus, logs.store, origin=logs.origin, reply_wait=1.0, deadline=20.0)
    yield a
    a.close()


def test_one_of_two_leads_and_the_other_takes_over_when_it_stops(
        bus: Bus, make_bus: Callable[[], Bus], appender: BusAppender, logs: LogService,
        store: SQLiteBackend, keys: Path) -> None:
    logs_b = log_service(SQLiteBackend(store.path), keys)
    a = BusSequencers(bus, logs, "host-a:1", lease_ttl=1.0, scan_interval=0.05)
    b = BusSequencers(make_bus(), logs_b, "host-b:2", lease_ttl=1.0, scan_interval=0.05)
    a.start()
    b.start()
    try:
        first = appender.append("acme", pendings(2)).result(30)
        leaders = [s for s in (a, b) if s.leading() == ["acme"]]
        assert len(leaders) == 1 and not any(
            s.leading() for s in (a, b) if s is not leaders[0])
        leader, standby = leaders[0], (b if leaders[0] is a else a)
        leader.stop()  # releases the lease: the standby takes it at its next scan
        eventually(lambda: standby.leading() == ["acme"], timeout=10)
        second = appender.append("acme", pendings(3)).result(30)
        assert [r.seq for r in first.receipts + second.receipts] == [0, 1, 2, 3, 4]
        info = store.get_log("acme")
        assert info is not None and (info.size, info.bus_seq) == (5, 2)
    finally:
        a.stop()
        b.stop()
        logs_b.close()
        logs_b.store.close()


_LEADER = textwrap.dedent("""
    import sys, time
    from auditkeep.bus import Bus, BusSequencers
    from auditkeep.log.keys import KeyRing
    from auditkeep.log.service import LogService
    from auditkeep.storage.sqlite import SQLiteBackend

    url, stream, db, keys = sys.argv[1:5]
    store = SQLiteBackend(db)
    ring = KeyRing(store, __import__("pathlib").Path(keys))
    ring.ensure()
    bus = Bus(url, stream=stream, prefix=stream.lower(), max_bytes=int(sys.argv[5]))
    bus.connect()
    seqs = BusSequencers(bus, LogService(store, ring, origin_prefix="bus.test"), "killed:1",
                         lease_ttl=1.0, scan_interval=0.05)
    seqs.start()
    while seqs.leading() != ["acme"]:
        time.sleep(0.02)
    print("leading", flush=True)
    time.sleep(600)
""")


def test_a_killed_leader_is_replaced_after_its_lease_lapses_with_no_gap_or_repeat(
        bus: Bus, appender: BusAppender, logs: LogService, store: SQLiteBackend, keys: Path,
        nats_url: str, bus_prefix: str) -> None:
    store.open_log("acme", logs.origin("acme"))
    logs.keys.ensure()
    proc = subprocess.Popen([sys.executable, "-c", _LEADER, nats_url, bus_prefix,
                             str(store.path), str(keys), str(TEST_STREAM_BYTES)],
                            stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": "src"})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"leading\n"
        one = pendings(2)
        appender.append("acme", one).result(30)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Accepted while nobody leads: the next leader commits them.
        two, three = pendings(3), pendings(1)
        appender.accept("acme", two).result(10)
        appender.accept("acme", three).result(10)
        standby = BusSequencers(bus, logs, "standby:2", lease_ttl=1.0, scan_interval=0.05)
        standby.start()
        try:
            eventually(lambda: stored_ids(store, "acme") == [p.id for p in one + two + three])
            info = store.get_log("acme")
            assert info is not None and info.bus_seq == 3
        finally:
            standby.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_paused_leader_that_wakes_after_a_takeover_commits_nothing(
        bus: Bus, appender: BusAppender, logs: LogService, store: SQLiteBackend, keys: Path,
        nats_url: str, bus_prefix: str) -> None:
    store.open_log("acme", logs.origin("acme"))
    logs.keys.ensure()
    proc = subprocess.Popen([sys.executable, "-c", _LEADER, nats_url, bus_prefix,
                             str(store.path), str(keys), str(TEST_STREAM_BYTES)],
                            stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": "src"})
    standby = BusSequencers(bus, logs, "standby:3", lease_ttl=1.0, scan_interval=0.05)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"leading\n"
        one = pendings(2)
        appender.append("acme", one).result(30)
        os.kill(proc.pid, signal.SIGSTOP)  # a long GC pause, a stalled VM
        standby.start()
        eventually(lambda: standby.leading() == ["acme"], timeout=10)
        two = pendings(3)
        appender.append("acme", two).result(30)
        os.kill(proc.pid, signal.SIGCONT)  # wakes believing it leads, for a moment
        three = pendings(2)
        appender.append("acme", three).result(30)
        assert stored_ids(store, "acme") == [p.id for p in one + two + three]
        info = store.get_log("acme")
        assert info is not None and info.bus_seq == 3
    finally:
        standby.stop()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
