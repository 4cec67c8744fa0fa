"""The witness server refuses rollbacks, forks, unknown logs and malformed requests as
c2sp.org/tlog-witness says, and cosigns what extends its view."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from auditkeep.storage.base import Backend
from auditkeep.storage.memory import MemoryBackend
from auditkeep.storage.sqlite import SQLiteBackend
from auditkeep.witness.cosignature import WitnessSigner
from auditkeep.witness.server import SIZE_TYPE, Witness, witness_app
from tests.witness.conftest import FakeLog

NOW = 1_760_000_000


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    s: Backend
    if request.param == "memory":
        s = MemoryBackend()
    elif request.param == "sqlite":
        s = SQLiteBackend(str(tmp_path / "witness.db"))
    else:
        from auditkeep.storage.postgres import PostgresBackend

        s = PostgresBackend(request.getfixturevalue("pg_url"))
    yield s
    s.close()


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def signer() -> WitnessSigner:
    return WitnessSigner.generate("witness.test/w1")


@pytest.fixture
def witness(signer: WitnessSigner, log: FakeLog, store: Backend) -> Witness:
    return Witness(signer, [log.signer.verifier()], store, clock=lambda: NOW)


class TestAddCheckpoint:
    def test_first_checkpoint_with_old_0_is_cosigned(self, witness: Witness, log: FakeLog,
                                                     signer: WitnessSigner) -> None:
        answer = witness.add_checkpoint(log.body(0, 5))
        assert answer.status == 200
        assert signer.verifier().verify(log.note(5) + answer.body) == NOW
        assert witness.store.witness_head(log.origin) == (5, log.root(5))

    def test_a_consistent_extension_is_cosigned(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 5)).status == 200
        answer = witness.add_checkpoint(log.body(5, 13))
        assert answer.status == 200, answer.body
        assert witness.store.witness_head(log.origin) == (13, log.root(13))

    def test_the_same_checkpoint_again_is_cosigned(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 5)).status == 200
        assert witness.add_checkpoint(log.body(5, 5)).status == 200

    def test_rollback_is_409_with_the_witness_size(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 8)).status == 200
        # A client that thinks the witness is at 0 or 3 is told 8, as text/x.tlog.size.
        for old, size in ((0, 3), (3, 5), (0, 8)):
            answer = witness.add_checkpoint(log.body(old, size))
            assert (answer.status, answer.body, answer.content_type) == (409, "8\n", SIZE_TYPE)
        assert witness.store.witness_head(log.origin) == (8, log.root(8))

    def test_a_fork_with_a_bad_proof_is_422(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 5)).status == 200
        fork = FakeLog(prefix="other")  # same origin and key, another tree
        answer = witness.add_checkpoint(fork.body(5, 9))
        assert answer.status == 422 and "does not verify" in answer.body
        # Nor does the honest log's proof fit the fork's checkpoint.
        answer = witness.add_checkpoint(log.body(5, 9, note=fork.note(9)))
        assert answer.status == 422
        assert witness.store.witness_head(log.origin) == (5, log.root(5))

    def test_same_size_other_root_is_409(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 5)).status == 200
        answer = witness.add_checkpoint(FakeLog(prefix="other").body(5, 5))
        assert answer.status == 409 and "forked" in answer.body

    def test_unknown_origin_is_404(self, witness: Witness) -> None:
        stranger = FakeLog(origin="example.test/unknown")
        assert witness.add_checkpoint(stranger.body(0, 2)).status == 404

    def test_known_origin_other_key_is_403(self, witness: Witness, log: FakeLog) -> None:
        impostor = FakeLog(seed=b"\x09" * 32)  # same origin, a key the witness does not know
        answer = witness.add_checkpoint(impostor.body(0, 2))
        assert answer.status == 403
        assert witness.store.witness_head(log.origin) is None

    def test_a_nonempty_proof_from_0_is_422(self, witness: Witness, log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(0, 4, proof=[b"\0" * 32])).status == 422

    @pytest.mark.parametrize(("body", "says"), [
        (b"old 01\n\n", "leading zeros"),
        (b"old -1\n\n", "'old <size>'"),
        (b"new 0\n\n", "'old <size>'"),
        (b"old 0\n", "no empty line"),
        (b"old 0\nnot base64!\n\n", "not base64"),
        (b"old 0\n" + base64.b64encode(b"x" * 31) + b"\n\n", "31 bytes"),
        (b"old 0\n" + (base64.b64encode(b"x" * 32) + b"\n") * 64 + b"\n", "at most 63"),
        (b"old 0\n\nnot a checkpoint\n", "checkpoint"),
        (b"\xff\xfe", "not UTF-8"),
    ])
    def test_malformed_requests_are_400(self, signer: WitnessSigner, log: FakeLog, body: bytes,
                                        says: str) -> None:
        # Refused before any state is read: one backend is enough.
        witness = Witness(signer, [log.signer.verifier()], MemoryBackend())
        answer = witness.add_checkpoint(body)
        assert answer.status == 400
        assert says.lower() in answer.body.lower()

    def test_old_larger_than_the_checkpoint_is_400(self, witness: Witness,
                                                   log: FakeLog) -> None:
        assert witness.add_checkpoint(log.body(6, 4, proof=[])).status == 400

    def test_concurrent_adds_from_one_old_size_one_wins(self, signer: WitnessSigner,
                                                        log: FakeLog, store: Backend) -> None:
        barrier = threading.Barrier(2)
        reads = iter(range(2))

        class Racing:  # both requests read the head before either writes it
            def __getattr__(self, name: str) -> object:
                return getattr(store, name)

            def witness_head(self, origin: str) -> tuple[int, bytes] | None:
                head = store.witness_head(origin)
                if next(reads, None) is not None:  # the first read of each request
                    barrier.wait(5)
                return head

        w = Witness(signer, [log.signer.verifier()], Racing(), clock=lambda: NOW)  # type: ignore[arg-type]
        bodies = [log.body(0, 4), log.body(0, 7)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(w.add_checkpoint, bodies))
        statuses = sorted(a.status for a in answers)
        assert statuses == [200, 409]
        won = 4 if answers[0].status == 200 else 7
        assert store.witness_head(log.origin) == (won, log.root(won))
        lost = next(a for a in answers if a.status == 409)
        assert lost.body == f"{won}\n"


class TestHTTP:
    def test_the_app_speaks_the_protocol(self, witness: Witness, log: FakeLog,
                                         signer: WitnessSigner) -> None:
        import asyncio

        async def run() -> None:
            transport = httpx.ASGITransport(app=witness_app(witness))
            async with httpx.AsyncClient(transport=transport, base_url="http://w") as c:
                assert (await c.get("/healthz")).text == "ok\n"
                ok = await c.post("/add-checkpoint", content=log.body(0, 3))
                assert ok.status_code == 200
                assert signer.verifier().verify(log.note(3) + ok.text) == NOW
                conflict = await c.post("/add-checkpoint", content=log.body(0, 3))
                assert conflict.status_code == 409
                assert conflict.headers["content-type"].startswith(SIZE_TYPE)
                assert conflict.text == "3\n"
                big = await c.post("/add-checkpoint", content=b"x" * (65 << 10))
                assert big.status_code == 413
                assert (await c.get("/add-checkpoint")).status_code == 405

        # On its own thread: Playwright's sync API (tests/ui) keeps an event loop
        # running on the main thread for the rest of the session.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()
