"""The one interface the monitor uses to read a log, whatever protocol the log speaks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..cttypes import STH
from ..loglist import RFC6962, LogInfo
from ..merkle import CompactRange
from ..verify import LogKey
from .http import HttpClient


@dataclass(slots=True)
class EntryBatch:
    """Consecutive entries [start, start + len(leaf_inputs)).

    ``leaf_inputs[i]`` is the MerkleTreeLeaf whose hash is the tree's leaf ``start + i``.
    ``extras[i]`` is protocol-specific chain data, decoded only when an entry matters
    (RFC 6962: get-entries ``extra_data``, still base64; static-ct: the tile's pre_certificate
    and fingerprints).
    """

    start: int
    leaf_inputs: list[bytes]
    extras: list[bytes] | list[str]

    def __len__(self) -> int:
        return len(self.leaf_inputs)

    @property
    def end(self) -> int:
        return self.start + len(self.leaf_inputs)


@dataclass(slots=True)
class RawEntries:
    """Entries as fetched: a JSON body to decode in a scan worker, or a batch decoded already.

    Decoding get-entries JSON and base64 is a third of the per-entry cost, so RFC 6962 bodies
    travel to the worker processes undecoded; static-ct tiles are split cheaply in the fetcher.
    """

    start: int
    count: int  # entries in ``batch``; for a ``body``, the most it may hold (checked when decoded)
    body: bytes | list[bytes] | None = None  # whole, or in the pieces it arrived in
    batch: EntryBatch | None = None


class LogSource(ABC):
    """Reads one log. Every tree head it returns has a verified signature.

    Implementations raise :class:`~ctwatch.errors.FetchError` when the log cannot be reached
    (after retries) and :class:`~ctwatch.errors.LogMisbehaviour` when it serves something provably
    wrong (a bad signature, an entry at the wrong index, an issuer that is not what it is named).
    """

    def __init__(self, info: LogInfo, http: HttpClient) -> None:
        self.info = info
        self.http = http
        self.key = LogKey(info.key)

    @abstractmethod
    async def get_sth(self) -> tuple[STH, dict[str, object]]:
        """The latest tree head, signature verified, with its raw form as evidence."""

    @abstractmethod
    async def get_entries(self, start: int, end: int, tree_size: int) -> EntryBatch:
        """At least one entry from [start, end); ``end <= tree_size`` of a verified head."""

    async def fetch_entries(self, start: int, end: int, tree_size: int) -> RawEntries:
        """Like :meth:`get_entries`, but may leave the decoding to :func:`decode_entries`."""
        batch = await self.get_entries(start, end, tree_size)
        return RawEntries(batch.start, len(batch), batch=batch)

    @abstractmethod
    async def get_consistency_proof(self, old_size: int, new: STH) -> list[bytes]:
        """Proof that the tree of ``old_size`` is a prefix of ``new`` (not yet verified)."""

    @abstractmethod
    async def get_inclusion_proof(self, leaf_hash: bytes, index: int, sth: STH) -> tuple[int, list[bytes]]:
        """(index, audit path) of the leaf ``leaf_hash`` in ``sth`` (not yet verified).

        The index is the one the proof is for: RFC 6962 finds leaves by hash, so a leaf logged
        twice may be proven at its other index.
        """

    @abstractmethod
    async def right_edge(self, sth: STH) -> CompactRange:
        """The collapsed tree of [0, sth.tree_size), for ``--start-at-end`` (not yet verified).

        RFC 6962: from the last entry and its inclusion proof; static-ct: from hash tiles. The
        monitor checks ``root() == sth.root_hash`` before trusting it.
        """

    @abstractmethod
    async def get_chain(self, entry_type: int, extra: bytes) -> tuple[bytes | None, list[bytes]]:
        """(precertificate DER or None, issuer chain DERs) for an entry's ``extra``."""

    def batch_hint(self) -> int:
        """How many entries one request usually yields (for scheduling parallel fetches)."""
        return 256


def open_source(info: LogInfo, http: HttpClient, issuer_cache_dir: Path | None = None) -> LogSource:
    """The source for ``info``'s protocol; static-ct issuers are cached in ``issuer_cache_dir``."""
    if info.protocol == RFC6962:
        from .rfc6962 import Rfc6962Source

        return Rfc6962Source(info, http)
    from .static import StaticSource

    return StaticSource(info, http, issuer_cache_dir)


def decode_entries(raw: RawEntries) -> EntryBatch:
    """The batch a RawEntries holds (pure: runs in scan workers)."""
    if raw.batch is not None:
        return raw.batch
    from .rfc6962 import decode_get_entries

    assert raw.body is not None
    body = raw.body if isinstance(raw.body, bytes) else b"".join(raw.body)
    return decode_get_entries(body, raw.start, raw.count)
