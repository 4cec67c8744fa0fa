"""`auditkeep migrate --from DIR --to postgresql://…` on real SQLite and PostgreSQL."""

from __future__ import annotations

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.log import merkle
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.privacy.erasure import erase_subject
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
    finally:
        node.close()


def test_migrate_keeps_every_seq_leaf_and_checkpoint(data_dir: DataDir, pg_url: str) -> None:
    _fill(data_dir)
    r = ak("migrate", "--from", str(data_dir.root), "--to", pg_url)
    assert r.returncode == 0, r.stderr
    assert "default: 2101 entries" in r.stdout and "erased" in r.stdout

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
            seqs = list(range(a.size))
            assert dst.read_personal(b.id, seqs) == src.read_personal(a.id, seqs)
            read = lambda coords, lid=b.id: dst.read_nodes(lid, coords)  # noqa: E731
            assert merkle.inclusion_proof(5, b.size, read) == merkle.inclusion_proof(
                5, a.size, lambda coords, lid=a.id: src.read_nodes(lid, coords))
        assert dst.export_secrets() == src.export_secrets()
        assert sorted(h for h, _ in dst.export_tokens()) == sorted(
            h for h, _ in src.export_tokens())
    finally:
        src.close()
        dst.close()

    r = ak("verify", "--data", str(data_dir.root), "--storage", pg_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "default: 2101 entries" in r.stdout and "ok" in r.stdout

    again = ak("migrate", "--from", str(data_dir.root), "--to", pg_url)
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1 and "empty database" in again.stderr


def test_migrate_refuses_what_is_not_postgresql(data_dir: DataDir) -> None:
    r = ak("migrate", "--from", str(data_dir.root), "--to", "/tmp/x.db")
    assert r.returncode == 2 and "postgresql://" in r.stderr
    r = ak("migrate", "--from", str(data_dir.root / "nope"), "--to", "postgresql://x@127.0.0.1/y")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
