"""Leased sequencers: a holder that lost its lease neither signs nor commits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auditkeep.errors import FencedError
from auditkeep.log.keys import KeyRing
from auditkeep.log.lease import LeaseKeeper
from auditkeep.log.sequencer import Sequencer
from auditkeep.storage.base import Backend
from auditkeep.storage.memory import MemoryBackend
from auditkeep.storage.sqlite import SQLiteBackend
from tests.log.test_sequencer import pendings


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return MemoryBackend() if request.param == "memory" else SQLiteBackend(tmp_path / "t.db")


def leased(store: Backend, holder: str, ttl: float) -> tuple[Sequencer, LeaseKeeper]:
    ring = KeyRing(store, None)
    ring.ensure()
    info = store.open_log("t", "test/t")
    keeper = LeaseKeeper(store, info.id, holder, ttl)
    assert keeper.acquire()
    return Sequencer(store, store.get_log("t") or info, ring.signer, lease=keeper), keeper


def test_a_leased_commit_stores_its_bus_mark(store: Backend) -> None:
    seq, keeper = leased(store, "a", 30.0)
    seq.submit(pendings(3), mark=7).result(5)
    seq.submit(pendings(2), mark=9).result(5)
    info = store.get_log("t")
    assert info is not None and (info.size, info.bus_seq) == (5, 9)
    seq.close()
    keeper.stop()


def test_a_holder_whose_lease_passed_on_is_refused_and_stores_nothing(store: Backend) -> None:
    seq, keeper = leased(store, "a", 0.4)
    seq.submit(pendings(2)).result(5)
    time.sleep(0.5)  # a's lease lapses (never renewed: a is "paused")
    other = LeaseKeeper(store, keeper.log_id, "b", 30.0)
    assert other.acquire() and other.epoch == keeper.epoch + 1
    before = store.get_log("t")
    with pytest.raises(FencedError):
        seq.submit(pendings(2)).result(5)
    after = store.get_log("t")
    assert before is not None and after is not None
    assert (after.size, after.root) == (before.size, before.root)
    assert max(c.size for c in store.checkpoints(after.id)) <= 2  # nothing of the refused one


def test_the_store_refuses_a_stale_fence_even_if_the_holder_thinks_it_is_valid(
        store: Backend) -> None:
    seq, keeper = leased(store, "a", 30.0)
    seq.submit(pendings(1)).result(5)
    stale = keeper.current
    assert stale is not None
    store.release_lease(stale)
    other = LeaseKeeper(store, keeper.log_id, "b", 30.0)
    assert other.acquire()
    with pytest.raises(FencedError):  # the keeper's local clock says valid; the store does not
        seq.submit(pendings(1)).result(5)
    assert seq.fenced
    with pytest.raises(FencedError):
        seq.submit(pendings(1))
    info = store.get_log("t")
    assert info is not None and info.size == 1


def test_a_keeper_renews_and_a_second_holder_waits(store: Backend) -> None:
    lost: list[bool] = []
    a = LeaseKeeper(store, store.open_log("t", "test/t").id, "a", 0.6,
                    on_lost=lambda: lost.append(True))
    assert a.acquire()
    a.start()
    b = LeaseKeeper(store, a.log_id, "b", 0.6)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert not b.acquire()
        assert a.valid() or not lost
        time.sleep(0.1)
    first = a.epoch
    a.stop()  # releases: b takes it at once
    assert b.acquire() and b.epoch == first + 1 and not lost


def test_leased_work_runs_in_one_process_at_a_time_and_moves_on(store: Backend) -> None:
    from auditkeep.log.lease import LeasedWork

    running: dict[str, bool] = {"a": False, "b": False}

    def work(name: str) -> LeasedWork:
        return LeasedWork(store, name, 0.6, lambda: running.__setitem__(name, True),
                          lambda: running.__setitem__(name, False))

    a, b = work("a"), work("b")
    a.start()
    deadline = time.monotonic() + 3
    while not running["a"] and time.monotonic() < deadline:
        time.sleep(0.05)
    b.start()
    time.sleep(1.0)
    assert running == {"a": True, "b": False}
    a.stop()  # releases: b takes over within a renewal period
    deadline = time.monotonic() + 3
    while not running["b"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running == {"a": False, "b": True}
    b.stop()
    assert running["b"] is False
