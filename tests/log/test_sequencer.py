"""The sequencer on the in-memory backend: group commit, idempotency, pushback, checkpoints."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from auditkeep.errors import ConflictError, Pushback, StorageError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.keys import KeyRing
from auditkeep.log.sequencer import Sequencer
from auditkeep.pipeline.prepare import Pending, prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.storage.memory import MemoryBackend


def pendings(n: int, start: int = 0, ids: bool = False, outcome: str = "success"
             ) -> list[Pending]:
    body = orjson.dumps([{"action": "a.b", "actor": {"id": f"u{i}", "type": "user"},
                          "outcome": outcome, **({"id": f"e{i}"} if ids else {})}
                         for i in range(start, start + n)])
    return prepare(decode_events(body, ndjson=False), tenant="t", submitter="tok",
                   may_set_tenant=False)


@pytest.fixture
def store() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def ring(store: MemoryBackend) -> KeyRing:
    r = KeyRing(store, None)
    r.ensure()
    return r


def make(store: MemoryBackend, ring: KeyRing, **opts: object) -> Sequencer:
    return Sequencer(store, store.open_log("t", "test/t"), ring.signer, **opts)  # type: ignore[arg-type]


@pytest.fixture(params=[False, True], ids=["inline", "pipeline"])
def seq(store: MemoryBackend, ring: KeyRing, request: pytest.FixtureRequest
        ) -> Iterator[Sequencer]:
    s = make(store, ring, pipeline=request.param)
    yield s
    s.close()


class TestAppend:
    def test_concurrent_requests_get_consecutive_seqs_and_a_covering_checkpoint(
            self, seq: Sequencer, ring: KeyRing) -> None:
        futures = [seq.submit(pendings(10, 10 * k)) for k in range(20)]
        results = [f.result(10) for f in futures]
        seqs = sorted(r.seq for res in results for r in res.receipts)
        assert seqs == list(range(200))
        verifier = ring.published()[0].verifier("test/t")
        for res in results:
            cp, _ = open_checkpoint(res.checkpoint, [verifier])
            assert cp.size >= max(r.seq for r in res.receipts) + 1
            r = res.receipts[0]
            proof = merkle.inclusion_proof(r.seq, cp.size,
                                           lambda c: seq._store.read_nodes(seq.info.id, c))
            merkle.verify_inclusion(r.leaf_hash, r.seq, cp.size, proof, cp.root)

    def test_a_restarted_sequencer_continues_the_same_tree(
            self, store: MemoryBackend, ring: KeyRing) -> None:
        s = make(store, ring)
        s.submit(pendings(5)).result(10)
        root = s._tree.root()
        s.close()
        again = make(store, ring)
        try:
            assert again.size == 5
            assert again._tree.root() == root
            assert again.submit(pendings(1, 5)).result(10).receipts[0].seq == 5
        finally:
            again.close()


class TestIdempotency:
    def test_duplicates_in_one_commit_and_across_commits(self, seq: Sequencer) -> None:
        first = seq.submit(pendings(3, ids=True)).result(10)
        again = seq.submit(pendings(3, ids=True)).result(10)
        assert [r.duplicate for r in again.receipts] == [True, True, True]
        assert [(r.seq, r.leaf_hash) for r in again.receipts] == [
            (r.seq, r.leaf_hash) for r in first.receipts]
        assert seq.size == 3

    def test_conflict_fails_only_that_request(self, seq: Sequencer) -> None:
        seq.submit(pendings(1, ids=True)).result(10)
        bad = seq.submit(pendings(1, ids=True, outcome="failure"))
        good = seq.submit(pendings(2, 100, ids=True))
        with pytest.raises(ConflictError, match="sha256"):
            bad.result(10)
        assert [r.seq for r in good.result(10).receipts] == [1, 2]


class GatedStore(MemoryBackend):
    """A backend whose appends wait for the test, and fail when it says so."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.go = threading.Semaphore(0)
        self.fail_next = False
        self.gated = False

    def append(self, commit):  # type: ignore[no-untyped-def]
        if self.gated:
            self.entered.release()
            assert self.go.acquire(timeout=10)
        if self.fail_next:
            self.fail_next = False
            raise StorageError("disk full")
        super().append(commit)


