"""One conformance suite, run against every backend (memory and SQLite)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditkeep.errors import StorageError
from auditkeep.log import merkle
from auditkeep.storage.base import Backend, Commit, StoredCheckpoint, TokenRecord
from auditkeep.storage.memory import MemoryBackend
from auditkeep.storage.sqlite import SQLiteBackend


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    s: Backend = MemoryBackend() if request.param == "memory" else SQLiteBackend(
        tmp_path / "t.db")
    yield s
    s.close()


def commit(store: Backend, log_id: int, tree: merkle.CompactTree, n: int,
           personal: bool = False, raws: dict[int, tuple[str, bytes]] | None = None
           ) -> list[bytes]:
    first = tree.size
    entries = [f'{{"seq":{first + i}}}'.encode() for i in range(n)]
    nodes: list[tuple[int, int, bytes]] = []
    for e in entries:
        nodes.extend(tree.append(merkle.leaf_hash(e)))
    store.append(Commit(
        log_id, first, entries, [hashlib.sha256(e).digest() for e in entries],
        [first + i for i in range(n)],
        {first: {"actor.email": ["00", "a@b.c"]}} if personal else {},
        nodes, tree.size, tree.root(), None, raws or {}))
    return entries


class TestLogs:
    def test_open_log_is_idempotent_and_starts_empty(self, store: Backend) -> None:
        a = store.open_log("acme", "o/acme")
        b = store.open_log("acme", "o/acme")
        assert a.id == b.id
        assert a.size == 0 and a.root == merkle.EMPTY_ROOT
        assert [log.name for log in store.list_logs()] == ["acme"]
        assert store.get_log("nope") is None

    def test_appended_entries_and_nodes_read_back(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        written = commit(store, log.id, tree, 300) + commit(store, log.id, tree, 7)
        got = [e for b in store.read_bundles(log.id, 0, 307) for e in b.entries]
        assert got == written
        # a read from the middle returns the bundles that overlap it
        mid = store.read_bundles(log.id, 290, 301)
        assert mid[0].first_seq <= 290 and mid[-1].first_seq + len(mid[-1].entries) >= 301
        info = store.get_log("acme")
        assert info is not None and info.size == 307 and info.root == tree.root()
        read = lambda coords: store.read_nodes(log.id, coords)  # noqa: E731
        assert merkle.root_from_reader(307, read) == tree.root()
        proof = merkle.inclusion_proof(123, 307, read)
        merkle.verify_inclusion(merkle.leaf_hash(written[123]), 123, 307, proof, tree.root())

    def test_append_at_the_wrong_size_is_refused(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        commit(store, log.id, tree, 3)
        stale = merkle.CompactTree()
        with pytest.raises(StorageError):
            commit(store, log.id, stale, 3)
        info = store.get_log("acme")
        assert info is not None and info.size == 3

    def test_dedup_keys_and_personal_values(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        commit(store, log.id, tree, 5, personal=True)
        assert store.find_dedup(log.id, [2, 99]) == {2: [2]}
        assert store.read_personal(log.id, [0, 1]) == {0: {"actor.email": ["00", "a@b.c"]}}

    def test_dedup_keys_span_the_whole_int64_range(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        keys = [-(2**63), -1, 0, 2**63 - 1]
        entries = [f'{{"seq":{i}}}'.encode() for i in range(4)]
        store.append(Commit(log.id, 0, entries, [hashlib.sha256(e).digest() for e in entries],
                            keys, {}, tree.extend_runs([merkle.leaf_hash(e) for e in entries]),
                            tree.size, tree.root()))
        assert store.find_dedup(log.id, [*keys, 5]) == {k: [i] for i, k in enumerate(keys)}

    def test_raw_objects_read_back_byte_exactly(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        tree = merkle.CompactTree()
        original = b'{ "kind": "Event",  "auditID":"x" }\n' + bytes(range(256)) * 40
        commit(store, log.id, tree, 3, raws={1: ("k8s.audit", original)})
        commit(store, log.id, tree, 2, raws={4: ("otlp.protobuf", b"\x00\x01")})
        assert store.read_raw(log.id, 1) == ("k8s.audit", original)
        assert store.read_raw(log.id, 4) == ("otlp.protobuf", b"\x00\x01")
        assert store.read_raw(log.id, 0) is None and store.read_raw(log.id, 99) is None
        assert store.read_raws(log.id, 0, 99) == {1: ("k8s.audit", original),
                                                  4: ("otlp.protobuf", b"\x00\x01")}
        assert store.read_raws(log.id, 2, 4) == {}

    def test_action_schemas_are_versioned_per_tenant(self, store: Backend) -> None:
        assert store.get_schema("acme", "orders.refund") is None
        assert store.put_schema("acme", "orders.refund", '{"a":1}', "t") == 1
        assert store.put_schema("acme", "orders.refund", '{"a":2}', "t") == 2
        assert store.put_schema("other", "orders.refund", '{"b":1}', "t") == 1
        assert store.get_schema("acme", "orders.refund") == (2, '{"a":2}')
        assert store.get_schema("acme", "orders.refund", 1) == (1, '{"a":1}')
        assert store.get_schema("acme", "orders.refund", 3) is None
        assert store.latest_schemas("acme") == {"orders.refund": (2, '{"a":2}')}

    def test_saved_searches_are_per_tenant_and_replaced_whole(self, store: Backend) -> None:
        assert store.saved_searches("acme") == []
        store.put_saved_search("acme", "b", '{"query":"x"}', "tok1", "t1")
        store.put_saved_search("acme", "a", '{"query":"y"}', "tok1", "t1")
        store.put_saved_search("other", "a", '{"query":"z"}', "tok2", "t1")
        store.put_saved_search("acme", "b", '{"query":"x2"}', "tok3", "t2")
        got = store.saved_searches("acme")
        assert [(s.name, s.body, s.created_by, s.updated) for s in got] == [
            ("a", '{"query":"y"}', "tok1", "t1"), ("b", '{"query":"x2"}', "tok3", "t2")]
        assert store.delete_saved_search("acme", "a") is True
        assert store.delete_saved_search("acme", "a") is False
        assert [s.name for s in store.saved_searches("acme")] == ["b"]
        assert [s.body for s in store.saved_searches("other")] == ['{"query":"z"}']

    def test_checkpoints_are_kept_in_size_order(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        for size in (3, 1, 2):
            store.put_checkpoint(log.id, StoredCheckpoint(size, b"r" * 32, f"n{size}", "t"))
        assert [c.size for c in store.checkpoints(log.id)] == [1, 2, 3]
        latest = store.latest_checkpoint(log.id)
        assert latest is not None and latest.size == 3

    def test_checkpoints_are_deleted_by_size_and_root_only(self, store: Backend) -> None:
        log = store.open_log("acme", "o/acme")
        other = store.open_log("other", "o/other")
        for size in (1, 2, 3):
            store.put_checkpoint(log.id, StoredCheckpoint(size, b"r" * 32, f"n{size}", "t"))
        store.put_checkpoint(log.id, StoredCheckpoint(2, b"f" * 32, "fork", "t"))
        store.put_checkpoint(other.id, StoredCheckpoint(2, b"r" * 32, "o2", "t"))
        assert store.delete_checkpoints(log.id, [(2, b"r" * 32), (3, b"x" * 32)]) == 1
        assert [(c.size, c.note) for c in store.checkpoints(log.id)] == [
            (1, "n1"), (2, "fork"), (3, "n3")]
        assert [c.note for c in store.checkpoints(other.id)] == ["o2"]
        assert store.delete_checkpoints(log.id, []) == 0


class TestTokens:
    def test_tokens_are_found_by_hash_and_revoked_once(self, store: Backend) -> None:
        rec = TokenRecord("tok_1", "acme", ("read",), "n", "2026-01-01T00:00:00Z")
        store.put_token(b"h" * 32, rec)
        found = store.token_by_hash(b"h" * 32)
        assert found is not None and found.scopes == ("read",)
        assert store.revoke_token("tok_1", "later") is True
        assert store.revoke_token("tok_1", "later") is False
        again = store.token_by_hash(b"h" * 32)
        assert again is not None and again.revoked == "later"
