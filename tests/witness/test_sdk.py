"""k-of-n witnesses in the SDK's receipt verification (client/receipts.py), against a
real SQLite node reached through an in-process fetch."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from auditkeep.client.receipts import ReceiptBook
from auditkeep.datadir import Node
from auditkeep.witness.cosignature import WitnessSigner
from auditkeep.witness.serving import cosigned_checkpoint
from tests.witness.conftest import append_events, log_verifiers, witness_job


def _fetch(n: Node) -> Any:
    def fetch(path: str, params: dict[str, Any] | None) -> Any:
        p = params or {}
        if path == "/v1/keys":
            return {"keys": [{"verifier": v.to_string()} for v in log_verifiers(n)]}
        if path == "/v1/logs/default/checkpoint":
            return cosigned_checkpoint(n.logs, "default", witnessed=p.get("witnessed") == "true")
        if path == "/v1/logs/default/proof/consistency":
            hashes = n.logs.consistency_proof("default", p["from"], p["to"])
        elif path == "/v1/logs/default/proof/inclusion":
            hashes = n.logs.inclusion_proof("default", p["seq"], p["size"])[2]
        else:
            raise AssertionError(path)
        return {"hashes": [base64.b64encode(h).decode() for h in hashes]}
    return fetch


def _record(book: ReceiptBook, n: Node, seqs: range) -> None:
    receipts = [{"id": f"e{s}", "seq": s, "leaf_hash": base64.b64encode(
        n.logs.inclusion_proof("default", s)[1]).decode()} for s in seqs]
    book.record({"tenant": "default", "receipts": receipts,
                 "checkpoint": n.logs.checkpoint("default").note})


def test_receipts_beyond_the_witnessed_size_wait(node: Node) -> None:
    w = WitnessSigner.generate("witness.test/w1")
    job, _ = witness_job(node, w)
    append_events(node, 4)
    job.run_once()
    append_events(node, 3, start=4)
    book = ReceiptBook(None)
    _record(book, node, range(7))

    report = book.verify(_fetch(node), [w.vkey], 1)
    assert report.ok, report.problems
    assert (report.checked, report.pending) == (4, 3)
    assert report.witnessed["default"] == (4, ["witness.test/w1"])

    job.run_once()  # the witness catches up
    report = book.verify(_fetch(node), [w.vkey])
    assert report.ok, report.problems
    assert (report.checked, report.pending) == (3, 0)


def test_no_witnessed_checkpoint_is_a_problem(node: Node) -> None:
    append_events(node, 2)
    book = ReceiptBook(None)
    _record(book, node, range(2))
    report = book.verify(_fetch(node), [WitnessSigner.generate("w.test/a").vkey])
    (problem,) = report.problems
    assert "0 valid cosignatures of the 1 required" in problem
    assert report.checked == 0
    # Without witnesses the same receipts verify, as before.
    assert book.verify(_fetch(node)).checked == 2


def test_min_witnesses_beyond_the_keys_given_is_refused(node: Node) -> None:
    with pytest.raises(ValueError, match="min_witnesses=2 needs at least 2"):
        ReceiptBook(None).verify(_fetch(node), [WitnessSigner.generate("w.test/a").vkey], 2)
    with pytest.raises(TypeError):
        ReceiptBook(None).verify(_fetch(node), "w.test/a+00000000+AA==")
