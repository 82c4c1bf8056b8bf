"""An append-only Merkle tree with RFC 9162 (Certificate Transparency v2) hashing:
proofs made from stored node hashes, and their verification.

The tree is stored as its perfect subtrees: node (level, index) covers leaves
[index * 2^level, (index + 1) * 2^level). Every range a proof needs decomposes into
such nodes, so a proof costs one look-up of O(log n) stored hashes, never a scan of
the leaves. Proof makers take a `NodeHashes` function; `needed_nodes` says which
nodes a proof will ask for, so the caller can fetch them in one query."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import msgspec

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> hash of that perfect subtree
NodeHashes = Callable[[int, int], bytes]


class ProofError(Exception):
    """A proof that does not prove what it claims (or is malformed)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, nodes: NodeHashes) -> bytes:
    """MTH(D[start:end]) for a range that arises in RFC 9162's recursion."""
    size = end - start
    if size <= 0:
        raise ValueError("empty range")
    if size & (size - 1) == 0 and start % size == 0:
        return nodes(size.bit_length() - 1, start // size)
    k = _split(size)
    return node_hash(range_hash(start, start + k, nodes), range_hash(start + k, end, nodes))


def root_hash(size: int, nodes: NodeHashes) -> bytes:
    return EMPTY_ROOT if size == 0 else range_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: NodeHashes) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, start, start + k), range_hash(start + k, end, nodes)]
        return [*path(m - k, start + k, end), range_hash(start, start + k, nodes)]

    return path(index, 0, size)


def consistency_proof(old_size: int, new_size: int, nodes: NodeHashes) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")

    def subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [range_hash(start, end, nodes)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, start, start + k, whole), range_hash(start + k, end, nodes)]
        return [*subproof(m - k, start + k, end, False), range_hash(start, start + k, nodes)]

    return subproof(old_size, 0, new_size, True)


def needed_nodes(make_proof: Callable[[NodeHashes], object]) -> set[tuple[int, int]]:
    """The stored nodes a proof (or root) computation reads, found by running it
    over placeholder hashes."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    make_proof(record)
    return wanted


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2; raises ProofError unless `leaf` is at `index` in
    the tree of `size` leaves with `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2; raises ProofError unless the tree of `old_size`
    leaves with `old_root` is a prefix of the one of `new_size` with `new_root`."""
    if old_size <= 0:
        raise ProofError("a consistency proof needs a first tree of at least one leaf")
    if old_size > new_size:
        raise ProofError("the first tree is larger than the second")
    if any(len(p) != 32 for p in proof):
        raise ProofError("hashes must be 32 bytes")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of one size need an empty proof")
        if old_root != new_root:
            raise ProofError("trees of one size with different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    if len(old_root) != 32 or len(new_root) != 32:
        raise ProofError("hashes must be 32 bytes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise ProofError("consistency proof does not lead to both roots")


class Node(msgspec.Struct, frozen=True):
    level: int
    index: int
    hash: bytes


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees that make up a tree of `size` leaves, left to right."""
    positions = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            positions.append((level, start >> level))
            start += 1 << level
    return positions


def append_leaves(frontier: list[Node], size: int, leaves: Iterable[bytes]) -> list[Node]:
    """Appends leaf hashes to a tree given by its frontier (`frontier_positions`
    of `size`, with hashes); returns every node that became complete, leaves
    included, and updates `frontier` in place to the new tree's."""
    made: list[Node] = []
    index = size
    for leaf in leaves:
        node = Node(0, index, leaf)
        made.append(node)
        while frontier and frontier[-1].level == node.level:
            left = frontier.pop()
            node = Node(node.level + 1, left.index // 2, node_hash(left.hash, node.hash))
            made.append(node)
        frontier.append(node)
        index += 1
    return made


def frontier_root(frontier: list[Node]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1].hash
    for node in reversed(frontier[:-1]):
        root = node_hash(node.hash, root)
    return root
