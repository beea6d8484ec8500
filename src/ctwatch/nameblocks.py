"""The names index's unit: one scanned batch's names, positions and hashes, for backfill.

Written for every batch on the hot path, read only when a new name is watched. Names compress
well and go through zlib (level 1); hashes do not, so they are kept raw beside them — compressing
their hex cost more CPU than everything else in the block.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import orjson

PRECERT = 1  # entry_type of a precert, whose row also carries its issuer's key hash


class BlockBuilder:
    """Collects a batch's rows; :meth:`finish` gives ``(names, hashes)``, the two stored blobs.

    ``names`` is zlib(JSON ``[[offset, entry_type, [names]], ...]``); ``hashes`` holds, row by
    row, the TBS hash (32 bytes) and, for a precert, its issuer key hash (32 bytes).
    """

    __slots__ = ("hashes", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, list[str]]] = []
        self.hashes: list[bytes] = []

    def add(self, offset: int, entry_type: int, names: list[str], tbs_hash: bytes,
            issuer_key_hash: bytes | None) -> None:
        if len(tbs_hash) != 32 or (issuer_key_hash is not None) != (entry_type == PRECERT):
            raise ValueError("a row needs a 32-byte TBS hash, and an issuer key hash iff a precert")
        self.rows.append((offset, entry_type, names))
        self.hashes.append(tbs_hash)
        if issuer_key_hash is not None:
            self.hashes.append(issuer_key_hash)

    def finish(self) -> tuple[bytes, bytes] | None:
        """The two blobs, or None for a batch without names."""
        if not self.rows:
            return None
        return zlib.compress(orjson.dumps(self.rows), 1), b"".join(self.hashes)


def read_block(names: bytes, hashes: bytes) -> Iterator[tuple[int, int, bytes, list[str], bytes | None]]:
    """(offset, entry_type, TBS hash, names, issuer key hash or None) of each row of a block."""
    at = 0
    for offset, entry_type, row_names in orjson.loads(zlib.decompress(names)):
        tbs, at = hashes[at : at + 32], at + 32
        issuer = None
        if entry_type == PRECERT:
            issuer, at = hashes[at : at + 32], at + 32
        if at > len(hashes):
            raise ValueError("names block: fewer hashes than rows")
        yield offset, entry_type, tbs, row_names, issuer
    if at != len(hashes):
        raise ValueError("names block: more hashes than rows")
