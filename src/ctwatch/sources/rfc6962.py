"""RFC 6962 log client: get-sth, get-entries, proofs, get-roots over the polite HTTP client."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote
from typing import Any

import orjson

from ..cttypes import STH, parse_extra_data
from ..errors import DecodeError, FetchError, LogMisbehaviour, VerificationError
from ..merkle import CompactRange, leaf_hash
from ..verify import verify_sth
from .base import EntryBatch, LogSource

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
            raise LogMisbehaviour("bad_sth", f"get-sth returned a malformed STH: {e}",
                                  {"get_sth": raw if isinstance(raw, dict) else repr(raw)[:2000]}) from None
        try:
            verify_sth(self.key, sth)
        except VerificationError as e:
            raise LogMisbehaviour("bad_sth_signature", f"STH signature: {e}", {"sth": sth.to_json()}) from None
        return sth, {"sth": sth.to_json()}

    async def get_entries(self, start: int, end: int, tree_size: int) -> EntryBatch:
        if not 0 <= start < end <= tree_size:
            raise ValueError(f"bad entry range [{start}, {end}) for tree size {tree_size}")
        for _ in range(BAD_BODY_RETRIES):
            raw = await self._json(f"ct/v1/get-entries?start={start}&end={end - 1}")
            entries = raw.get("entries") if isinstance(raw, dict) else None
            if not isinstance(entries, list) or not entries or len(entries) > end - start:
                continue  # logs answer empty or odd batches under load: ask again
            leaves, extras = [], []
            try:
                b64 = base64.b64decode
                for e in entries:
                    leaves.append(b64(e["leaf_input"]))
                    extras.append(b64(e.get("extra_data", "")))
            except (KeyError, TypeError, binascii.Error, ValueError):
                raise LogMisbehaviour(
                    "bad_entries", f"get-entries [{start}, {end}) returned an entry without valid base64",
                    {"start": start, "end": end, "response_prefix": orjson.dumps(raw)[:2000].decode("utf-8", "replace")},
                ) from None
            return EntryBatch(start, leaves, extras)
        raise FetchError(f"{self.info.url}: get-entries [{start}, {end}) returned no usable entries")

    async def get_consistency_proof(self, old_size: int, new: STH) -> list[bytes]:
        raw = await self._json(f"ct/v1/get-sth-consistency?first={old_size}&second={new.tree_size}")
        try:
            return _hashes(raw.get("consistency") if isinstance(raw, dict) else None, "consistency proof")
        except DecodeError as e:
            raise LogMisbehaviour("inconsistent_tree", f"malformed consistency proof: {e}",
                                  {"first": old_size, "sth": new.to_json()}) from None

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
            raise LogMisbehaviour("bad_inclusion_proof", f"malformed inclusion proof for index {index}: {e}",
                                  {"index": index, "sth": sth.to_json()}) from None

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

    async def get_chain(self, entry_type: int, extra: bytes) -> tuple[bytes | None, list[bytes]]:
        return parse_extra_data(entry_type, extra)

    async def get_roots(self) -> list[bytes]:
        """The log's accepted roots (DER)."""
        raw = await self._json("ct/v1/get-roots")
        certs = raw.get("certificates") if isinstance(raw, dict) else None
        if not isinstance(certs, list):
            raise DecodeError("get-roots: no certificates list")
        return [_b64(c, "root certificate") for c in certs]
