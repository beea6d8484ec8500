"""RFC 6962 log client: get-sth, get-entries, proofs, get-roots over the polite HTTP client."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

import orjson

from ..cttypes import STH, parse_extra_data
from ..errors import DecodeError, FetchError, LogMisbehaviour, VerificationError
from ..merkle import CompactRange, leaf_hash
from ..verify import verify_sth
from .base import EntryBatch, LogSource, RawEntries, decode_entries

# A truncated or garbled JSON body is retried this many times before the log counts as unreachable.
BAD_BODY_RETRIES = 5


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecodeError(f"{what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise DecodeError(f"{what} is not base64") from None


def _hashes(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise DecodeError(f"{what} is not a list")
    out = [_b64(v, what) for v in value]
    if any(len(h) != 32 for h in out):
        raise DecodeError(f"{what} holds a hash that is not 32 bytes")
    return out


class Rfc6962Source(LogSource):
    """Reads an RFC 6962 log at ``info.url``."""

    async def _json(self, path: str) -> Any:
        url = self.info.url + path
        last = ""
        for _ in range(BAD_BODY_RETRIES):
            body = await self.http.get(url)
            assert body is not None
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as e:
                last = str(e)
        raise FetchError(f"GET {url}: no valid JSON after {BAD_BODY_RETRIES} attempts ({last})")

    async def get_sth(self) -> tuple[STH, dict[str, object]]:
        raw = await self._json("ct/v1/get-sth")
        try:
            sth = STH.from_json(raw)
        except DecodeError as e:
            raise LogMisbehaviour(
                "bad_sth",
                f"get-sth returned a malformed STH: {e}",
                {"get_sth": raw if isinstance(raw, dict) else repr(raw)[:2000]},
            ) from None
        try:
            verify_sth(self.key, sth)
        except VerificationError as e:
            raise LogMisbehaviour(
                "bad_sth_signature", f"STH signature: {e}", {"sth": sth.to_json()}
            ) from None
        return sth, {"sth": sth.to_json()}

    async def fetch_entries(self, start: int, end: int, tree_size: int) -> RawEntries:
        """The raw get-entries body, decoded later in a worker (which also counts its entries).

        A log may answer with fewer entries than asked; the scan result says how many there were.
        """
        if not 0 <= start < end <= tree_size:
            raise ValueError(f"bad entry range [{start}, {end}) for tree size {tree_size}")
        parts = await self.http.get_parts(f"{self.info.url}ct/v1/get-entries?start={start}&end={end - 1}")
        assert parts is not None
        return RawEntries(start, end - start, body=parts)

    async def get_entries(self, start: int, end: int, tree_size: int) -> EntryBatch:
        for _ in range(BAD_BODY_RETRIES):
            raw = await self.fetch_entries(start, end, tree_size)
            try:
                return decode_entries(raw)
            except DecodeError:
                continue  # a torn body: ask again
        raise FetchError(f"{self.info.url}: get-entries [{start}, {end}) returned no usable entries")

    async def get_consistency_proof(self, old_size: int, new: STH) -> list[bytes]:
        raw = await self._json(f"ct/v1/get-sth-consistency?first={old_size}&second={new.tree_size}")
        try:
            return _hashes(raw.get("consistency") if isinstance(raw, dict) else None, "consistency proof")
        except DecodeError as e:
            raise LogMisbehaviour(
                "inconsistent_tree",
                f"malformed consistency proof: {e}",
                {"first": old_size, "sth": new.to_json()},
            ) from None

    async def get_inclusion_proof(self, leaf: bytes, index: int, sth: STH) -> tuple[int, list[bytes]]:
        # get-proof-by-hash finds the leaf by hash; a leaf logged twice may come back at another
        # index, and a proof there proves the same content.
        q = quote(base64.b64encode(leaf).decode(), safe="")
        raw = await self._json(f"ct/v1/get-proof-by-hash?hash={q}&tree_size={sth.tree_size}")
        try:
            if not isinstance(raw, dict) or not isinstance(raw.get("leaf_index"), int):
                raise DecodeError("no leaf_index")
            return raw["leaf_index"], _hashes(raw.get("audit_path"), "audit path")
        except DecodeError as e:
            raise LogMisbehaviour(
                "bad_inclusion_proof",
                f"malformed inclusion proof for index {index}: {e}",
                {"index": index, "sth": sth.to_json()},
            ) from None

    async def right_edge(self, sth: STH) -> CompactRange:
        if sth.tree_size == 0:
            return CompactRange()
        batch = await self.get_entries(sth.tree_size - 1, sth.tree_size, sth.tree_size)
        last = leaf_hash(batch.leaf_inputs[0])
        index, path = await self.get_inclusion_proof(last, sth.tree_size - 1, sth)
        if index != sth.tree_size - 1:
            # The last leaf is a duplicate of an earlier one; its path proves a different position.
            raise FetchError(f"{self.info.url}: cannot start at the end (last leaf duplicates index {index})")
        return CompactRange.from_last_leaf_proof(sth.tree_size, last, path)

    async def get_chain(self, entry_type: int, extra: bytes | str) -> tuple[bytes | None, list[bytes]]:
        if isinstance(extra, str):  # left base64 by decode_get_entries until an entry matters
            try:
                extra = binascii.a2b_base64(extra, strict_mode=True)
            except binascii.Error:
                raise DecodeError("extra_data is not base64") from None
        return parse_extra_data(entry_type, extra)

    async def get_roots(self) -> list[bytes]:
        """The log's accepted roots (DER)."""
        raw = await self._json("ct/v1/get-roots")
        certs = raw.get("certificates") if isinstance(raw, dict) else None
        if not isinstance(certs, list):
            raise DecodeError("get-roots: no certificates list")
        return [_b64(c, "root certificate") for c in certs]


def decode_get_entries(body: bytes, start: int, most: int) -> EntryBatch:
    """Decode a get-entries body of 1 to ``most`` entries: leaf inputs now, ``extra_data`` kept
    as base64 text.

    A body that is not the JSON it should be (torn, empty, or holding too many entries) is a
    DecodeError, so the fetcher asks again; valid JSON with an entry that is not base64 is the
    log's word, and so misbehaviour.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise DecodeError(f"get-entries body is not JSON: {e}") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not 0 < len(entries) <= most:
        raise DecodeError(f"get-entries body does not hold 1 to {most} entries")
    a2b = binascii.a2b_base64
    try:
        leaves = [a2b(e["leaf_input"], strict_mode=True) for e in entries]
        extras = [e.get("extra_data", "") for e in entries]
        if not all(isinstance(x, str) for x in extras):
            raise TypeError("extra_data is not a string")
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError):
        raise LogMisbehaviour(
            "bad_entries",
            f"get-entries from {start} returned an entry without valid base64",
            {"start": start, "response_prefix": body[:2000].decode("utf-8", "replace")},
        ) from None
    return EntryBatch(start, leaves, extras)
