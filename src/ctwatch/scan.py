"""The per-entry hot path: hash every leaf, pull out identities, match the watchlist.

A pure function over a batch so it can run in worker processes; anything needing I/O or full
certificate parsing happens later, and only for the few entries that matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

from .errors import DecodeError
from .identities import leaf_identities
from .match.watchlist import Watchlist


@dataclass(slots=True)
class ScanResult:
    """What a batch yields: every leaf hash, the hits and the entries that did not parse."""

    hashes: list[bytes]
    hits: list[tuple[int, str]] = field(default_factory=list)  # (offset in batch, watch item)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (offset, error)


def scan_batch(leaf_inputs: list[bytes], watchlist: Watchlist | None) -> ScanResult:
    """Hash and match one batch of MerkleTreeLeaf inputs."""
    hashes = [sha256(b"\x00" + li).digest() for li in leaf_inputs]
    res = ScanResult(hashes)
    match = watchlist.match if watchlist is not None and len(watchlist) else None
    for i, li in enumerate(leaf_inputs):
        try:
            _, _, names = leaf_identities(li)
        except DecodeError as e:
            res.malformed.append((i, str(e)))
            continue
        if match is not None:
            item = match(names)
            if item is not None:
                res.hits.append((i, item))
    return res
