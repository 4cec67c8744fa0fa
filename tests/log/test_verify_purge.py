"""A log purged by retention: verify says "purged", not missing, proofs still verify, and
tampering around the purge is still caught."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.errors import PurgedError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.verify import LogReport, verify_log
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.storage.base import Purge, PurgedRange
from tests.log.tamper import Attacker

PURGED = [3, 4, 5, *range(50, 60)]


def append(n: Node, action: str) -> int:
    body = orjson.dumps([{"action": action, "actor": {"id": "retention", "type": "service"},
                          "outcome": "success", "category": "admin"}])
    pendings = prepare(decode_events(body, ndjson=False), tenant="default",
                       submitter="auditkeep.retention", may_set_tenant=True)
    return n.logs.append("default", pendings).result(10).receipts[0].seq


@pytest.fixture
def purged(data: DataDir) -> Iterator[Node]:
    """The populated log (120 entries) with a purge record at seq 120 and PURGED gone."""
    n = open_node(data, with_index=False, sequencer_options={"checkpoint_interval": 0.0})
    try:
        record = append(n, "auditkeep.retention.purge")
        info = n.logs.info("default")
        assert n.store.purge(Purge(info.id, PURGED, record)) == len(PURGED)
        n.logs.forget_bundles(info.id)
        yield n
    finally:
        n.close()


def report(n: Node) -> LogReport:
    info = n.store.get_log("default")
    assert info is not None
    verifiers = [k.verifier(info.origin) for k in n.logs.keys.published()]
    return verify_log(n.store, info, verifiers)


class TestVerify:
    def test_a_purged_log_verifies_and_names_its_ranges(self, purged: Node) -> None:
        r = report(purged)
        assert r.ok, r.findings
        assert r.entries == 121 and r.purged == len(PURGED)
        assert r.purged_ranges == [PurgedRange(3, 6, 120), PurgedRange(50, 60, 120)]

    def test_the_command_prints_them_as_purged(self, purged: Node, data: DataDir) -> None:
        purged.close()
        res = CliRunner().invoke(cli, ["verify", "--data", str(data.root)])
        assert res.exit_code == 0, res.output
        assert ("default: 13 entries purged by retention in 2 ranges: 3..5 (record seq 120), "
                "50..59 (record seq 120)") in res.output
        assert "missing" not in res.output and "deleted" not in res.output

    def test_a_changed_leaf_of_a_purged_entry_is_caught(self, purged: Node,
                                                        data: DataDir) -> None:
        a = Attacker(data)
        try:
            (tile,) = a.execute("SELECT hashes FROM tiles WHERE log_id=? AND level=0 AND idx=0",
                                a.log_id)[0]
            forged = bytearray(tile)
            forged[4 * 32] ^= 0x01
            a.execute("UPDATE tiles SET hashes=? WHERE log_id=? AND level=0 AND idx=0",
                      bytes(forged), a.log_id)
        finally:
            a.close()
        kinds = {f.kind for f in report(purged).findings}
        assert "checkpoint-mismatch" in kinds and "tile-mismatch" in kinds, kinds

    def test_an_empty_entry_without_a_purge_mark_is_deleted(self, purged: Node,
                                                            data: DataDir) -> None:
        a = Attacker(data)
        try:
            a.execute("DELETE FROM purged WHERE log_id=? AND first_seq=3", a.log_id)
        finally:
            a.close()
        found = [(f.kind, f.seq) for f in report(purged).findings]
        assert found == [("deleted", 3), ("deleted", 4), ("deleted", 5)], found
        assert "no retention record purged it" in str(report(purged).findings[0])

    def test_a_purge_naming_no_retention_record_is_unrecorded(self, purged: Node) -> None:
        info = purged.logs.info("default")
        purged.store.purge(Purge(info.id, [90], record_seq=7))  # seq 7: an ordinary event
        found = [(f.kind, f.seq) for f in report(purged).findings]
        assert found == [("purge-unrecorded", 7)], found

    def test_a_purge_mark_over_stored_bytes_is_unapplied(self, purged: Node,
                                                        data: DataDir) -> None:
        a = Attacker(data)
        try:
            a.execute("INSERT INTO purged (log_id, first_seq, end_seq, record_seq) "
                      "VALUES (?, 80, 82, 120)", a.log_id)
        finally:
            a.close()
        found = [(f.kind, f.seq) for f in report(purged).findings]
        assert found == [("purge-unapplied", 80), ("purge-unapplied", 81)], found

    def test_a_purged_purge_record_still_accounts_for_its_purge(self, purged: Node) -> None:
        info = purged.logs.info("default")
        later = append(purged, "auditkeep.retention.purge")
        purged.store.purge(Purge(info.id, [120], later))  # retention purged its own record
        r = report(purged)
        assert r.ok, r.findings
        assert r.purged_ranges[-1] == PurgedRange(120, 121, later)


class TestReads:
    def test_a_purged_entry_is_gone_with_its_record_seq(self, purged: Node) -> None:
        with pytest.raises(PurgedError) as info:
            purged.logs.entry("default", 4)
        assert (info.value.status, info.value.slug, info.value.record_seq) == (410, "purged",
                                                                                120)
        assert "seq 4" in info.value.detail and "'default'" in info.value.detail
        assert orjson.loads(purged.logs.entry("default", 6))["seq"] == 6

    def test_records_leave_purged_seqs_out(self, purged: Node) -> None:
        got = purged.logs.records("default", [2, 3, 4, 6, 50], personal=True)
        assert [r["seq"] for r in got] == [2, 6]
        assert got[0]["actor"]["email"] == "u2@example.com"  # personal values still filled

    def test_a_purge_is_never_served_from_cached_bundles(self, purged: Node) -> None:
        info = purged.logs.info("default")
        assert purged.logs.entry("default", 70)  # its bundle is cached now
        purged.store.purge(Purge(info.id, [70], 120))  # as another process would
        with pytest.raises(PurgedError):
            purged.logs.entry("default", 70)
        assert 70 not in [r["seq"] for r in purged.logs.records("default", [69, 70, 71],
                                                                  personal=False)]

    def test_a_restore_is_seen_although_the_empty_entry_was_cached(self, purged: Node) -> None:
        info = purged.logs.info("default")
        original = purged.logs.entry("default", 72)
        purged.store.purge(Purge(info.id, [72], 120))
        purged.logs.forget_bundles(info.id)
        purged.logs.entry("default", 73)  # caches the bundle with b"" at 72
        with pytest.raises(PurgedError):
            purged.logs.entry("default", 72)
        assert purged.store.restore(info.id, {72: original}) == 1  # as another process would
        assert purged.logs.entry("default", 72) == original

    def test_forget_bundles_drops_only_that_logs_cache(self, purged: Node) -> None:
        info = purged.logs.info("default")
        purged.logs.entry("default", 6)
        assert any(k[0] == info.id for k in purged.logs._bundles)
        purged.logs.forget_bundles(info.id)
        assert not any(k[0] == info.id for k in purged.logs._bundles)


class TestProofs:
    def test_inclusion_proofs_of_purged_and_kept_seqs_verify(self, purged: Node) -> None:
        logs = purged.logs
        cp = logs.checkpoint("default")
        verifiers = [k.verifier(logs.info("default").origin) for k in logs.keys.published()]
        parsed, _ = open_checkpoint(cp.note, verifiers, origin=logs.info("default").origin)
        for seq in (4, 55, 6, 119):
            size, leaf, proof = logs.inclusion_proof("default", seq, parsed.size)
            merkle.verify_inclusion(leaf, seq, size, proof, parsed.root)
        _, leaf, _ = logs.inclusion_proof("default", 6, parsed.size)
        assert leaf == merkle.leaf_hash(logs.entry("default", 6))

    def test_consistency_proofs_across_purged_seqs_verify(self, purged: Node) -> None:
        logs = purged.logs
        info = logs.info("default")
        verifiers = [k.verifier(info.origin) for k in logs.keys.published()]
        signed = {}
        for cp in purged.store.checkpoints(info.id):
            parsed, _ = open_checkpoint(cp.note, verifiers, origin=info.origin)
            signed[parsed.size] = parsed.root
        latest = max(signed)
        for first in (10, 50, 60, 120):  # before, at and after the purged ranges
            proof = logs.consistency_proof("default", first, latest)
            merkle.verify_consistency(first, latest, proof, signed[first], signed[latest])


class TestResend:
    def _send(self, n: Node, outcome: str) -> tuple[int, bool]:
        body = orjson.dumps([{"action": "orders.delete", "id": "ev-resent", "outcome": outcome,
                              "actor": {"id": "u1", "type": "user"}}])
        pendings = prepare(decode_events(body, ndjson=False), tenant="default",
                           submitter="tok_test", may_set_tenant=False)
        r = n.logs.append("default", pendings).result(10).receipts[0]
        return r.seq, r.duplicate

    def test_a_purged_event_sent_again_is_a_duplicate_by_its_digest(
            self, purged: Node) -> None:
        seq, _ = self._send(purged, "success")
        info = purged.logs.info("default")
        purged.store.purge(Purge(info.id, [seq], 120))
        # a new sequencer: nothing of the first send is held in memory
        purged.logs.drop("default")
        assert self._send(purged, "success") == (seq, True)
        # the id cannot be read back, so other content under it is stored anew
        again, duplicate = self._send(purged, "failure")
        assert again > seq and not duplicate
