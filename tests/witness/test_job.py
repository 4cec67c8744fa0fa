"""The witness job on a real SQLite node: pushes each log's newest checkpoint, keeps the
cosignature, recovers the witness's size from a 409, and reports refusals without
storing anything. The witness is the real `Witness`, reached through an httpx
transport that calls it in-process."""

from __future__ import annotations

from auditkeep.datadir import Node
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.storage.memory import MemoryBackend
from auditkeep.witness.cosignature import WitnessSigner, count_cosignatures
from auditkeep.witness.server import Witness
from auditkeep.witness.serving import cosigned_checkpoint
from tests.witness.conftest import append_events, default_id, log_verifiers, witness_job


class TestPush:
    def test_new_checkpoints_get_cosigned_and_served(self, node: Node,
                                                     signer: WitnessSigner) -> None:
        append_events(node, 5)
        job, transport = witness_job(node, signer)
        job.run_once()
        (c,) = node.store.cosignatures(default_id(node))
        assert (c.size, c.witness) == (5, "witness.test/w1")
        note = cosigned_checkpoint(node.logs, "default")
        assert count_cosignatures(note, [signer.verifier()]) == {"witness.test/w1"}
        open_checkpoint(note, log_verifiers(node))  # the log's own signature still opens
        assert transport.requests[0].startswith(b"old 0\n\n")

        append_events(node, 4, start=5)
        job.run_once()
        assert [c.size for c in node.store.cosignatures(default_id(node))] == [5, 9]
        assert transport.requests[-1].startswith(b"old 5\n")  # with a proof from 5
        status = job.status()[0]["logs"]["default"]
        assert (status["cosigned_size"], status["last_error"]) == (9, None)

    def test_nothing_new_means_no_request(self, node: Node, signer: WitnessSigner) -> None:
        append_events(node, 2)
        job, transport = witness_job(node, signer)
        job.run_once()
        job.run_once()
        assert len(transport.requests) == 1
        append_events(node, 1, start=2)
        job.pushers[0].step()  # within the interval: not yet
        assert len(transport.requests) == 1

    def test_a_409_is_retried_from_the_witness_size(self, node: Node,
                                                    signer: WitnessSigner) -> None:
        append_events(node, 3)
        witness = Witness(signer, log_verifiers(node), MemoryBackend())
        # The witness saw size 3 before (say, the cosignature rows were lost).
        cp3 = node.store.latest_checkpoint(default_id(node))
        assert cp3 is not None
        witness.store.set_witness_head(node.logs.origin("default"), 0, 3, cp3.root)
        append_events(node, 3, start=3)
        job, transport = witness_job(node, signer, witness)
        job.run_once()
        assert [r.split(b"\n")[0] for r in transport.requests] == [b"old 0", b"old 3"]
        assert [c.size for c in node.store.cosignatures(default_id(node))] == [6]

    def test_a_refusal_is_reported_and_stores_nothing(self, node: Node,
                                                      signer: WitnessSigner) -> None:
        append_events(node, 3)
        witness = Witness(signer, log_verifiers(node), MemoryBackend())
        witness.store.set_witness_head(node.logs.origin("default"), 0, 2, b"\1" * 32)  # a fork
        job, _ = witness_job(node, signer, witness)
        job.run_once()
        assert node.store.cosignatures(default_id(node)) == []
        st = job.status()[0]["logs"]["default"]
        assert st["witness_status"] == 422 and "does not verify" in st["last_error"]
        assert job.pushers[0].state["default"].next_try > 0  # backs off

    def test_a_down_witness_only_delays(self, node: Node, signer: WitnessSigner) -> None:
        append_events(node, 2)
        job, transport = witness_job(node, signer)
        transport.down = True
        job.run_once()
        assert "cannot reach" in job.status()[0]["logs"]["default"]["last_error"]
        append_events(node, 2, start=2)  # ingest goes on
        transport.down = False
        job.run_once()
        assert [c.size for c in node.store.cosignatures(default_id(node))] == [4]

    def test_a_cosignature_of_another_key_is_not_stored(self, node: Node,
                                                        signer: WitnessSigner) -> None:
        append_events(node, 2)
        job, _ = witness_job(node, signer, vkey=WitnessSigner.generate("witness.test/w1").vkey)
        job.run_once()
        assert node.store.cosignatures(default_id(node)) == []
        assert "no valid cosignature" in job.status()[0]["logs"]["default"]["last_error"]

    def test_only_the_listed_logs_are_pushed(self, node: Node, signer: WitnessSigner) -> None:
        append_events(node, 2)
        append_events(node, 3, tenant="acme")
        job, transport = witness_job(node, signer, logs=("acme",))
        job.run_once()
        # Only acme was pushed: this witness knows only the default log's origin (404).
        assert list(job.status()[0]["logs"]) == ["acme"]
        assert job.status()[0]["logs"]["acme"]["witness_status"] == 404
        assert len(transport.requests) == 1

    def test_the_thread_pushes_after_a_commit(self, node: Node, signer: WitnessSigner) -> None:
        import time

        job, _ = witness_job(node, signer)
        job.start()
        try:
            append_events(node, 3)
            deadline = time.monotonic() + 10
            while not node.store.cosignatures(default_id(node)):
                assert time.monotonic() < deadline, job.status()
                time.sleep(0.02)
        finally:
            job.close()


class TestServing:
    def test_size_and_witnessed_pick_the_checkpoint(self, node: Node,
                                                    signer: WitnessSigner) -> None:
        append_events(node, 4)
        job, _ = witness_job(node, signer)
        job.run_once()
        append_events(node, 4, start=4)
        verifiers = log_verifiers(node)
        latest = cosigned_checkpoint(node.logs, "default")
        assert open_checkpoint(latest, verifiers)[0].size == 8
        assert count_cosignatures(latest, [signer.verifier()]) == set()
        witnessed = cosigned_checkpoint(node.logs, "default", witnessed=True)
        assert open_checkpoint(witnessed, verifiers)[0].size == 4
        assert count_cosignatures(witnessed, [signer.verifier()]) == {"witness.test/w1"}
        # Any size in the tree, signed now if no stored checkpoint has it.
        assert open_checkpoint(cosigned_checkpoint(node.logs, "default", 6),
                               verifiers)[0].size == 6