class TestPipeline:
    """With `pipeline`, the next commit is planned while the previous one is made durable."""

    @pytest.fixture
    def gated(self) -> GatedStore:
        return GatedStore()

    def start(self, gated: GatedStore) -> Sequencer:
        r = KeyRing(gated, None)
        r.ensure()
        s = make(gated, r, pipeline=True)  # type: ignore[arg-type]
        gated.gated = True
        return s

    def test_a_failed_commit_fails_only_its_requests_and_the_next_is_replanned(
            self, gated: GatedStore) -> None:
        s = self.start(gated)
        try:
            first = s.submit(pendings(3))
            assert gated.entered.acquire(timeout=10)  # first is in the backend
            second = s.submit(pendings(2, 3))  # planned on top of first, seqs 3 and 4
            time.sleep(0.2)
            assert not second.done()  # nothing answered before its own commit
            gated.fail_next = True
            gated.go.release()
            with pytest.raises(StorageError, match="disk full"):
                first.result(10)
            assert gated.entered.acquire(timeout=10)
            gated.go.release()
            assert [r.seq for r in second.result(10).receipts] == [0, 1]  # no gap
            assert s.size == 2 and gated.get_log("t").size == 2  # type: ignore[union-attr]
        finally:
            gated.gated = False
            gated.go.release()
            s.close()

    def test_a_retry_of_an_event_still_in_flight_is_a_duplicate(
            self, gated: GatedStore) -> None:
        s = self.start(gated)
        try:
            first = s.submit(pendings(2, ids=True))
            assert gated.entered.acquire(timeout=10)
            retry = s.submit(pendings(2, ids=True))
            mixed = s.submit(pendings(1, 1, ids=True, outcome="failure"))  # conflicts
            time.sleep(0.2)
            assert not retry.done() and not mixed.done()  # first is not durable yet
            gated.go.release()  # (nothing new in the second commit: no append)
            got, again = first.result(10), retry.result(10)
            assert [(r.seq, r.leaf_hash, r.duplicate) for r in again.receipts] == [
                (r.seq, r.leaf_hash, True) for r in got.receipts]
            with pytest.raises(ConflictError, match="seq 1"):
                mixed.result(10)
            assert s.size == 2
        finally:
            gated.gated = False
            gated.go.release()
            s.close()

    def test_a_conflict_with_a_commit_that_then_fails_is_no_conflict(
            self, gated: GatedStore) -> None:
        s = self.start(gated)
        try:
            first = s.submit(pendings(1, ids=True))
            assert gated.entered.acquire(timeout=10)
            other = s.submit(pendings(1, ids=True, outcome="failure"))  # same id as first
            time.sleep(0.2)
            gated.fail_next = True
            gated.go.release()
            with pytest.raises(StorageError):
                first.result(10)
            assert gated.entered.acquire(timeout=10)
            gated.go.release()
            assert [(r.seq, r.duplicate) for r in other.result(10).receipts] == [(0, False)]
        finally:
            gated.gated = False
            gated.go.release()
            s.close()


class TestPushback:
    def test_a_full_queue_refuses_with_pushback_and_stores_nothing_of_it(
            self, store: MemoryBackend, ring: KeyRing) -> None:
        gate = threading.Event()
        original = store.append

        def slow_append(commit):  # type: ignore[no-untyped-def]
            gate.wait(10)
            original(commit)

        store.append = slow_append  # type: ignore[method-assign]
        s = make(store, ring, max_pending=10)
        try:
            first = s.submit(pendings(5))      # taken by the writer, blocked in append
            import time

            time.sleep(0.1)
            queued = s.submit(pendings(8, 5))  # waits in the queue
            with pytest.raises(Pushback) as exc:
                s.submit(pendings(5, 20))
            assert exc.value.retry_after >= 1
            gate.set()
            first.result(10)
            queued.result(10)
            assert s.size == 13
            assert s.stats.rejected_pushback == 5
        finally:
            gate.set()
            s.close()


class TestCheckpoints:
    def test_checkpoints_are_persisted_every_n_entries(self, store: MemoryBackend,
                                                       ring: KeyRing) -> None:
        s = make(store, ring, checkpoint_every=10, checkpoint_interval=3600.0)
        try:
            for k in range(5):
                s.submit(pendings(4, 4 * k)).result(10)
            sizes = [c.size for c in store.checkpoints(s.info.id)]
            assert sizes[0] == 0  # the empty tree, signed at start
            assert all(b - a >= 10 for a, b in itertools.pairwise(sizes[1:]))
            assert 12 in sizes
        finally:
            s.close()
        assert store.checkpoints(s.info.id)[-1].size == 20  # persisted on close

    def test_idle_checkpoint_is_persisted_within_the_interval(
            self, store: MemoryBackend, ring: KeyRing) -> None:
        s = make(store, ring, checkpoint_every=10_000, checkpoint_interval=0.2)
        try:
            s.submit(pendings(3)).result(10)
            import time

            deadline = time.monotonic() + 3
            while store.checkpoints(s.info.id)[-1].size != 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            s.close()
