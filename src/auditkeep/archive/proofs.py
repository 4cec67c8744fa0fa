"""A sealed range is one perfect subtree of the log's RFC 6962 tree: leaves
[first, first + W) with W a power of two and first a multiple of W, whose root is the
stored node (log2 W, first / W). Its path to a checkpoint's root is the inclusion
proof of index first / W in the tree of ceil(size / W) level-log2(W) nodes (RFC 9162
§2.1.3), so `merkle.verify_inclusion` checks it unchanged.
"""

from __future__ import annotations

from auditkeep.errors import ProofError
from auditkeep.log import merkle


def check_aligned(first: int, width: int) -> int:
    """log2(width); ProofError unless width is a power of two dividing first."""
    if width < 1 or width & (width - 1) or first % width or first < 0:
        raise ProofError(f"range [{first}, {first + width}) is not an aligned perfect subtree")
    return width.bit_length() - 1


def subtree_proof(first: int, width: int, size: int, read: merkle.NodeReader) -> list[bytes]:
    """The siblings on the way from the root of the tree of `size` down to the subtree
    [first, first + width), lowest first (the order of an inclusion proof)."""
    check_aligned(first, width)
    if first + width > size:
        raise ProofError(f"range [{first}, {first + width}) is not inside a tree of size {size}")
    return merkle.subtree_inclusion_proof(first, width, size, read)


def verify_subtree(root: bytes, first: int, width: int, size: int, proof: list[bytes],
                   tree_root: bytes) -> None:
    """ProofError unless `proof` puts the subtree of `root` at [first, first + width)
    under `tree_root`, the root of the tree of `size`."""
    level = check_aligned(first, width)
    if first + width > size:
        raise ProofError(f"range [{first}, {first + width}) is not inside a tree of size {size}")
    merkle.verify_inclusion(root, first >> level, -(-size // width), proof, tree_root)


def range_root(leaves: list[bytes]) -> bytes:
    """MTH of a perfect subtree's leaves (a power-of-two count), level by level."""
    level = leaves
    while len(level) > 1:
        level = merkle.node_hashes(level)
    return level[0] if level else merkle.EMPTY_ROOT
