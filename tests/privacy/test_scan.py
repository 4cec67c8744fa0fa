"""The PII scan of stored records: findings by tenant, action, path and rule, never the
value; the scheduled job reads each record once."""

from __future__ import annotations

from typing import Any

from auditkeep.datadir import Node
from auditkeep.privacy.scan import PiiScanJob, scan_store
from tests.privacy.test_erasure import ingest


def ev(**meta: Any) -> dict[str, Any]:
    return {"action": "tickets.update", "outcome": "success",
            "actor": {"id": "ann@example.org", "type": "user", "email": "ann@example.org"},
            "metadata": meta}


def test_findings_name_places_not_values(node: Node) -> None:
    ingest(node, [ev(note="reach me at +44 20 7946 0958"),
                  ev(items=[{"c": "4111 1111 1111 1111"}, {"c": "5555 5555 5555 4444"}]),
                  ev(note="nothing to see")],
           raws=[None, None, ("generic.x", b'{"token": "abc", "u": "x@y.io"}')])
    report = scan_store(node.store)
    assert report.scanned == 3 and report.flagged == 3
    assert report.counts == {
        ("acme", "tickets.update", "/metadata/note", "phone"): 1,
        ("acme", "tickets.update", "/metadata/items/*/c", "card"): 2,
        ("acme", "tickets.update", "/actor/id", "email"): 3,
        ("acme", "tickets.update", "/raw/token", "secret_key"): 1,
        ("acme", "tickets.update", "/raw/u", "email"): 1,
    }
    text = str(report.to_json())
    for value in ("7946", "4111", "ann@", "x@y.io"):
        assert value not in text
    assert {s.seq for s in report.samples} == {0, 1, 2}
    assert scan_store(node.store, tenants=["other"]).scanned == 0
    assert scan_store(node.store, detectors=["ssn"]).counts == {
        ("acme", "tickets.update", "/raw/token", "secret_key"): 1}


def test_the_scheduled_job_reads_new_records_once(node: Node) -> None:
    job = PiiScanJob(node.store, interval=3600, batch=2)
    ingest(node, [ev(note="a@b.io"), ev(note="c@d.io"), ev(note="none")])
    assert job.step() is True  # the batch of 2 is used up: more to do
    assert job.step() is False
    scanned, by_rule = job.snapshot()
    assert scanned == 3 and by_rule[("acme", "email")] == 5  # 2 notes + 3 actor ids
    assert job.step() is False and job.snapshot()[0] == 3
    ingest(node, [ev(note="e@f.io")])
    job.step()
    assert job.snapshot() == (4, {("acme", "email"): 7})
