"""Byte layouts shared by the backends."""

from __future__ import annotations

from auditkeep.log import merkle
from auditkeep.storage.base import TILE_WIDTH
from auditkeep.storage.codec import pack_entries, tile_groups, unpack_entries

LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(3 * TILE_WIDTH)]


class TestTileGroups:
    def test_runs_group_as_the_same_nodes_one_by_one(self) -> None:
        # Start mid-tile so runs cross tile boundaries at several levels.
        for start in (0, 1, 100, TILE_WIDTH - 1):
            one, bulk = merkle.CompactTree(), merkle.CompactTree()
            one.extend(LEAVES[:start])
            bulk.extend(LEAVES[:start])
            nodes = one.extend(LEAVES[start:])
            runs = bulk.extend_runs(LEAVES[start:])
            assert tile_groups(runs) == tile_groups(nodes)
            assert len(tile_groups(runs)[(0, start // TILE_WIDTH)]) == (
                TILE_WIDTH - start % TILE_WIDTH) * 32

    def test_a_run_is_split_at_tile_boundaries(self) -> None:
        hashes = b"".join(LEAVES[:TILE_WIDTH + 2])
        groups = tile_groups([(3, TILE_WIDTH - 1, hashes)])
        assert groups == {(3, 0): bytearray(hashes[:32]),
                          (3, 1): bytearray(hashes[32 : 32 * (TILE_WIDTH + 1)]),
                          (3, 2): bytearray(hashes[32 * (TILE_WIDTH + 1) :])}


class TestEntries:
    def test_entries_round_trip(self) -> None:
        entries = [b"", b"{}", b"x" * 70_000]
        assert unpack_entries(pack_entries(entries), 3, "test") == entries
