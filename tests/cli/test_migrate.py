"""`auditkeep migrate --from DIR --to postgresql://…` on real SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import orjson

from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.log import merkle
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.privacy.erasure import erase_subject
from auditkeep.storage.base import (
    ArchiveRecord,
    Cosignature,
    HoldRecord,
    Purge,
    RetentionRecord,
)
from auditkeep.storage.open import open_store
from tests.cli.test_cli import ak


def _events(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"action": "users.login", "outcome": "success", "id": f"ev-{i}",
             "actor": {"id": f"user-{i % 7}", "type": "user", "email": f"u{i % 7}@example.org"}}
            for i in range(start, start + n)]


def _fill(data_dir: DataDir) -> None:
    node = open_node(data_dir, with_index=False)
    try:
        for part in range(3):  # several commits, so several checkpoints
            body = orjson.dumps(_events(700, part * 700))
            pendings = prepare(decode_events(body, ndjson=False), tenant="default",
                               submitter="t", may_set_tenant=False)
            node.logs.append("default", pendings).result(30)
            node.logs.sequencer("default")._persist_latest()
        erase_subject(node.logs, "default", "u3@example.org", requested_by="dpo",
                      legal_basis="GDPR Art. 17")
        _purge_and_keep(node)
    finally:
        node.close()


def _purge_and_keep(node: Node) -> None:
    """A retention purge (with its record) across a bundle boundary, and one row of each
    kind retention, holds, witnesses and the archive keep beside the log."""
    body = orjson.dumps([{"action": "auditkeep.retention.purge", "outcome": "success",
                          "actor": {"id": "retention", "type": "service"}}])
    pendings = prepare(decode_events(body, ndjson=False), tenant="default",
                       submitter="auditkeep.retention", may_set_tenant=True)
    record = node.logs.append("default", pendings).result(30).receipts[0].seq
    node.logs.sequencer("default")._persist_latest()
    info = node.logs.info("default")
    store = node.store
    store.purge(Purge(info.id, [*range(250, 262), 700], record))
    store.put_retention(RetentionRecord("default", '{"auth":"400d"}', "t", "admin"))
    store.put_hold(HoldRecord("h1", "default", 'action = "users.login"', "case 42", "admin",
                              "t", record_seq=record))
    store.put_cosignature(Cosignature(info.id, 700, b"r" * 32, "w1", "— w1 AAAA\n", "t"))
    store.put_archive(ArchiveRecord(info.id, 0, 256, "file:///a.parquet", "file:///a.json",
                                    "ab" * 32, 700, "t"))
    store.set_witness_head(info.origin, 0, 700, b"r" * 32)


def test_migrate_keeps_every_seq_leaf_and_checkpoint(data_dir: DataDir, pg_url: str) -> None:
    _fill(data_dir)
    r = ak("migrate", "--from", str(data_dir.root), "--to", pg_url)
    assert r.returncode == 0, r.stderr
    assert "default: 2102 entries" in r.stdout and "erased" in r.stdout
    assert "13 purged by retention" in r.stdout

    src, dst = open_store(str(data_dir.db)), open_store(pg_url)
    try:
        for a in src.list_logs():
            b = dst.get_log(a.name)
            assert b is not None and (b.size, b.root, b.origin) == (a.size, a.root, a.origin)
            assert [(c.size, c.root, c.note) for c in dst.checkpoints(b.id)] == \
                [(c.size, c.root, c.note) for c in src.checkpoints(a.id)]
            assert [e for x in dst.read_bundles(b.id, 0, b.size) for e in x.entries] == \
                [e for x in src.read_bundles(a.id, 0, a.size) for e in x.entries]
            assert dst.erased_seqs(b.id) == src.erased_seqs(a.id)
            assert dst.purged_ranges(b.id) == src.purged_ranges(a.id) != []
            assert dst.read_nodes(b.id, [(0, 700)]) == src.read_nodes(a.id, [(0, 700)])
            assert dst.cosignatures(b.id) == [dataclasses.replace(c, log_id=b.id)
                                              for c in src.cosignatures(a.id)]
            assert dst.archives(b.id) == [dataclasses.replace(x, log_id=b.id)
                                          for x in src.archives(a.id)]
            assert dst.witness_head(b.origin) == src.witness_head(a.origin) is not None
            seqs = list(range(a.size))
            assert dst.read_personal(b.id, seqs) == src.read_personal(a.id, seqs)
            read = lambda coords, lid=b.id: dst.read_nodes(lid, coords)  # noqa: E731
            assert merkle.inclusion_proof(5, b.size, read) == merkle.inclusion_proof(
                5, a.size, lambda coords, lid=a.id: src.read_nodes(lid, coords))
        assert dst.export_secrets() == src.export_secrets()
        assert dst.list_retention() == src.list_retention() != []
        assert dst.holds() == src.holds() != []
        assert sorted(h for h, _ in dst.export_tokens()) == sorted(
            h for h, _ in src.export_tokens())
    finally:
        src.close()
        dst.close()

    r = ak("verify", "--data", str(data_dir.root), "--storage", pg_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "default: 2102 entries" in r.stdout and "ok" in r.stdout
    assert "13 entries purged by retention in 2 ranges" in r.stdout

    again = ak("migrate", "--from", str(data_dir.root), "--to", pg_url)
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1 and "empty database" in again.stderr


def test_migrate_refuses_what_is_not_postgresql(data_dir: DataDir) -> None:
    r = ak("migrate", "--from", str(data_dir.root), "--to", "/tmp/x.db")
    assert r.returncode == 2 and "postgresql://" in r.stderr
    r = ak("migrate", "--from", str(data_dir.root / "nope"), "--to", "postgresql://x@127.0.0.1/y")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
