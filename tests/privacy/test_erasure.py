"""Erasure on a real SQLite data directory: the subject's values and raw objects go,
an erasure record is appended, and every proof and `verify` still pass."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import orjson
import pytest

from auditkeep.datadir import Node
from auditkeep.errors import ValidationError
from auditkeep.log import merkle
from auditkeep.log.verify import verify_log
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Event
from auditkeep.privacy.erasure import ERASURE_ACTION, erase_subject, subject_seqs
from auditkeep.privacy.pseudonyms import is_pseudonym

TENANT = "acme"


def ingest(n: Node, events: list[dict[str, Any]], raws: list[Any] | None = None) -> list[int]:
    decoded = msgspec.convert(events, list[Event])
    pendings = prepare(decoded, tenant=TENANT, submitter="test", may_set_tenant=False,
                       raws=raws)
    result = n.logs.append(TENANT, pendings).result()
    return [r.seq for r in result.receipts]


def ev(actor: str, email: str | None = None, **more: Any) -> dict[str, Any]:
    a: dict[str, Any] = {"id": actor, "type": "user", "ip": "203.0.113.9"}
    if email:
        a["email"] = email
    return {"action": "orders.view", "outcome": "success", "actor": a,
            "resource": {"type": "order", "id": "42"}, **more}


def proofs_hold(n: Node, size: int) -> None:
    root = n.logs.root(TENANT, size)
    for seq in range(size):
        s, leaf, proof = n.logs.inclusion_proof(TENANT, seq, size)
        assert leaf == merkle.leaf_hash(n.logs.entry(TENANT, seq))
        merkle.verify_inclusion(leaf, seq, s, proof, root)
    for first in range(1, size):
        merkle.verify_consistency(first, size, n.logs.consistency_proof(TENANT, first, size),
                                  n.logs.root(TENANT, first), root)


def verifiers(n: Node) -> list[Any]:
    return [k.verifier(n.logs.origin(TENANT)) for k in n.keys.published()]


@pytest.fixture
def held(node: Node) -> Node:
    ingest(node, [ev("alice", "Alice@Example.org"), ev("bob", "bob@example.org"),
                  ev("alice", "Alice@Example.org", metadata={"note": "x"}),
                  ev("carol", None, metadata={"customer": "alice@example.org"},
                     redactions=[{"path": "/metadata/customer", "rule": "commit",
                                  "action": "commit"}])])
    ingest(node, [ev("alice")], raws=[("k8s.audit", b'{"user":"alice","ip":"203.0.113.9"}')])
    return node


class TestErasure:
    def test_values_and_raws_go_proofs_and_verify_stay(self, held: Node) -> None:
        n = held
        before = n.logs.size(TENANT)
        assert subject_seqs(n.logs, TENANT, "alice@example.org") == [0, 2, 3]
        proofs_hold(n, before)
        result = erase_subject(n.logs, TENANT, "alice", requested_by="tok_admin",
                               legal_basis="GDPR Art. 17(1)(a), ticket 4711")
        assert result.events == 3  # seqs 0, 2 (actor alice) and 4 (alice's raw object)
        assert result.raws == 1
        assert result.values == 5  # email and ip of 0 and 2, the ip of 4
        assert is_pseudonym(result.subject) and "alice" not in result.subject
        size = n.logs.size(TENANT)
        assert size == before + 1
        proofs_hold(n, size)
        report = verify_log(n.store, n.store.get_log(TENANT), verifiers(n))  # type: ignore[arg-type]
        assert report.ok, report.findings
        assert (report.erased, report.erasures) == (3, 1)
        # The erased events keep what an audit trail needs, and no personal value.
        recs = n.logs.records(TENANT, [0, 2, 4], personal=True)
        for r in recs:
            assert r["action"] == "orders.view" and r["outcome"] == "success"
            assert r["resource"] == {"type": "order", "id": "42"}
            assert r["actor"]["id"] == "alice"
            assert set(r["actor"]["ip"]) == {"$c"}
        assert set(recs[0]["actor"]["email"]) == {"$c"}
        assert n.store.read_raw(n.logs.info(TENANT).id, 4) is None
        # Others are untouched: bob's email, and carol's event (alice only by value).
        bob = n.logs.records(TENANT, [1], personal=True)[0]
        assert bob["actor"]["email"] == "bob@example.org"
        carol = n.logs.records(TENANT, [3], personal=True)[0]
        assert carol["metadata"]["customer"] == "alice@example.org"

    def test_the_erasure_record(self, held: Node) -> None:
        n = held
        result = erase_subject(n.logs, TENANT, "alice", requested_by="tok_admin",
                               legal_basis="GDPR Art. 17(1)(a)")
        record = n.logs.records(TENANT, [result.record_seq or 0], personal=True)[0]
        assert record["action"] == ERASURE_ACTION and record["category"] == "admin"
        assert record["actor"] == {"id": "tok_admin", "type": "service"}
        assert record["resource"] == {"type": "data_subject", "id": result.subject}
        assert record["reason"] == "GDPR Art. 17(1)(a)"
        assert record["metadata"] == {"events": 3, "values": 5, "raws": 1, "first_seq": 0,
                                      "last_seq": 4}
        assert "alice" not in orjson.dumps(record).decode()

    def test_the_subject_never_enters_the_record_through_its_legal_basis(
            self, held: Node) -> None:
        result = erase_subject(held.logs, TENANT, "alice@example.org", requested_by="t",
                               legal_basis="request of alice@example.org, cc bob@example.org")
        record = held.logs.records(TENANT, [result.record_seq or 0], personal=True)[0]
        assert record["reason"] == f"request of {result.subject}, cc [REDACTED:email]"

    def test_a_committed_value_is_erased_by_its_subject(self, held: Node) -> None:
        n = held
        result = erase_subject(n.logs, TENANT, "alice@example.org", requested_by="t",
                               legal_basis="Art. 17")
        assert result.events == 3  # 0 and 2 (email, domain lower-cased) and 3 (by value)
        carol = n.logs.records(TENANT, [3], personal=True)[0]
        assert set(carol["metadata"]["customer"]) == {"$c"}
        assert carol["actor"]["ip"] == "203.0.113.9"  # carol's own values stay

    def test_erasure_is_idempotent(self, held: Node) -> None:
        n = held
        first = erase_subject(n.logs, TENANT, "alice", requested_by="t", legal_basis="b")
        size = n.logs.size(TENANT)
        again = erase_subject(n.logs, TENANT, "alice", requested_by="t", legal_basis="b")
        assert (again.events, again.record_id, again.subject) == (0, None, first.subject)
        assert n.logs.size(TENANT) == size
        assert verify_log(n.store, n.store.get_log(TENANT), verifiers(n))  # type: ignore[arg-type].ok

    def test_freed_pages_hold_no_erased_value(self, node: Node) -> None:
        n = node
        marker = "erase-me-" + "q" * 40 + "@example.org"
        ingest(n, [ev("dave", marker) for _ in range(300)])
        erase_subject(n.logs, TENANT, "dave", requested_by="t", legal_basis="b")
        db = n.data.db if n.data is not None else None
        assert db is not None
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = conn.execute("SELECT count(*) FROM personal").fetchone()[0]
        assert rows == 0
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                assert marker.encode() not in path.read_bytes()

    def test_bad_requests(self, held: Node) -> None:
        with pytest.raises(ValidationError) as e:
            erase_subject(held.logs, TENANT, " ", requested_by="t", legal_basis="b")
        assert e.value.problems[0].pointer == "/subject"
        with pytest.raises(ValidationError) as e:
            erase_subject(held.logs, TENANT, "alice", requested_by="t", legal_basis=" ")
        assert e.value.problems[0].pointer == "/legal_basis"
        assert erase_subject(held.logs, "nobody-here", "alice", requested_by="t",
                             legal_basis="b").events == 0
