"""static-ct-api (C2SP tiled log) client: checkpoints, data and hash tiles, issuers.

A tiled log serves no proofs: it serves its Merkle tree as immutable tiles of 256 hashes, so
inclusion and consistency proofs and the right edge are computed here from hash tiles. Partial
tiles are fetched only at the width a verified checkpoint implies, with the full tile as the
fallback (logs delete partials once full). Every byte from the log is bounded and checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ..checkpoint import Checkpoint
from ..cttypes import PRECERT_ENTRY, STH, X509_ENTRY, Reader, parse_leaf_index_extension
from ..errors import DecodeError, FetchError, LogMisbehaviour, VerificationError
from ..loglist import LogInfo
from ..merkle import CompactRange, NodeFn, compact_range, consistency_proof, inclusion_proof, node_hash
from ..verify import verify_checkpoint
from .base import EntryBatch, LogSource
from .http import HttpClient

log = logging.getLogger(__name__)

TILE_WIDTH = 256
TILE_HEIGHT = 8  # log2(TILE_WIDTH): a hash tile at level L holds tree nodes of level 8·L
HASH_SIZE = 32
MAX_TREE_SIZE = 1 << 40  # leaf_index is a uint40: no honest log is larger
# A body that fails its hash or does not parse is fetched this often before it counts as the
# log's word: a torn transfer with a plausible length looks the same once.
SIGNED_CONTENT_ATTEMPTS = 4
MAX_ISSUER_BYTES = 1 << 16  # real issuers are 1–3 KB
MAX_BATCH_TILES = 4  # data tiles fetched concurrently by one get_entries call
DATA_TILE_CACHE = 8  # parsed data tiles kept (misaligned or repeated ranges, the growing right edge)
HASH_TILE_CACHE = 256  # 2 MiB of hash tiles: proof paths share their upper tiles
ISSUER_CACHE = 1024  # issuers kept in memory; real logs reference a few dozen
EVIDENCE_PREFIX = 64  # bytes of a bad tile quoted (hex) in the evidence
GZIP_MAGIC = b"\x1f\x8b"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def tile_index_path(n: int) -> str:
    """A tile index as path elements of 3 digits, all but the last prefixed with ``x``.

    1234067 → ``x001/x234/067``.
    """
    if n < 0:
        raise ValueError(f"negative tile index {n}")
    groups = []
    while True:
        n, rem = divmod(n, 1000)
        groups.append(f"{rem:03d}")
        if not n:
            break
    return "/".join([*("x" + g for g in reversed(groups[1:])), groups[0]])


def tile_path(level: int | str, n: int, width: int = TILE_WIDTH) -> str:
    """``tile/<level>/<N>[.p/<W>]``; ``level`` is a hash-tile level or ``"data"``."""
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} outside 1..{TILE_WIDTH}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{tile_index_path(n)}{suffix}"


def tile_width(tree_size: int, level: int, n: int) -> int:
    """Width of tile ``n`` at hash level ``level`` (data tiles: level 0) in a tree of ``tree_size``."""
    width = min(TILE_WIDTH, (tree_size >> (TILE_HEIGHT * level)) - n * TILE_WIDTH)
    if width <= 0:
        raise ValueError(f"tile {level}/{n} lies beyond a tree of size {tree_size}")
    return width


def gunzip(data: bytes, cap: int) -> bytes:
    """Decompress one gzip member of at most ``cap`` bytes; DecodeError if malformed, FetchError if larger."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, cap + 1)
    except zlib.error as e:
        raise DecodeError(f"bad gzip body: {e}") from None
    if len(out) > cap:
        raise FetchError(f"gzip body decompresses to more than the cap of {cap} bytes")
    if not d.eof or d.unused_data:
        raise DecodeError("gzip body is truncated or has trailing data")
    return out


