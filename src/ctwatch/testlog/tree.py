"""A dense Merkle tree over stored leaf hashes: every complete node kept, so any proof is O(log n).

The test log serves proofs, roots of old sizes and hash tiles; keeping level ``l`` as one
``bytearray`` of ``size >> l`` hashes makes each of those a slice, at twice the leaf-hash memory.
"""

from __future__ import annotations

from hashlib import sha256

from ..merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, range_root

HASH = 32


class DenseTree:
    """Leaf hashes and all complete internal nodes; leaves may be replaced (forks, bad entries)."""

    __slots__ = ("levels", "size")

    def __init__(self, leaf_hashes: bytes | bytearray = b"") -> None:
        self.levels: list[bytearray] = [bytearray()]
        self.size = 0
        self.extend(leaf_hashes)

    def extend(self, leaf_hashes: bytes | bytearray) -> None:
        """Append concatenated 32-byte leaf hashes."""
        if len(leaf_hashes) % HASH:
            raise ValueError("leaf hashes must be a multiple of 32 bytes")
        self.levels[0] += leaf_hashes
        self.size = len(self.levels[0]) // HASH
        level = 0
        while self.size >> (level + 1):
            if level + 1 == len(self.levels):
                self.levels.append(bytearray())
            below, above = self.levels[level], self.levels[level + 1]
            for i in range(len(above) // HASH, self.size >> (level + 1)):
                above += sha256(b"\x01" + below[2 * i * HASH : (2 * i + 2) * HASH]).digest()
            level += 1

    def set_leaf(self, index: int, leaf_hash: bytes) -> None:
        """Replace one leaf hash and recompute its complete ancestors."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        self.levels[0][index * HASH : (index + 1) * HASH] = leaf_hash
        i = index >> 1
        for level in range(1, len(self.levels)):
            if i >= len(self.levels[level]) // HASH:
                break
            below = self.levels[level - 1]
            self.levels[level][i * HASH : (i + 1) * HASH] = sha256(
                b"\x01" + below[2 * i * HASH : (2 * i + 2) * HASH]
            ).digest()
            i >>= 1

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        return self.node(0, index)

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree [index·2^level, (index+1)·2^level); a ``merkle.NodeFn``."""
        data = self.levels[level]
        if (index + 1) * HASH > len(data):
            raise IndexError(f"node {level}/{index} is not complete in a tree of size {self.size}")
        return bytes(data[index * HASH : (index + 1) * HASH])

    def nodes(self, level: int, start: int, count: int) -> bytes:
        """``count`` consecutive node hashes at ``level`` (a hash tile's content)."""
        data = self.levels[level] if level < len(self.levels) else b""
        if (start + count) * HASH > len(data):
            raise IndexError(f"nodes {level}/{start}+{count} are not complete in a tree of size {self.size}")
        return bytes(data[start * HASH : (start + count) * HASH])

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} outside 0..{self.size}")
        return range_root(self.node, 0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size``."""
        return inclusion_proof(self.node, index, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 consistency proof from ``old`` to ``new`` leaves."""
        return consistency_proof(self.node, old, new)
