"""The Merkle tree against RFC 6962 test vectors and a short independent verifier.

The verifier below (``mth``, ``root_from_path``, ``consistent``) is written from RFC 6962 /
RFC 9162 in this file and imports nothing of dstrail; the API tests use it too.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from dstrail.domain.trail import merkle

# --- the independent verifier (RFC 6962 section 2.1, RFC 9162 sections 2.1.3.2 and 2.1.4.2) ---


def h_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def h_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes, by the recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return h_node(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = h_node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = h_node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistent(m: int, n: int, proof: list[bytes], old: bytes, new: bytes) -> bool:
    if m == n:
        return old == new and not proof
    if m == 0:
        return True
    if m & (m - 1) == 0:
        proof = [old, *proof]
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = h_node(c, fr), h_node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = h_node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old and sr == new


# --- RFC 6962 test vectors (certificate-transparency reference implementation) ---

VECTOR_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_PATHS = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (0, 1): [],
}
VECTOR_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


class StoredTree:
    """What the store keeps: every perfect subtree, built by appending leaf after leaf."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.frontier: list[bytes] = []
        for index, leaf in enumerate(leaves):
            self.nodes[(0, index)] = leaf
            self.frontier, completed = merkle.append_leaf(self.frontier, index, leaf)
            for level, node_index, value in completed:
                self.nodes[(level, node_index)] = value

    def read(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


@pytest.fixture(scope="module")
def vector_tree() -> StoredTree:
    return StoredTree([merkle.leaf_hash(data) for data in VECTOR_LEAVES])


def test_roots_match_the_rfc6962_vectors(vector_tree: StoredTree) -> None:
    assert merkle.EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest()
    builder = merkle.FrontierBuilder()
    for size, data in enumerate(VECTOR_LEAVES, start=1):
        builder.add(merkle.leaf_hash(data))
        assert builder.root().hex() == VECTOR_ROOTS[size - 1]
        assert merkle.tree_root(size, vector_tree.read).hex() == VECTOR_ROOTS[size - 1]
    assert merkle.root_of_frontier(vector_tree.frontier).hex() == VECTOR_ROOTS[-1]


def test_proofs_match_the_rfc6962_vectors(vector_tree: StoredTree) -> None:
    for (index, size), expected in VECTOR_PATHS.items():
        assert [p.hex() for p in merkle.inclusion_proof(index, size, vector_tree.read)] == expected
    for (first, second), expected in VECTOR_CONSISTENCY.items():
        proof = merkle.consistency_proof(first, second, vector_tree.read)
        assert [p.hex() for p in proof] == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100, 257])
def test_every_proof_verifies_with_the_independent_verifier(size: int) -> None:
    leaves = [h_leaf(str(i).encode()) for i in range(size)]
    tree = StoredTree(leaves)
    for n in range(1, size + 1):
        root = mth(leaves[:n])
        assert merkle.tree_root(n, tree.read) == root
        for index in {0, n // 3, n // 2, n - 1}:
            path = merkle.inclusion_proof(index, n, tree.read)
            assert len(path) <= n.bit_length()
            assert root_from_path(leaves[index], index, n, path) == root
            assert merkle.verify_inclusion(leaves[index], index, n, path, root)
        for m in {0, 1, n // 2, n - 1, n}:
            proof = merkle.consistency_proof(m, n, tree.read)
            assert consistent(m, n, proof, mth(leaves[:m]), root)
            assert merkle.verify_consistency(m, n, proof, mth(leaves[:m]), root)


def test_wrong_proofs_are_rejected() -> None:
    leaves = [h_leaf(bytes([i])) for i in range(11)]
    tree = StoredTree(leaves)
    root = mth(leaves)
    path = merkle.inclusion_proof(4, 11, tree.read)
    assert not merkle.verify_inclusion(leaves[5], 4, 11, path, root)
    assert not merkle.verify_inclusion(leaves[4], 5, 11, path, root)
    assert not merkle.verify_inclusion(leaves[4], 4, 11, path[:-1], root)
    proof = merkle.consistency_proof(6, 11, tree.read)
    assert not merkle.verify_consistency(6, 11, proof, mth(leaves[:5]), root)
    assert not merkle.verify_consistency(6, 11, proof, mth(leaves[:6]), mth(leaves[:10]))


def test_a_proof_reads_logarithmically_many_stored_nodes() -> None:
    rng = random.Random(7)
    for _ in range(50):
        size = rng.randrange(2, 10**9)
        index = rng.randrange(size)
        wanted = merkle.nodes_needed(
            lambda read, i=index, n=size: merkle.inclusion_proof(i, n, read)
        )
        assert len(wanted) <= 2 * size.bit_length()
        first = rng.randrange(1, size)
        wanted = merkle.nodes_needed(
            lambda read, m=first, n=size: merkle.consistency_proof(m, n, read)
        )
        assert len(wanted) <= 2 * size.bit_length()


def test_frontier_round_trips() -> None:
    leaves = [h_leaf(bytes([i])) for i in range(13)]
    tree = StoredTree(leaves)
    packed = merkle.pack_frontier(tree.frontier)
    assert merkle.unpack_frontier(packed) == tree.frontier
    assert [tree.read(*node) for node in merkle.frontier_nodes(13)] == tree.frontier
    assert merkle.unpack_frontier(None) == []
