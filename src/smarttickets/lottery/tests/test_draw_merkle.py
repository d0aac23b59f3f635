"""RFC 6962 Merkle tree hash and inclusion proofs (certificate-transparency test vectors)."""

from __future__ import annotations

import hashlib
import random

import pytest

from smarttickets.lottery import draw

# The certificate-transparency reference test leaves and their roots for sizes 0..8.
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             b"\x50\x51\x52\x53\x54\x55\x56\x57", bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path) from the same suite.
CT_PATHS = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def recursive_mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: split at the largest power of two smaller than n."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return draw.node_hash(recursive_mth(hashes[:k]), recursive_mth(hashes[k:]))


def recursive_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(hashes) == 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m < k:
        return [*recursive_path(m, hashes[:k]), recursive_mth(hashes[k:])]
    return [*recursive_path(m - k, hashes[k:]), recursive_mth(hashes[:k])]


@pytest.mark.parametrize("size", range(9))
def test_root_matches_certificate_transparency_vectors(size):
    hashes = [draw.leaf_hash(leaf) for leaf in CT_LEAVES[:size]]

    assert draw.merkle_root(hashes).hex() == CT_ROOTS[size]
    assert draw.MerkleTree(hashes).root.hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_PATHS)
def test_inclusion_proofs_match_certificate_transparency_vectors(index, size, path):
    tree = draw.MerkleTree([draw.leaf_hash(leaf) for leaf in CT_LEAVES[:size]])

    proof = tree.proof(index)

    assert [p.hex() for p in proof] == path
    assert draw.verify_inclusion(leaf_hash=draw.leaf_hash(CT_LEAVES[index]), index=index,
                                 tree_size=size, proof=proof, root=tree.root)


def test_level_by_level_tree_equals_the_recursive_definition_for_every_small_size():
    rnd = random.Random(6962)
    for n in [*range(1, 70), 127, 128, 129, 1000]:
        hashes = [rnd.randbytes(32) for _ in range(n)]
        tree = draw.MerkleTree(hashes)
        assert draw.merkle_root(hashes) == recursive_mth(hashes) == tree.root, n
        # every leaf of the small trees; a sample of the big one (the recursion is quadratic)
        for m in (range(n) if n <= 129 else [*range(0, n, 97), n - 1]):
            assert tree.proof(m) == recursive_path(m, hashes), (n, m)
            assert draw.verify_inclusion(leaf_hash=hashes[m], index=m, tree_size=n,
                                         proof=tree.proof(m), root=tree.root), (n, m)


def test_blockwise_entries_root_equals_the_whole_tree(monkeypatch):
    # given more entries than one block (block made small so the test stays fast)
    monkeypatch.setattr(draw, "BLOCK", 8)
    rnd = random.Random(1)
    entries = draw.entries_from_objects(
        {"entry_id": rnd.randbytes(16).hex(), "weight": 1, "seats": 1} for _ in range(77))

    root = draw.entries_root("lot", entries)

    leaves = [draw.leaf_hash(draw.leaf_bytes("lot", e, 1, 1)) for e in entries.entry_ids]
    assert root == recursive_mth(leaves).hex()


def test_empty_entries_root_is_sha256_of_nothing():
    assert draw.entries_root("lot", draw.entries_from_objects([])) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("tamper", ["index", "size", "proof", "leaf", "short", "long"])
def test_inclusion_proof_refuses_anything_altered(tamper):
    hashes = [draw.leaf_hash(leaf) for leaf in CT_LEAVES]
    tree = draw.MerkleTree(hashes)
    args = {"leaf_hash": hashes[5], "index": 5, "tree_size": 8, "proof": tree.proof(5),
            "root": tree.root}
    assert draw.verify_inclusion(**args)

    if tamper == "index":
        args["index"] = 4
    elif tamper == "size":
        args["tree_size"] = 6
    elif tamper == "proof":
        args["proof"] = [args["proof"][0], hashes[0], args["proof"][2]]
    elif tamper == "leaf":
        args["leaf_hash"] = hashes[4]
    elif tamper == "short":
        args["proof"] = args["proof"][:2]
    else:
        args["proof"] = [*args["proof"], hashes[0]]

    assert not draw.verify_inclusion(**args)


def test_receipt_proves_an_entry_against_the_published_root():
    # given entries and their published root
    entries = draw.entries_from_objects(
        {"entry_id": f"{i:032x}", "weight": 1 + i % 2, "seats": 2} for i in range(11))
    root = draw.entries_root("lot-7", entries)

    receipt = draw.receipt("lot-7", entries, f"{6:032x}")

    assert receipt["leaf"] == f"v1|lot-7|{6:032x}|1|2"
    assert receipt["leaf_index"] == 6
    assert receipt["tree_size"] == 11
    assert receipt["entries_root"] == root
    assert draw.verify_receipt(receipt, root)
    # a receipt whose leaf was edited (more seats) no longer proves anything
    assert not draw.verify_receipt({**receipt, "leaf": f"v1|lot-7|{6:032x}|1|3"}, root)
    assert not draw.verify_receipt({**receipt, "proof": "garbage"}, root)
