"""What each test log serves: its tree over the store, its signed heads, and its misbehaviour.

A view owns one log's :class:`DenseTree`. Misbehaviour that changes content (a fork, a garbage
leaf, a wrong leaf index) is an *override* of one entry, applied to the tree like any leaf, so
every root, proof and tile the view serves is computed over the history it claims.
"""

from __future__ import annotations

import base64
import hashlib
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..checkpoint import Checkpoint, NoteSignature
from ..cttypes import STH, DigitallySigned, tree_head_signature_input
from ..verify import note_key_id
from .ca import LogSigner
from .store import Store, fingerprint, static_forms, with_timestamp
from .tree import DenseTree

GARBAGE_LEAF = b"garbage, not a MerkleTreeLeaf \xde\xad\xbe\xef"
SHRINK_FRACTION = 4
REGRESSION_MS = 3_600_000
WITNESS_NAME = "witness.ctwatch.test"
DATA_TILE_CACHE = 64
_BEFORE_MODES = frozenset({"fork", "shrink", "timestamp_regression"})


def _fragment(leaf_input: bytes, extra_data: bytes) -> bytes:
    b64 = base64.b64encode
    return b'{"leaf_input":"%s","extra_data":"%s"}' % (b64(leaf_input), b64(extra_data))


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes((data[pos] ^ 0x01,)) + data[pos + 1 :]


