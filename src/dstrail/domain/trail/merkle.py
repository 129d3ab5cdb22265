"""An append-only Merkle tree in the style of RFC 6962 (and RFC 9162 for proof checks).

Pure code: no SQL, no framework. A leaf hash is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``; the tree of ``n`` leaves splits at the largest power of two
smaller than ``n``. Leaves are numbered from 0 (an event's leaf index is its ``seq - 1``).

A *perfect subtree* ``(level, index)`` covers the leaves ``[index * 2**level,
(index + 1) * 2**level)``; the store keeps the hash of every complete one, so any root, inclusion
proof or consistency proof needs only O(log n) of them (``NodeReader``). The *frontier* of a tree
of size ``n`` is the list of perfect subtree hashes along its right edge, largest first (one per
set bit of ``n``): enough to append a leaf and to compute the root without reading old leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree, ``SHA-256("")``."""

NodeId = tuple[int, int]
"""(level, index) of a perfect subtree; level 0 is a leaf."""

NodeReader = Callable[[int, int], bytes]
"""Returns the hash of the perfect subtree (level, index)."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def append_leaf(
    frontier: list[bytes], size: int, leaf: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Add a leaf to a tree of ``size`` leaves with ``frontier``.

    Returns the new frontier and the perfect subtrees (level >= 1, index, hash) completed by it.
    """
    frontier = list(frontier)
    completed: list[tuple[int, int, bytes]] = []
    current = leaf
    level = 0
    index = size
    remaining = size
    while remaining & 1:
        current = node_hash(frontier.pop(), current)
        level += 1
        index >>= 1
        completed.append((level, index, current))
        remaining >>= 1
    frontier.append(current)
    return frontier, completed


def root_of_frontier(frontier: Sequence[bytes]) -> bytes:
    """The tree root from its frontier (largest subtree first)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def frontier_nodes(size: int) -> list[NodeId]:
    """The perfect subtrees that make up the frontier of a tree of ``size`` leaves."""
    nodes: list[NodeId] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def pack_frontier(frontier: Sequence[bytes]) -> bytes:
    """The frontier as one byte string (32 bytes a hash)."""
    return b"".join(frontier)


def unpack_frontier(packed: bytes | None) -> list[bytes]:
    """The inverse of ``pack_frontier``."""
    if not packed:
        return []
    return [bytes(packed[i : i + HASH_SIZE]) for i in range(0, len(packed), HASH_SIZE)]


class FrontierBuilder:
    """Folds leaves one by one; the root of any prefix is available as leaves arrive."""

    __slots__ = ("frontier", "size")

    def __init__(self) -> None:
        self.frontier: list[bytes] = []
        self.size = 0

    @classmethod
    def resume(cls, size: int, frontier: Sequence[bytes]) -> FrontierBuilder:
        """A builder that goes on from a tree of ``size`` leaves whose frontier (the roots of
        ``frontier_nodes(size)``, in that order) is ``frontier``."""
        if len(frontier) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier hashes")
        builder = cls()
        builder.frontier = list(frontier)
        builder.size = size
        return builder

    def add(self, leaf: bytes) -> None:
        """Append a leaf."""
        frontier = self.frontier
        current = leaf
        remaining = self.size
        while remaining & 1:
            current = _sha256(b"\x01" + frontier.pop() + current).digest()
            remaining >>= 1
        frontier.append(current)
        self.size += 1

    def root(self) -> bytes:
        """The root of the leaves added so far."""
        return root_of_frontier(self.frontier)


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    """MTH of a list of leaf hashes."""
    builder = FrontierBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def build_tree(leaves: Iterable[bytes]) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Every complete subtree of level >= 1 (level, index, hash) and the frontier of a tree
    of these leaves: what the store keeps, for loaders that write events in bulk."""
    frontier: list[bytes] = []
    nodes: list[tuple[int, int, bytes]] = []
    for size, leaf in enumerate(leaves):
        frontier, completed = append_leaf(frontier, size, leaf)
        nodes.extend(completed)
    return nodes, frontier


# Ranges, proofs and the nodes they need ------------------------------------------------------


def _range_nodes(start: int, end: int) -> list[NodeId]:
    """Perfect subtrees covering ``[start, end)`` where ``start`` is aligned to the range size
    of an RFC 6962 subtree (as every range met in a proof is), largest first."""
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hash(start: int, end: int, read: NodeReader) -> bytes:
    """MTH of the leaves ``[start, end)`` from stored perfect subtrees."""
    if end <= start:
        return EMPTY_ROOT
    hashes = [read(level, index) for level, index in _range_nodes(start, end)]
    return root_of_frontier(hashes)


def tree_root(size: int, read: NodeReader) -> bytes:
    """The root of the first ``size`` leaves."""
    return range_hash(0, size, read)


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 6962 audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end, read))
            end = start + k
        else:
            path.append(range_hash(start, start + k, read))
            start += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    """RFC 6962 consistency proof from the tree of ``first`` leaves to that of ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(start, end, read))
            break
        k = split_point(n)
        if m <= k:
            proof.append(range_hash(start + k, end, read))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, read))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def nodes_needed(compute: Callable[[NodeReader], object]) -> set[NodeId]:
    """The (level, index) pairs a proof or root computation reads, so a store can fetch them
    all in one query before computing it again with the real hashes."""
    wanted: set[NodeId] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    compute(record)
    return wanted


# Verification (RFC 9162 section 2.1.3.2 and 2.1.4.2) -----------------------------------------


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to, or ``None`` when its shape is wrong."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    result = leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves leaf ``index`` in the tree of ``size`` leaves with ``root``."""
    return root_from_inclusion(leaf, index, size, path) == root


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """Whether ``proof`` shows the tree ``second_root`` extends the tree ``first_root``."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
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
    return sn == 0 and fr == first_root and sr == second_root
