"""The path of an aligned perfect subtree into a tree is the inclusion proof of its
index in the tree of level-k nodes (archive/proofs.py), checked against log/merkle.py."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditkeep.archive.proofs import range_root, subtree_proof, verify_subtree
from auditkeep.errors import ProofError
from auditkeep.log import merkle


def tree(size: int) -> tuple[list[bytes], merkle.NodeReader]:
    """Leaves of a tree of `size` and a reader of every perfect node, as storage keeps."""
    leaves = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
    nodes: dict[tuple[int, int], bytes] = {(0, i): h for i, h in enumerate(leaves)}
    level, row = 0, leaves
    while len(row) > 1:
        row = merkle.node_hashes(row)
        level += 1
        nodes.update(((level, i), h) for i, h in enumerate(row))
    return leaves, lambda coords: [nodes[c] for c in coords]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH from leaf hashes, straight from its definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


@st.composite
def aligned(draw: st.DrawFn) -> tuple[int, int, int]:
    level = draw(st.integers(0, 4))
    width = 1 << level
    size = draw(st.integers(width, 70))
    first = draw(st.integers(0, size // width - 1)) * width
    return first, width, size


class TestSubtreeProof:
    @given(aligned())
    def test_is_the_inclusion_proof_in_the_tree_of_level_k_nodes(
            self, case: tuple[int, int, int]) -> None:
        first, width, size = case
        leaves, read = tree(size)
        proof = subtree_proof(first, width, size, read)
        # The tree of ceil(size / W) level-k nodes, its last one the MTH of the tail.
        tops = [mth(leaves[i:i + width]) for i in range(0, size, width)]
        expected = merkle.inclusion_proof(
            first // width, len(tops), lambda coords: [
                mth(tops[i << lv:(i + 1) << lv]) for lv, i in coords])
        assert proof == expected
        root = range_root(leaves[first:first + width])
        assert root == mth(leaves[first:first + width]) == read([(width.bit_length() - 1,
                                                                   first // width)])[0]
        verify_subtree(root, first, width, size, proof, mth(leaves))
        merkle.verify_inclusion(root, first // width, len(tops), proof, mth(leaves))

    @given(aligned())
    def test_another_root_or_place_fails(self, case: tuple[int, int, int]) -> None:
        first, width, size = case
        leaves, read = tree(size)
        proof = subtree_proof(first, width, size, read)
        root = range_root(leaves[first:first + width])
        with pytest.raises(ProofError):
            verify_subtree(merkle.leaf_hash(b"x"), first, width, size, proof, mth(leaves))
        if first + 2 * width <= size:
            with pytest.raises(ProofError):
                verify_subtree(root, first + width, width, size, proof, mth(leaves))

    def test_unaligned_ranges_are_refused(self) -> None:
        _, read = tree(16)
        with pytest.raises(ProofError, match="aligned"):
            subtree_proof(4, 8, 16, read)
        with pytest.raises(ProofError, match="aligned"):
            subtree_proof(0, 6, 16, read)
        with pytest.raises(ProofError, match="inside"):
            subtree_proof(8, 8, 12, read)