class LogView(ABC):
    """One log (RFC 6962 or static) over the shared store.

    ``targets`` maps each active content mode to the entry it alters; ``overrides`` holds the
    altered entries that exist yet, as (Merkle leaf input, protocol payload).
    """

    bad_signature_mode: str

    def __init__(self, store: Store, signer: LogSigner) -> None:
        self.store = store
        self.signer = signer
        self.tree = DenseTree()
        self.modes: frozenset[str] = frozenset()
        self.targets: dict[str, int] = {}  # content mode → entry index it alters
        self.overrides: dict[int, tuple[bytes, bytes]] = {}  # index → (Merkle leaf input, payload)
        self.head: STH | None = None  # the honest head of the tree as it is
        self.ref: STH | None = None  # what before-modes misbehave relative to
        self.last_served: STH | None = None
        self.max_served_size = 0
        self._signed: dict[tuple[int, int, bytes], bytes] = {}
        self.sync()

    # --- content ---------------------------------------------------------------------------

    @abstractmethod
    def base_hashes(self) -> bytearray:
        """Stored level-0 hashes of this log."""

    @abstractmethod
    def override(self, mode: str, index: int) -> tuple[bytes, bytes]:
        """(Merkle leaf input, payload) that ``mode`` puts at ``index``."""

    def sync(self) -> None:
        """Extend the tree to the store, apply overrides, and sign a new head if anything changed."""
        base = self.base_hashes()
        size = self.store.size
        before = (self.tree.size, dict(self.overrides))
        if self.tree.size < size:
            self.tree.extend(base[32 * self.tree.size : 32 * size])
        want = {idx: self.override(mode, idx) for mode, idx in self.targets.items() if idx < size}
        for idx in self.overrides.keys() - want.keys():
            self.tree.set_leaf(idx, bytes(base[32 * idx : 32 * idx + 32]))
        for idx, content in want.items():
            if self.overrides.get(idx) != content:
                self.tree.set_leaf(idx, hashlib.sha256(b"\x00" + content[0]).digest())
        self.overrides = want
        if self.head is None or before != (self.tree.size, self.overrides):
            self.content_changed()
            prev = self.head.timestamp if self.head else 0
            self.head = self.sign(self.tree.size, max(int(time.time() * 1000), prev + 1), self.tree.root())

    @abstractmethod
    def content_changed(self) -> None:
        """Drop or extend anything derived from entries or the tree (caches)."""

    # --- modes -----------------------------------------------------------------------------

    def set_modes(self, modes: frozenset[str]) -> None:
        """Replace the active modes; the reference is the last head served before this call."""
        keep_ref = bool(self.modes & modes & _BEFORE_MODES)
        self.modes = modes
        if not keep_ref:
            self.ref = self.last_served
        targets = {m: i for m, i in self.targets.items() if m in modes}
        for mode in ("garbage_leaf", "wrong_leaf_index"):
            if mode in modes and mode not in targets:
                targets[mode] = self.max_served_size if self.last_served else self.store.size // 2
        if "fork" in modes and "fork" not in targets and self.ref is not None and self.ref.tree_size:
            targets["fork"] = self.ref.tree_size // 2
        self.targets = targets
        self.sync()

    def served_head(self) -> STH:
        """The tree head to serve now, with the active misbehaviour applied; recorded as served."""
        assert self.head is not None
        modes = self.modes
        if modes & _BEFORE_MODES and self.ref is None:
            self.ref = sth = self.head  # nothing to misbehave against yet: this one is honest
            if "fork" in modes and self.head.tree_size:
                self.targets["fork"] = self.head.tree_size // 2
                self.sync()
        else:
            size, ts, root = self.head.tree_size, self.head.timestamp, self.head.root_hash
            ref = self.ref
            if ref is not None and "shrink" in modes:
                size = max(0, ref.tree_size - max(1, ref.tree_size // SHRINK_FRACTION))
                root = self.tree.root(size)
                ts = max(ts, ref.timestamp + 1)
            if ref is not None and "timestamp_regression" in modes:
                ts = ref.timestamp - REGRESSION_MS
            if "root_mismatch" in modes:
                root = hashlib.sha256(b"ctwatch testlog root_mismatch" + root).digest()
            sth = self.sign(size, ts, root)
            if self.bad_signature_mode in modes:
                ds = DigitallySigned.decode(sth.signature)
                bad = DigitallySigned(ds.hash_alg, ds.sig_alg, _flip(ds.signature, len(ds.signature) // 2))
                sth = STH(sth.tree_size, sth.timestamp, sth.root_hash, bad.encode())
        self.last_served = sth
        self.max_served_size = max(self.max_served_size, sth.tree_size)
        return sth

    def sign(self, size: int, timestamp: int, root: bytes) -> STH:
        """A validly signed STH (signatures memoised: deterministic anyway, and cheaper)."""
        key = (size, timestamp, root)
        sig = self._signed.get(key)
        if sig is None:
            if len(self._signed) > 256:
                self._signed.clear()
            sig = self._signed[key] = self.signer.digitally_signed(
                tree_head_signature_input(timestamp, size, root)).encode()
        return STH(size, timestamp, root, sig)

    def status(self) -> dict[str, object]:
        """Sizes, modes and altered indexes, for the admin endpoint and tests."""
        return {
            "tree_size": self.tree.size,
            "modes": sorted(self.modes),
            "affected_indexes": dict(self.targets),
            "last_served": self.last_served.to_json() if self.last_served else None,
        }


class Rfc6962View(LogView):
    """The RFC 6962 log: get-entries fragments and proofs over its tree."""

    bad_signature_mode = "bad_sth_signature"

    def __init__(self, store: Store) -> None:
        self._fragments: list[bytes | None] = []
        self._index_of: dict[bytes, int] | None = None
        super().__init__(store, store.keys.rfc6962)

    def base_hashes(self) -> bytearray:
        return self.store.rfc6962_hashes

    def override(self, mode: str, index: int) -> tuple[bytes, bytes]:
        leaf, extra = self.store.leaf_inputs[index], self.store.extras[index]
        if mode == "garbage_leaf":
            return GARBAGE_LEAF, extra
        return with_timestamp(leaf, int.from_bytes(leaf[2:10], "big") + 1), extra  # fork

    def content_changed(self) -> None:
        self._index_of = None
        self._fragments.extend([None] * (self.store.size - len(self._fragments)))

    def fragments(self, start: int, end: int) -> list[bytes]:
        """The get-entries JSON objects for [start, end); stored entries are encoded once and kept."""
        frags, overrides = self._fragments, self.overrides
        out = []
        for i in range(start, end):
            ov = overrides.get(i)
            if ov is not None:
                out.append(_fragment(*ov))
                continue
            f = frags[i]
            if f is None:
                f = frags[i] = _fragment(self.store.leaf_inputs[i], self.store.extras[i])
            out.append(f)
        return out

    def entry(self, index: int) -> tuple[bytes, bytes]:
        """(leaf_input, extra_data) as served at ``index``."""
        return self.overrides.get(index) or (self.store.leaf_inputs[index], self.store.extras[index])

    def index_of(self, leaf_hash: bytes) -> int | None:
        """The first index whose leaf hash is ``leaf_hash`` (get-proof-by-hash)."""
        if self._index_of is None:
            level0 = self.tree.levels[0]
            index: dict[bytes, int] = {}
            for i in range(self.tree.size):
                index.setdefault(bytes(level0[32 * i : 32 * i + 32]), i)
            self._index_of = index
        return self._index_of.get(leaf_hash)


class StaticView(LogView):
    """The static-ct-api log: checkpoints, data tiles and issuers."""

    bad_signature_mode = "bad_checkpoint_signature"

    def __init__(self, store: Store) -> None:
        self.origin = ""  # set once the server knows its port
        self._issuers = store.keys.issuers
        self._tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        seed = hashlib.sha256(f"ctwatch-testlog:{store.seed}:witness".encode()).digest()
        self._witness = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        pub = self._witness.public_key().public_bytes_raw()
        self._witness_id = hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + pub).digest()[:4]
        super().__init__(store, store.keys.static)

    def base_hashes(self) -> bytearray:
        return self.store.static_hashes

    def override(self, mode: str, index: int) -> tuple[bytes, bytes]:
        leaf, extra = self.store.leaf_inputs[index], self.store.extras[index]
        if mode == "wrong_leaf_index":
            tile_leaf, static_input = static_forms(leaf, extra, index + 1)
        else:  # fork
            forked = with_timestamp(leaf, int.from_bytes(leaf[2:10], "big") + 1)
            tile_leaf, static_input = static_forms(forked, extra, index)
        return static_input, tile_leaf

    def content_changed(self) -> None:
        self._tiles.clear()

    def checkpoint(self) -> bytes:
        """The signed note for :meth:`served_head`, a witness cosignature line first."""
        sth = self.served_head()
        body = Checkpoint.make_body(self.origin, sth.tree_size, sth.root_hash)
        ts_s = sth.timestamp // 1000
        cosig = self._witness.sign(b"cosignature/v1\ntime %d\n" % ts_s + body)
        lines = [
            NoteSignature(WITNESS_NAME, self._witness_id, ts_s.to_bytes(8, "big") + cosig),
            NoteSignature(self.origin, note_key_id(self.origin, self.signer.log_id),
                          sth.timestamp.to_bytes(8, "big") + sth.signature),
        ]
        return body + b"\n" + "".join(s.line() for s in lines).encode()

    def data_tile(self, n: int, width: int) -> bytes:
        """Entries [256n, 256n + width) as TileLeaf structures (kept in a small LRU)."""
        key = (n, width)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        leaves, extras, overrides = self.store.leaf_inputs, self.store.extras, self.overrides
        parts = []
        for i in range(256 * n, 256 * n + width):
            ov = overrides.get(i)
            parts.append(ov[1] if ov else static_forms(leaves[i], extras[i], i)[0])
        tile = self._tiles[key] = b"".join(parts)
        if len(self._tiles) > DATA_TILE_CACHE:
            self._tiles.popitem(last=False)
        return tile

    def add_issuers(self, chain: Sequence[bytes]) -> None:
        """Serve these issuer certificates too (a CA outside the test PKI, see ``log_certificate``)."""
        self._issuers.update((fingerprint(c), c) for c in chain)

    def issuer(self, fp: bytes) -> bytes | None:
        """DER of the issuer named ``fp``; under issuer_mismatch, another issuer's DER."""
        issuers = self._issuers
        if fp not in issuers:
            return None
        if "issuer_mismatch" in self.modes:
            names = sorted(issuers)
            return issuers[names[(names.index(fp) + 1) % len(names)]]
        return issuers[fp]