def parse_data_tile(data: bytes, first_index: int, count: int, *, exact: bool,
                    url: str = "") -> tuple[list[bytes], list[bytes]]:
    """Split the first ``count`` TileLeaf entries of a data tile into (leaf_inputs, extras).

    ``leaf_inputs[i]`` is the MerkleTreeLeaf (``0x00 0x00 ‖ TimestampedEntry``) whose hash is
    leaf ``first_index + i``; ``extras[i]`` is the pre_certificate (precerts) and the fingerprint
    list. ``exact`` requires the tile to end after the last entry. Raises DecodeError for a
    malformed tile and LogMisbehaviour ``bad_leaf_index`` for a wrong ``leaf_index`` extension.
    This is the hot path of following a log: offsets only, no per-entry objects.
    """
    n = len(data)
    mv = memoryview(data)
    leaves: list[bytes] = []
    extras: list[bytes] = []
    append_leaf, append_extra = leaves.append, extras.append
    p = 0
    index = first_index
    try:
        for index in range(first_index, first_index + count):
            start = p
            etype = data[p + 8] << 8 | data[p + 9]
            if etype == X509_ENTRY:
                p += 10
            elif etype == PRECERT_ENTRY:
                p += 42  # and the 32-byte issuer_key_hash
            else:
                raise DecodeError(f"entry {index}: unknown entry_type {etype}")
            p += 3 + (data[p] << 16 | data[p + 1] << 8 | data[p + 2])
            ext = p + 2
            p = ext + (data[p] << 8 | data[p + 1])
            if p > n:
                raise IndexError
            te_end = p
            if p - ext == 8 and data[ext] == 0 and data[ext + 1] == 0 and data[ext + 2] == 5:
                leaf_index: int | None = int.from_bytes(data[ext + 3 : p], "big")
            else:
                leaf_index = parse_leaf_index_extension(data[ext:p])
            if leaf_index != index:
                raise LogMisbehaviour(
                    "bad_leaf_index",
                    f"entry {index} carries leaf_index {leaf_index}",
                    {"tile": url, "index": index, "leaf_index": leaf_index,
                     "extensions": data[ext:p].hex()[:512],
                     "leaf_hash": hashlib.sha256(b"\x00\x00\x00" + mv[start:te_end]).hexdigest()},
                )
            if etype == PRECERT_ENTRY:
                p += 3 + (data[p] << 16 | data[p + 1] << 8 | data[p + 2])
            fps = data[p] << 8 | data[p + 1]
            if fps % HASH_SIZE:
                raise DecodeError(f"entry {index}: fingerprint list of {fps} bytes")
            p += 2 + fps
            if p > n:
                raise IndexError
            append_leaf(b"\x00\x00" + mv[start:te_end])
            append_extra(data[te_end:p])
    except IndexError:
        raise DecodeError(f"entry {index} is truncated (tile of {n} bytes)") from None
    if exact and p != n:
        raise DecodeError(f"{n - p} trailing bytes after entry {first_index + count - 1}")
    return leaves, extras


def parse_chain_extra(entry_type: int, extra: bytes) -> tuple[bytes | None, list[bytes]]:
    """(pre_certificate DER or None, issuer fingerprints) from a data-tile entry's extra."""
    r = Reader(extra)
    if entry_type == PRECERT_ENTRY:
        precert: bytes | None = r.vec(3)
    elif entry_type == X509_ENTRY:
        precert = None
    else:
        raise DecodeError(f"unknown entry_type {entry_type}")
    fps = r.vec(2)
    r.expect_end("tile entry chain")
    if len(fps) % HASH_SIZE:
        raise DecodeError(f"fingerprint list of {len(fps)} bytes")
    return precert, [fps[i : i + HASH_SIZE] for i in range(0, len(fps), HASH_SIZE)]


