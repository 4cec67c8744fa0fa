"""RFC 6962 Merkle math: the transparency-dev corpus, then properties against a reference.

The reference (`ref_mth`, `ref_path`, `ref_subproof`) is RFC 9162 §2.1 transcribed
literally, recursing over lists of leaf hashes; the module under test never rehashes
leaves, so agreement between the two is meaningful.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditkeep.errors import CorruptionError, ProofError, StorageError
from auditkeep.log.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    node_hashes,
    perfect_ranges,
    root_from_reader,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

VECTOR_FILE = Path(__file__).parent.parent / "data" / "rfc6962" / "rfc6962_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
V_LEAF_HASHES = [bytes.fromhex(h) for h in VECTORS["leaf_hashes"]]
V_NODES = {(level, index): bytes.fromhex(h)
           for level, row in enumerate(VECTORS["node_hashes_by_level"])
           for index, h in enumerate(row)}


def _hexes(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _probe_id(probe: dict[str, Any]) -> str:
    return str(probe["source"]).removeprefix("testdata/")


# The reference: RFC 9162 §2.1, literally ---------------------------------------------------

def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], whole), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


MAX_LEAVES = 300
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]
REF_NODES = {(level, index): ref_mth(LEAVES[index << level:(index + 1) << level])
             for level in range(MAX_LEAVES.bit_length())
             for index in range(MAX_LEAVES >> level)}


class Reader:
    """A dict-backed NodeReader for the tree of the first `size` leaves, recording calls.

    It refuses nodes that are not complete in that tree, so a proof that peeks past
    its own tree fails loudly.
    """

    def __init__(self, nodes: dict[tuple[int, int], bytes], size: int) -> None:
        self.nodes = nodes
        self.size = size
        self.calls: list[list[tuple[int, int]]] = []

    def __call__(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(list(coords))
        out = []
        for level, index in coords:
            if (index + 1) << level > self.size:
                raise AssertionError(f"node ({level}, {index}) is not complete at size "
                                     f"{self.size}")
            out.append(self.nodes[(level, index)])
        return out


def flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def flip_any(data: st.DataObject, proof: list[bytes], a: bytes, b: bytes
             ) -> tuple[list[bytes], bytes, bytes]:
    """Flip one drawn bit anywhere in the proof, `a` or `b`."""
    bit = data.draw(st.integers(0, (len(proof) + 2) * HASH_SIZE * 8 - 1))
    which, bit = divmod(bit, HASH_SIZE * 8)
    proof = list(proof)
    if which < len(proof):
        proof[which] = flip(proof[which], bit)
    elif which == len(proof):
        a = flip(a, bit)
    else:
        b = flip(b, bit)
    return proof, a, b


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_LEAVES))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_LEAVES))
    return draw(st.integers(1, size2)), size2


# The corpus -------------------------------------------------------------------------------

class TestHasher:
    @pytest.mark.parametrize("vector", VECTORS["hasher_vectors"], ids=lambda v: v["desc"])
    def test_matches_upstream_vector(self, vector: dict[str, Any]) -> None:
        if vector["kind"] == "empty_root":
            got = EMPTY_ROOT
        elif vector["kind"] == "leaf":
            got = leaf_hash(bytes.fromhex(vector["input_hex"]))
        else:
            got = node_hash(bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"]))
        assert got.hex() == vector["want"]

    def test_leaf_hashes_of_corpus_leaves_match(self) -> None:
        assert [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]] == V_LEAF_HASHES

    def test_leaf_and_node_hashes_are_domain_separated(self) -> None:
        left, right = LEAVES[0], LEAVES[1]
        assert leaf_hash(left + right) != node_hash(left, right)
        assert len(node_hash(left, right)) == HASH_SIZE


class TestVectorTree:
    @pytest.mark.parametrize("vector", VECTORS["roots"], ids=lambda v: f"size{v['tree_size']}")
    def test_compact_tree_root_matches(self, vector: dict[str, Any]) -> None:
        tree = CompactTree()
        tree.extend(V_LEAF_HASHES[: vector["tree_size"]])
        assert tree.root().hex() == vector["root"]

    @pytest.mark.parametrize("vector", VECTORS["roots"], ids=lambda v: f"size{v['tree_size']}")
    def test_root_from_reader_matches(self, vector: dict[str, Any]) -> None:
        read = Reader(V_NODES, vector["tree_size"])
        assert root_from_reader(vector["tree_size"], read).hex() == vector["root"]

    def test_appended_nodes_are_the_corpus_node_hashes(self) -> None:
        tree = CompactTree()
        stored = {(level, index): h for leaf in V_LEAF_HASHES
                  for level, index, h in tree.append(leaf)}
        assert stored == V_NODES

    @pytest.mark.parametrize("size", range(len(V_LEAF_HASHES) + 1))
    def test_compact_hashes_are_the_perfect_ranges_nodes(self, size: int) -> None:
        # The shape of transparency-dev's testonly.CompactTrees(): size 7 holds
        # nodes (2, 0), (1, 2), (0, 6).
        tree = CompactTree()
        tree.extend(V_LEAF_HASHES[:size])
        assert tree.hashes == [V_NODES[c] for c in perfect_ranges(0, size)]


class TestVectorProofs:
    @pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"],
                             ids=lambda v: f"seq{v['leaf_index']}-size{v['tree_size']}")
    def test_inclusion_proof_matches_and_verifies(self, vector: dict[str, Any]) -> None:
        index, size = vector["leaf_index"], vector["tree_size"]
        proof = inclusion_proof(index, size, Reader(V_NODES, size))
        assert [h.hex() for h in proof] == vector["proof"]
        assert V_NODES[(0, index)].hex() == vector["leaf_hash"]
        verify_inclusion(V_NODES[(0, index)], index, size, proof, bytes.fromhex(vector["root"]))

    @pytest.mark.parametrize("vector", VECTORS["consistency_proofs"],
                             ids=lambda v: f"{v['size1']}-to-{v['size2']}")
    def test_consistency_proof_matches_and_verifies(self, vector: dict[str, Any]) -> None:
        size1, size2 = vector["size1"], vector["size2"]
        proof = consistency_proof(size1, size2, Reader(V_NODES, size2))
        assert [h.hex() for h in proof] == vector["proof"]
        verify_consistency(size1, size2, proof, bytes.fromhex(vector["root1"]),
                           bytes.fromhex(vector["root2"]))


class TestProbes:
    @pytest.mark.parametrize("probe", VECTORS["inclusion_probes"], ids=_probe_id)
    def test_inclusion_probe_verifies_as_upstream_says(self, probe: dict[str, Any]) -> None:
        def run() -> None:
            verify_inclusion(bytes.fromhex(probe["leaf_hash"]), probe["leaf_index"],
                             probe["tree_size"], _hexes(probe["proof"]),
                             bytes.fromhex(probe["root"]))

        if probe["want_valid"]:
            run()
        else:
            with pytest.raises(ProofError):
                run()

    @pytest.mark.parametrize("probe", VECTORS["consistency_probes"], ids=_probe_id)
    def test_consistency_probe_verifies_as_upstream_says(self, probe: dict[str, Any]) -> None:
        def run() -> None:
            verify_consistency(probe["size1"], probe["size2"], _hexes(probe["proof"]),
                               bytes.fromhex(probe["root1"]), bytes.fromhex(probe["root2"]))

        if probe["want_valid"]:
            run()
        else:
            with pytest.raises(ProofError):
                run()


# Properties -------------------------------------------------------------------------------

class TestPerfectRanges:
    def test_known_decompositions(self) -> None:
        assert perfect_ranges(0, 0) == []
        assert perfect_ranges(0, 7) == [(2, 0), (1, 2), (0, 6)]
        assert perfect_ranges(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
        assert perfect_ranges(8, 16) == [(3, 1)]

    @given(st.integers(0, 1 << 40), st.integers(0, 1 << 40))
    def test_ranges_tile_the_span_with_maximal_aligned_subtrees(self, a: int, b: int) -> None:
        start, end = min(a, b), max(a, b)
        pos = start
        for level, index in perfect_ranges(start, end):
            assert index << level == pos
            pos = (index + 1) << level
            parent_lo, parent_hi = (index >> 1) << (level + 1), ((index >> 1) + 1) << (level + 1)
            assert not start <= parent_lo < parent_hi <= end, "the parent would also fit"
        assert pos == end

    @pytest.mark.parametrize(("start", "end"), [(5, 3), (-1, 2)])
    def test_rejects_a_backwards_or_negative_range(self, start: int, end: int) -> None:
        with pytest.raises(ProofError, match=rf"\[{start}, {end}\)"):
            perfect_ranges(start, end)


class TestSubtreeRoot:
    def test_no_hashes_is_the_empty_root(self) -> None:
        assert subtree_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()

    @given(st.integers(1, MAX_LEAVES), st.data())
    def test_fold_is_mth_of_every_aligned_range(self, width: int, data: st.DataObject) -> None:
        k = 1 << (width.bit_length() - 1)  # start must be a multiple of the biggest 2**n <= width
        start = k * data.draw(st.integers(0, (MAX_LEAVES - width) // k))
        end = start + width
        hashes = [REF_NODES[c] for c in perfect_ranges(start, end)]
        assert subtree_root(hashes) == ref_mth(LEAVES[start:end])


class TestInclusion:
    @given(size_and_index())
    def test_proof_is_rfc_path_and_verifies(self, case: tuple[int, int]) -> None:
        size, index = case
        proof = inclusion_proof(index, size, Reader(REF_NODES, size))
        assert proof == ref_path(index, LEAVES[:size])
        verify_inclusion(LEAVES[index], index, size, proof, ref_mth(LEAVES[:size]))

    @given(size_and_index(), st.data())
    def test_any_flipped_bit_is_rejected(self, case: tuple[int, int],
                                         data: st.DataObject) -> None:
        size, index = case
        proof = inclusion_proof(index, size, Reader(REF_NODES, size))
        leaf, root = LEAVES[index], ref_mth(LEAVES[:size])
        proof, leaf, root = flip_any(data, proof, leaf, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, root)

    @given(size_and_index(), st.integers(0, 2 * MAX_LEAVES))
    def test_proof_does_not_verify_for_another_seq(self, case: tuple[int, int],
                                                   other: int) -> None:
        size, index = case
        if other == index:
            return
        proof = inclusion_proof(index, size, Reader(REF_NODES, size))
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], other, size, proof, ref_mth(LEAVES[:size]))

    def test_failure_names_seq_size_and_both_roots(self) -> None:
        proof = inclusion_proof(5, 8, Reader(REF_NODES, 8))
        wrong = ref_mth(LEAVES[:7])
        with pytest.raises(ProofError) as info:
            verify_inclusion(LEAVES[5], 5, 8, proof, wrong)
        msg = info.value.detail
        assert msg.startswith("inclusion proof for seq 5 in tree of size 8: computed root ")
        assert ref_mth(LEAVES[:8]).hex()[:8] in msg and wrong.hex()[:8] in msg

    @pytest.mark.parametrize(("index", "size"), [(8, 8), (-1, 8), (0, 0)])
    def test_seq_outside_the_tree_is_rejected(self, index: int, size: int) -> None:
        with pytest.raises(ProofError, match=f"seq {index}"):
            inclusion_proof(index, size, Reader(REF_NODES, MAX_LEAVES))
        with pytest.raises(ProofError, match=f"seq {index} in tree of size {size}"):
            verify_inclusion(LEAVES[0], index, size, [], LEAVES[0])

    def test_wrong_hash_sizes_are_named(self) -> None:
        proof = inclusion_proof(2, 5, Reader(REF_NODES, 5))
        root = ref_mth(LEAVES[:5])
        with pytest.raises(ProofError, match="leaf hash is 31 bytes, expected 32"):
            verify_inclusion(LEAVES[2][:31], 2, 5, proof, root)
        with pytest.raises(ProofError, match="root is 33 bytes"):
            verify_inclusion(LEAVES[2], 2, 5, proof, root + b"\x00")
        with pytest.raises(ProofError, match=r"proof\[1\] is 0 bytes"):
            verify_inclusion(LEAVES[2], 2, 5, [proof[0], b"", *proof[2:]], root)
        with pytest.raises(ProofError, match="proof has 4 hashes, expected 3"):
            verify_inclusion(LEAVES[2], 2, 5, [*proof, root], root)


class TestConsistency:
    @given(two_sizes())
    def test_proof_is_rfc_subproof_and_verifies(self, case: tuple[int, int]) -> None:
        size1, size2 = case
        proof = consistency_proof(size1, size2, Reader(REF_NODES, size2))
        assert proof == ref_subproof(size1, LEAVES[:size2], True)
        verify_consistency(size1, size2, proof, ref_mth(LEAVES[:size1]),
                           ref_mth(LEAVES[:size2]))

    @given(two_sizes(), st.data())
    def test_any_flipped_bit_is_rejected(self, case: tuple[int, int],
                                         data: st.DataObject) -> None:
        size1, size2 = case
        proof = consistency_proof(size1, size2, Reader(REF_NODES, size2))
        root1, root2 = ref_mth(LEAVES[:size1]), ref_mth(LEAVES[:size2])
        proof, root1, root2 = flip_any(data, proof, root1, root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, root2)

    @given(two_sizes(), st.integers(1, MAX_LEAVES))
    def test_proof_does_not_verify_from_another_size(self, case: tuple[int, int],
                                                     other: int) -> None:
        size1, size2 = case
        if other in (size1, size2):
            return
        proof = consistency_proof(size1, size2, Reader(REF_NODES, size2))
        with pytest.raises(ProofError):
            verify_consistency(other, size2, proof, ref_mth(LEAVES[:other]),
                               ref_mth(LEAVES[:size2]))

    def test_equal_sizes_give_an_empty_proof(self) -> None:
        read = Reader(REF_NODES, 9)
        assert consistency_proof(9, 9, read) == []
        assert read.calls == []
        verify_consistency(9, 9, [], ref_mth(LEAVES[:9]), ref_mth(LEAVES[:9]))

    @pytest.mark.parametrize(("size1", "size2"), [(0, 5), (0, 0), (6, 5), (-1, 3)])
    def test_sizes_out_of_order_or_zero_are_rejected(self, size1: int, size2: int) -> None:
        where = f"from size {size1} to size {size2}"
        with pytest.raises(ProofError, match=where):
            consistency_proof(size1, size2, Reader(REF_NODES, MAX_LEAVES))
        with pytest.raises(ProofError, match=where):
            verify_consistency(size1, size2, [], EMPTY_ROOT, EMPTY_ROOT)

    def test_failure_names_sizes_and_the_root_that_differs(self) -> None:
        proof = consistency_proof(3, 7, Reader(REF_NODES, 7))
        root1, root2 = ref_mth(LEAVES[:3]), ref_mth(LEAVES[:7])
        with pytest.raises(ProofError, match="from size 3 to size 7: computed root2 "):
            verify_consistency(3, 7, proof, root1, ref_mth(LEAVES[:8]))
        with pytest.raises(ProofError, match="from size 3 to size 7: computed root1 "):
            verify_consistency(3, 7, proof, ref_mth(LEAVES[:2]), root2)
        assert len(proof) == 4
        with pytest.raises(ProofError, match="proof has 3 hashes, expected 4"):
            verify_consistency(3, 7, proof[:3], root1, root2)
        with pytest.raises(ProofError, match="root1 is 31 bytes"):
            verify_consistency(3, 7, proof, root1[:31], root2)
        with pytest.raises(ProofError, match="root2 is 31 bytes"):
            verify_consistency(3, 7, proof, root1, root2[:31])


class TestReader:
    @pytest.mark.parametrize("size", range(1, 70))
    def test_each_proof_reads_once_without_duplicates(self, size: int) -> None:
        for index in range(size):
            read = Reader(REF_NODES, size)
            proof = inclusion_proof(index, size, read)
            assert len(read.calls) == (1 if proof else 0)
        for size1 in range(1, size + 1):
            read = Reader(REF_NODES, size)
            proof = consistency_proof(size1, size, read)
            assert len(read.calls) == (1 if proof else 0)
            for batch in read.calls:
                assert len(batch) == len(set(batch))
        read = Reader(REF_NODES, size)
        root_from_reader(size, read)
        CompactTree.from_reader(size, read)
        assert len(read.calls) == 2

    def test_empty_tree_needs_no_read(self) -> None:
        read = Reader(REF_NODES, 0)
        assert root_from_reader(0, read) == EMPTY_ROOT
        assert CompactTree.from_reader(0, read).root() == EMPTY_ROOT
        assert read.calls == []

    def test_reader_returning_too_few_hashes_is_a_storage_error(self) -> None:
        with pytest.raises(StorageError, match="returned 0 hashes for 3 coordinates"):
            root_from_reader(7, lambda coords: [])

    def test_reader_returning_a_short_hash_is_corruption(self) -> None:
        with pytest.raises(CorruptionError, match=r"node \(level 0, index 6\) is 5 bytes"):
            inclusion_proof(0, 7, lambda coords: [
                REF_NODES[c] if c != (0, 6) else b"short" for c in coords])


class TestCompactTree:
    def test_appended_nodes_are_exactly_the_stored_tree(self) -> None:
        tree, stored = CompactTree(), {}
        for size in range(1, MAX_LEAVES + 1):
            nodes = tree.append(LEAVES[size - 1])
            assert nodes[0] == (0, size - 1, LEAVES[size - 1])
            assert [level for level, _, _ in nodes] == list(range(len(nodes)))
            for level, index, h in nodes:
                assert (level, index) not in stored
                stored[(level, index)] = h
            complete = {c for c in REF_NODES if (c[1] + 1) << c[0] <= size}
            assert stored == {c: REF_NODES[c] for c in complete}
            assert tree.size == size
            assert tree.root() == ref_mth(LEAVES[:size])

    @given(st.lists(st.integers(0, 40), max_size=8))
    def test_extend_equals_appending_one_by_one(self, chunks: list[int]) -> None:
        one, many = CompactTree(), CompactTree()
        pos = 0
        for n in chunks:
            batch = LEAVES[pos:pos + n]
            pos += len(batch)
            expected = [node for leaf in batch for node in one.append(leaf)]
            assert many.extend(iter(batch)) == expected
            assert (many.size, many.hashes, many.root()) == (one.size, one.hashes, one.root())

    @given(st.lists(st.integers(0, 40), max_size=8))
    def test_extend_runs_are_the_nodes_extend_completes(self, chunks: list[int]) -> None:
        one, bulk = CompactTree(), CompactTree()
        pos = 0
        for n in chunks:
            batch = LEAVES[pos:pos + n]
            pos += len(batch)
            expected = {(level, index): h for level, index, h in one.extend(batch)}
            runs = bulk.extend_runs(batch)
            assert [level for level, _, _ in runs] == list(range(len(runs)))
            got = {(level, first + i // 32): hashes[i:i + 32]
                   for level, first, hashes in runs for i in range(0, len(hashes), 32)}
            assert got == expected
            assert (bulk.size, bulk.hashes, bulk.root()) == (one.size, one.hashes, one.root())

    def test_extend_runs_continues_a_restored_tree(self) -> None:
        for size in (0, 1, 5, 64, 127, 128, 200):
            tree = CompactTree.from_reader(size, Reader(REF_NODES, size))
            tree.extend_runs(LEAVES[size:])
            assert tree.root() == ref_mth(LEAVES)
            assert tree.extend_runs([]) == []

    def test_bulk_hashes_are_leaf_and_node_hashes(self) -> None:
        entries = [b"", b"a", b"\x00" * 1000]
        assert leaf_hashes(entries) == [leaf_hash(e) for e in entries]
        assert node_hashes(LEAVES[:5]) == [node_hash(LEAVES[0], LEAVES[1]),
                                           node_hash(LEAVES[2], LEAVES[3])]
        assert node_hashes([]) == []

    @pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 63, 64, 65, 255, 256, 299])
    def test_from_reader_round_trips_and_continues(self, size: int) -> None:
        built = CompactTree()
        built.extend(LEAVES[:size])
        restored = CompactTree.from_reader(size, Reader(REF_NODES, size))
        assert (restored.size, restored.hashes) == (built.size, built.hashes)
        assert restored.root() == ref_mth(LEAVES[:size])
        assert restored.extend(LEAVES[size:]) == built.extend(LEAVES[size:])
        assert restored.root() == ref_mth(LEAVES)

    def test_constructor_takes_the_right_edge(self) -> None:
        tree = CompactTree(7, [REF_NODES[c] for c in perfect_ranges(0, 7)])
        assert tree.root() == ref_mth(LEAVES[:7])
        tree.append(LEAVES[7])
        assert tree.hashes == [REF_NODES[(3, 0)]]

    @pytest.mark.parametrize(("size", "count", "width", "match"), [
        (7, 2, 32, "needs 3 hashes, got 2"),
        (4, 1, 20, r"hashes\[0\] is 20 bytes"),
        (-1, 0, 32, "negative"),
    ])
    def test_constructor_rejects_a_malformed_edge(self, size: int, count: int, width: int,
                                                  match: str) -> None:
        with pytest.raises(ProofError, match=match):
            CompactTree(size, [b"\x00" * width] * count)

    def test_hashes_is_a_copy(self) -> None:
        tree = CompactTree()
        tree.extend(LEAVES[:3])
        tree.hashes.clear()
        assert len(tree.hashes) == 2

    def test_extend_interrupted_by_its_source_keeps_what_it_took(self) -> None:
        def leaves() -> Iterator[bytes]:
            yield from LEAVES[:5]
            raise RuntimeError("source failed")

        tree = CompactTree()
        with pytest.raises(RuntimeError):
            tree.extend(leaves())
        assert tree.size == 5
        assert tree.root() == ref_mth(LEAVES[:5])
        tree.extend(LEAVES[5:9])
        assert tree.root() == ref_mth(LEAVES[:9])
