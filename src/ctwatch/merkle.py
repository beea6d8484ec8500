"""RFC 6962 / RFC 9162 Merkle tree: hashing, a collapsed tree, proofs and their verification.

The monitor keeps only a :class:`CompactRange` per log (O(log n) hashes), which is all it needs to
rebuild the root from every entry. Proof *generation* works over any ``NodeFn`` (a function giving
the hash of a perfect, aligned subtree), so the test log and the static-ct client share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256

from .errors import VerificationError

NodeFn = Callable[[int, int], bytes]
"""``node(level, index)`` → hash of leaves [index·2^level, (index+1)·2^level)."""

EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(leaf_input: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf)."""
    return sha256(b"\x00" + leaf_input).digest()


def leaf_hashes(leaf_inputs: list[bytes]) -> bytes:
    """The leaf hashes of a batch, concatenated (32 bytes each): one compiled loop for all."""
    return b"".join([sha256(b"\x00" + leaf).digest() for leaf in leaf_inputs])


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return sha256(b"\x01" + left + right).digest()


class CompactRange:
    """The collapsed Merkle tree of leaves [0, size): one root per set bit of ``size``.

    ``nodes`` lists the perfect-subtree roots from the largest (leftmost) to the smallest.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"a collapsed tree of size {size} has {size.bit_count()} nodes, got {len(nodes)}"
            )
        self.size = size
        self.nodes = list(nodes)

    def append(self, h: bytes) -> None:
        """Add one leaf hash."""
        nodes = self.nodes
        size = self.size
        while size & 1:
            h = sha256(b"\x01" + nodes.pop() + h).digest()
            size >>= 1
        nodes.append(h)
        self.size += 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Add leaf hashes in order."""
        nodes = self.nodes
        size = self.size
        for h in hashes:
            s = size
            while s & 1:
                h = sha256(b"\x01" + nodes.pop() + h).digest()
                s >>= 1
            nodes.append(h)
            size += 1
        self.size = size

    def root(self) -> bytes:
        """The Merkle tree hash of [0, size)."""
        if not self.nodes:
            return EMPTY_ROOT
        h = self.nodes[-1]
        for n in reversed(self.nodes[:-1]):
            h = node_hash(n, h)
        return h

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)

    @classmethod
    def from_last_leaf_proof(cls, size: int, last_leaf: bytes, path: Sequence[bytes]) -> CompactRange:
        """Rebuild [0, size) from leaf size-1 and its inclusion path (all left siblings).

        The left siblings on the path of the last leaf are exactly the collapsed tree of
        [0, size-1), smallest first. The caller must verify the path against a root first.
        """
        if size == 0:
            raise ValueError("an empty tree has no last leaf")
        cr = cls(size - 1, list(reversed(path)))
        cr.append(last_leaf)
        return cr


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (for tests and small trees)."""
    cr = CompactRange()
    cr.extend(hashes)
    return cr.root()


# --- proof generation (RFC 6962 §2.1.1, §2.1.2) over perfect-subtree hashes ---------------------


def _largest_pow2_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def range_root(node: NodeFn, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range whose left edge is aligned as RFC 6962's recursion makes it."""
    n = end - start
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = _largest_pow2_below(n)
    return node_hash(range_root(node, start, start + k), range_root(node, start + k, end))


def compact_range(node: NodeFn, size: int) -> CompactRange:
    """The collapsed tree of [0, size) from perfect-subtree hashes (a tiled log's right edge)."""
    nodes: list[bytes] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append(node(level, start >> level))
            start += 1 << level
    return CompactRange(size, nodes)


def inclusion_proof(node: NodeFn, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]), bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_pow2_below(end - start)
        if index < start + k:
            proof.append(range_root(node, start + k, end))
            end = start + k
        else:
            proof.append(range_root(node, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(node: NodeFn, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[0:new]) per RFC 6962 §2.1.2."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    proof: list[bytes] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_root(node, start, end))
            break
        k = _largest_pow2_below(n)
        if m <= k:
            proof.append(range_root(node, start + k, end))
            end = start + k
        else:
            proof.append(range_root(node, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) -------------------------------------------------


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index``; raises if the proof is malformed."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} outside tree of size {size}")
    if len(leaf) != 32:
        raise VerificationError("leaf hash is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32:
            raise VerificationError("proof hash is not 32 bytes")
        if sn == 0:
            raise VerificationError("inclusion proof too long")
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
        raise VerificationError("inclusion proof too short")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise VerificationError unless ``proof`` shows ``leaf`` at ``index`` in the tree ``root``."""
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise VerificationError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Raise VerificationError unless ``proof`` shows tree ``size1`` is a prefix of ``size2``."""
    if size1 > size2:
        raise VerificationError(f"tree shrank from {size1} to {size2}")
    if size1 == 0:
        raise VerificationError("no consistency proof from an empty tree")
    if size1 == size2:
        if proof:
            raise VerificationError("non-empty consistency proof between equal sizes")
        if root1 != root2:
            raise VerificationError("different roots for the same tree size")
        return
    if not proof or any(len(p) != 32 for p in proof):
        raise VerificationError("consistency proof empty or malformed")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: root1 is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof too long")
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
        raise VerificationError("consistency proof too short")
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to the old root (size {size1})")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to the new root (size {size2})")