class _Lru(Generic[K, V]):
    """A small least-recently-used map: bounded memory whatever a log makes us fetch."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)


class _Once(Generic[K, V]):
    """Concurrent callers asking for the same key share one fetch."""

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._tasks[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # shield: one caller giving up must not cancel the fetch the others wait on
        return await asyncio.shield(task)

    def _done(self, key: K, task: asyncio.Future[V]) -> None:
        self._tasks.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, raised to every waiter


@dataclass(frozen=True, slots=True)
class _DataTile:
    width: int
    leaves: list[bytes]
    extras: list[bytes]


class StaticSource(LogSource):
    """Reads a static-ct-api log at its monitoring prefix ``info.url``."""

    def __init__(self, info: LogInfo, http: HttpClient, issuer_cache_dir: Path | None = None) -> None:
        super().__init__(info, http)
        self.issuer_cache_dir = issuer_cache_dir
        self._data_tiles: _Lru[int, _DataTile] = _Lru(DATA_TILE_CACHE)
        self._hash_tiles: _Lru[tuple[int, int], bytes] = _Lru(HASH_TILE_CACHE)
        self._issuers: _Lru[bytes, bytes] = _Lru(ISSUER_CACHE)
        self._once_data: _Once[tuple[int, int], _DataTile] = _Once()
        self._once_hash: _Once[tuple[int, int, int], bytes] = _Once()
        self._once_issuer: _Once[bytes, bytes] = _Once()

    def batch_hint(self) -> int:
        return TILE_WIDTH

    # --- checkpoint -------------------------------------------------------------------------

    async def get_sth(self) -> tuple[STH, dict[str, object]]:
        url = self.info.url + "checkpoint"
        body = await self.http.get(url)
        assert body is not None
        text = body[: 1 << 16].decode("utf-8", "replace")
        try:
            cp = Checkpoint.parse(body)
            sth = verify_checkpoint(self.key, cp, self.info.origin).sth
        except (DecodeError, VerificationError) as e:
            raise LogMisbehaviour("bad_checkpoint", f"{url}: {e}", {"checkpoint": text}) from None
        if sth.tree_size > MAX_TREE_SIZE:
            raise LogMisbehaviour("bad_checkpoint", f"{url}: signed tree size {sth.tree_size} exceeds 2^40",
                                  {"checkpoint": text, "sth": sth.to_json()})
        return sth, {"checkpoint": text, "sth": sth.to_json()}

    # --- tiles ------------------------------------------------------------------------------

    async def _get_tile(self, level: int | str, n: int, width: int) -> tuple[bytes, str, bool]:
        """(body, url, is_full) of a tile, trying the partial tile first when ``width`` < 256."""
        if width < TILE_WIDTH:
            url = self.info.url + tile_path(level, n, width)
            body = await self.http.get(url, allow_404=True)
            if body is not None:
                return body, url, False
        url = self.info.url + tile_path(level, n)
        body = await self.http.get(url)
        assert body is not None
        return body, url, True

    async def _data_tile(self, n: int, width: int) -> _DataTile:
        cached = self._data_tiles.get(n)
        if cached is not None and cached.width >= width:
            return cached
        tile = await self._once_data.run((n, width), lambda: self._load_data_tile(n, width))
        cached = self._data_tiles.get(n)
        if cached is None or cached.width < tile.width:
            self._data_tiles.put(n, tile)
        return tile

    async def _load_data_tile(self, n: int, width: int) -> _DataTile:
        error = DecodeError("no attempt")
        for _ in range(SIGNED_CONTENT_ATTEMPTS):
            body, url, full = await self._get_tile("data", n, width)
            try:
                # A data tile starts with a uint64 millisecond timestamp whose top byte is 0 until the
                # year 2.2 million, so a leading gzip magic means a body gzipped without the header.
                if body[:2] == GZIP_MAGIC:
                    body = gunzip(body, self.http.limits.max_body)
                leaves, extras = parse_data_tile(body, n * TILE_WIDTH, width,
                                                 exact=not full or width == TILE_WIDTH, url=url)
                return _DataTile(width, leaves, extras)
            except DecodeError as e:  # maybe a torn transfer: fetch again
                error = e
        # Every attempt gave the same unparsable tile: that is what the log serves.
        raise LogMisbehaviour(
            "bad_entries", f"{url}: data tile does not parse: {error}",
            {"tile": url, "error": str(error), "size": len(body), "prefix_hex": body[:EVIDENCE_PREFIX].hex()},
        )

    async def _hash_tile(self, level: int, n: int, width: int) -> bytes:
        """The first ``width`` hashes of hash tile ``level``/``n`` (cached)."""
        cached = self._hash_tiles.get((level, n))
        if cached is not None and len(cached) >= width * HASH_SIZE:
            return cached[: width * HASH_SIZE]
        body = await self._once_hash.run((level, n, width), lambda: self._load_hash_tile(level, n, width))
        cached = self._hash_tiles.get((level, n))
        if cached is None or len(cached) < len(body):
            self._hash_tiles.put((level, n), body)
        return body[: width * HASH_SIZE]

    async def _load_hash_tile(self, level: int, n: int, width: int) -> bytes:
        body, url, full = await self._get_tile(level, n, width)
        want = HASH_SIZE * (TILE_WIDTH if full else width)
        # Hashes are random bytes: gzip is recognised only when the size is wrong.
        if len(body) != want and body[:2] == GZIP_MAGIC:
            try:
                body = gunzip(body, want)
            except DecodeError as e:
                raise FetchError(f"{url}: {e}") from None
        if len(body) != want:
            # Not signed as such: a wrong tile shows up as a failed proof; here it is only unusable.
            raise FetchError(f"{url}: hash tile of {len(body)} bytes, expected {want}")
        return body

    async def get_entries(self, start: int, end: int, tree_size: int) -> EntryBatch:
        if not 0 <= start < end <= tree_size:
            raise ValueError(f"bad entry range [{start}, {end}) for tree size {tree_size}")
        first = start // TILE_WIDTH
        last = min((end - 1) // TILE_WIDTH, first + MAX_BATCH_TILES - 1)
        numbers = range(first, last + 1)
        tiles = await asyncio.gather(*(self._data_tile(n, tile_width(tree_size, 0, n)) for n in numbers))
        leaves: list[bytes] = []
        extras: list[bytes] = []
        for n, tile in zip(numbers, tiles, strict=True):
            base = n * TILE_WIDTH
            lo, hi = max(start, base) - base, min(end, base + tile.width) - base
            leaves += tile.leaves[lo:hi]
            extras += tile.extras[lo:hi]
        return EntryBatch(start, leaves, extras)

    # --- proofs from hash tiles -------------------------------------------------------------

    async def _over_tiles(self, tree_size: int, compute: Callable[[NodeFn], V]) -> V:
        """Run ``compute`` over tree nodes read from the hash tiles of the tree of ``tree_size``.

        A dry run records which nodes ``compute`` asks for; their tiles are fetched concurrently,
        then ``compute`` runs again over them (a NodeFn is synchronous).
        """
        wanted: set[tuple[int, int]] = set()

        def record(level: int, index: int) -> bytes:
            wanted.add((level, index))
            return bytes(HASH_SIZE)

        compute(record)
        keys = sorted({(lv // TILE_HEIGHT, (i << lv % TILE_HEIGHT) // TILE_WIDTH) for lv, i in wanted})
        bodies = await asyncio.gather(
            *(self._hash_tile(lv, n, tile_width(tree_size, lv, n)) for lv, n in keys))
        tiles = dict(zip(keys, bodies, strict=True))

        def node(level: int, index: int) -> bytes:
            tile_level, k = divmod(level, TILE_HEIGHT)
            first = index << k
            body = tiles[(tile_level, first // TILE_WIDTH)]
            off = first % TILE_WIDTH * HASH_SIZE
            hashes = [body[off + j : off + j + HASH_SIZE] for j in range(0, HASH_SIZE << k, HASH_SIZE)]
            while len(hashes) > 1:
                hashes = [node_hash(hashes[j], hashes[j + 1]) for j in range(0, len(hashes), 2)]
            return hashes[0]

        return compute(node)

    async def get_inclusion_proof(self, leaf_hash: bytes, index: int, sth: STH) -> tuple[int, list[bytes]]:
        """The audit path of ``index`` itself: tiles are addressed by position, not by hash."""
        size = sth.tree_size
        return index, await self._over_tiles(size, lambda node: inclusion_proof(node, index, size))

    async def get_consistency_proof(self, old_size: int, new: STH) -> list[bytes]:
        size = new.tree_size
        return await self._over_tiles(size, lambda node: consistency_proof(node, old_size, size))

    async def right_edge(self, sth: STH) -> CompactRange:
        size = sth.tree_size
        return await self._over_tiles(size, lambda node: compact_range(node, size))

    # --- issuers ----------------------------------------------------------------------------

    async def get_chain(self, entry_type: int, extra: bytes) -> tuple[bytes | None, list[bytes]]:
        precert, fingerprints = parse_chain_extra(entry_type, extra)
        chain = await asyncio.gather(*(self._issuer(fp) for fp in fingerprints))
        return precert, list(chain)

    async def _issuer(self, fingerprint: bytes) -> bytes:
        """The issuer certificate (DER) named by ``fingerprint``, checked and cached."""
        der = self._issuers.get(fingerprint)
        if der is None:
            der = await self._once_issuer.run(fingerprint, lambda: self._load_issuer(fingerprint))
            self._issuers.put(fingerprint, der)
        return der

    def _disk_path(self, fingerprint: bytes) -> Path | None:
        return self.issuer_cache_dir / fingerprint.hex() if self.issuer_cache_dir else None

    async def _load_issuer(self, fingerprint: bytes) -> bytes:
        path = self._disk_path(fingerprint)
        if path is not None:
            try:
                der = path.read_bytes()
            except OSError:
                pass
            else:
                if hashlib.sha256(der).digest() == fingerprint:
                    return der
                log.warning("issuer cache file %s does not match its name; fetching again", path)
        url = f"{self.info.url}issuer/{fingerprint.hex()}"
        for attempt in range(SIGNED_CONTENT_ATTEMPTS):
            der = await self.http.get(url, allow_404=True)
            if der is None:
                raise FetchError(f"{url}: the log does not serve an issuer its entries reference (HTTP 404)",
                                 status=404)
            if len(der) > MAX_ISSUER_BYTES:
                raise FetchError(f"{url}: issuer of {len(der)} bytes exceeds the cap of {MAX_ISSUER_BYTES}")
            if hashlib.sha256(der).digest() == fingerprint:
                break
            if attempt + 1 == SIGNED_CONTENT_ATTEMPTS:  # not a torn transfer: the log serves it so
                raise LogMisbehaviour(
                    "issuer_mismatch", f"{url}: issuer content does not hash to its name",
                    {"url": url, "fingerprint": fingerprint.hex(), "sha256": hashlib.sha256(der).hexdigest(),
                     "size": len(der), "prefix_hex": der[:EVIDENCE_PREFIX].hex()},
                )
        if path is not None:
            self._save(path, der)
        return der

    @staticmethod
    def _save(path: Path, der: bytes) -> None:
        """Write an issuer atomically; the disk cache is an optimisation, so failures only warn."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(der)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot write issuer cache %s: %s", path, e)
