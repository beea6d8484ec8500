"""The per-entry hot path: hash every leaf, pull out identities, match the rules.

A pure function over a batch so it can run in worker processes; anything needing I/O or full
certificate parsing happens later, and only for the few entries that matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

from .entries import tbs_without_sct
from .errors import DecodeError
from .identities import leaf_identities
from .match.rules import Rules

WATCH, LOOKALIKE = "watch", "lookalike"


@dataclass(slots=True)
class Hit:
    """An entry that matched: a watch item, or a lookalike finding (as JSON)."""

    offset: int
    kind: str  # WATCH or LOOKALIKE
    watch_item: str | None = None
    finding: dict[str, object] | None = None


@dataclass(slots=True)
class ScanResult:
    """What a batch yields: every leaf hash, the hits, the unparsable entries, the names index rows."""

    hashes: list[bytes]
    hits: list[Hit] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (offset, error)
    names: list[tuple[int, int, bytes, list[str]]] = field(default_factory=list)  # (offset, type, tbs, names)


def leaf_tbs_sha256(leaf_input: bytes) -> bytes:
    """SHA-256 of the entry's TBS as a precert carries it (a final cert without its SCT list)."""
    if leaf_input[11] == 1:  # precert: issuer_key_hash, then the TBS
        n = int.from_bytes(leaf_input[44:47], "big")
        return sha256(leaf_input[47 : 47 + n]).digest()
    n = int.from_bytes(leaf_input[12:15], "big")
    return sha256(tbs_without_sct(leaf_input[15 : 15 + n])).digest()


def scan_batch(leaf_inputs: list[bytes], rules: Rules | None, index_names: bool = False) -> ScanResult:
    """Hash and match one batch of MerkleTreeLeaf inputs."""
    hashes = [sha256(b"\x00" + li).digest() for li in leaf_inputs]
    res = ScanResult(hashes)
    watch = rules.watchlist.match if rules is not None and rules.watchlist is not None else None
    detector = rules.detector if rules is not None else None
    for i, li in enumerate(leaf_inputs):
        try:
            etype, _, names = leaf_identities(li)
            if index_names and names:
                res.names.append((i, etype, leaf_tbs_sha256(li), names))
        except DecodeError as e:
            res.malformed.append((i, str(e)))
            continue
        item = watch(names) if watch is not None else None
        if item is not None:
            res.hits.append(Hit(i, WATCH, watch_item=item))
        elif detector is not None:
            findings = detector.check_names(names)
            if findings:
                best = findings[0]
                res.hits.append(Hit(i, LOOKALIKE, finding={
                    "brand": best.brand, "techniques": list(best.techniques), "score": best.score,
                    "explanation": best.explanation, "lookalike_name": best.name,
                    "findings": [{"name": f.name, "brand": f.brand, "techniques": list(f.techniques),
                                  "score": f.score} for f in findings],
                }))
    return res
