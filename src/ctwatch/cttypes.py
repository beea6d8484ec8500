"""RFC 6962 TLS structures: encode and decode, nothing else.

Kept free of I/O and of crypto so the hot path (leaf parsing, tree hashing) and the test log
share one definition of each byte layout.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

from .errors import DecodeError

X509_ENTRY = 0
PRECERT_ENTRY = 1

HASH_SHA256 = 4
SIG_RSA = 1
SIG_ECDSA = 3

_U64 = struct.Struct(">Q")


class Reader:
    """A bounds-checked cursor over bytes; every read raises DecodeError past the end."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(
                f"truncated: need {n} bytes at offset {self.pos}, have {len(self.data) - self.pos}"
            )
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vec(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))

    def done(self) -> bool:
        return self.pos == len(self.data)

    def expect_end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after {what}")


def u24(n: int) -> bytes:
    """Encode a TLS uint24."""
    return n.to_bytes(3, "big")


def vec24(data: bytes) -> bytes:
    """Encode an opaque<0..2^24-1>."""
    return u24(len(data)) + data


def vec16(data: bytes) -> bytes:
    """Encode an opaque<0..2^16-1>."""
    return len(data).to_bytes(2, "big") + data


@dataclass(frozen=True, slots=True)
class DigitallySigned:
    """TLS 1.2 DigitallySigned: algorithm identifiers and the raw signature."""

    hash_alg: int
    sig_alg: int
    signature: bytes

    @classmethod
    def decode(cls, data: bytes) -> DigitallySigned:
        r = Reader(data)
        ds = cls.read(r)
        r.expect_end("DigitallySigned")
        return ds

    @classmethod
    def read(cls, r: Reader) -> DigitallySigned:
        return cls(r.uint(1), r.uint(1), r.vec(2))

    def encode(self) -> bytes:
        return bytes((self.hash_alg, self.sig_alg)) + vec16(self.signature)


def tree_head_signature_input(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """The bytes an STH signature covers: RFC 6962 §3.5 TreeHeadSignature."""
    return b"\x00\x01" + _U64.pack(timestamp) + _U64.pack(tree_size) + root_hash


@dataclass(frozen=True, slots=True)
class STH:
    """A signed tree head, from get-sth or from a checkpoint's RFC 6962 note signature."""

    tree_size: int
    timestamp: int
    root_hash: bytes
    signature: bytes  # the encoded DigitallySigned

    def to_json(self) -> dict[str, object]:
        """The get-sth JSON form, used as evidence in events and in state."""
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "sha256_root_hash": base64.b64encode(self.root_hash).decode(),
            "tree_head_signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, obj: object) -> STH:
        """Parse get-sth JSON; any missing or mistyped field is a DecodeError."""
        try:
            assert isinstance(obj, dict)
            size, ts = obj["tree_size"], obj["timestamp"]
            if not isinstance(size, int) or not isinstance(ts, int) or size < 0 or ts < 0:
                raise DecodeError("tree_size and timestamp must be non-negative integers")
            root = base64.b64decode(obj["sha256_root_hash"], validate=True)
            sig = base64.b64decode(obj["tree_head_signature"], validate=True)
        except DecodeError:
            raise
        except Exception as e:  # KeyError, TypeError, binascii.Error, AssertionError
            raise DecodeError(f"malformed STH: {e!r}") from None
        if len(root) != 32:
            raise DecodeError(f"STH root hash is {len(root)} bytes, not 32")
        return cls(size, ts, root, sig)


@dataclass(frozen=True, slots=True)
class TimestampedEntry:
    """RFC 6962 §3.4 TimestampedEntry.

    For x509 entries ``body`` is the certificate DER; for precerts it is the TBSCertificate and
    ``issuer_key_hash`` is set.
    """

    timestamp: int
    entry_type: int
    body: bytes
    issuer_key_hash: bytes | None = None
    extensions: bytes = b""

    @classmethod
    def read(cls, r: Reader) -> TimestampedEntry:
        ts = r.uint(8)
        etype = r.uint(2)
        if etype == X509_ENTRY:
            ikh, body = None, r.vec(3)
        elif etype == PRECERT_ENTRY:
            ikh = r.take(32)
            body = r.vec(3)
        else:
            raise DecodeError(f"unknown entry_type {etype}")
        return cls(ts, etype, body, ikh, r.vec(2))

    def encode(self) -> bytes:
        out = _U64.pack(self.timestamp) + self.entry_type.to_bytes(2, "big")
        if self.entry_type == PRECERT_ENTRY:
            assert self.issuer_key_hash is not None
            out += self.issuer_key_hash
        return out + vec24(self.body) + vec16(self.extensions)


def parse_merkle_tree_leaf(leaf_input: bytes) -> TimestampedEntry:
    """Decode a MerkleTreeLeaf (version 0, timestamped_entry) and return its entry."""
    r = Reader(leaf_input)
    version, leaf_type = r.uint(1), r.uint(1)
    if version != 0 or leaf_type != 0:
        raise DecodeError(f"unsupported MerkleTreeLeaf version {version} / leaf_type {leaf_type}")
    entry = TimestampedEntry.read(r)
    r.expect_end("MerkleTreeLeaf")
    return entry


def merkle_tree_leaf(entry: TimestampedEntry) -> bytes:
    """Encode a TimestampedEntry as a version-0 MerkleTreeLeaf (the log's leaf_input)."""
    return b"\x00\x00" + entry.encode()


def parse_cert_list(data: bytes, length_bytes: int = 3) -> list[bytes]:
    """Decode an ASN.1Cert<...> list with a uint24 total length."""
    r = Reader(data)
    inner = Reader(r.vec(length_bytes))
    certs: list[bytes] = []
    while not inner.done():
        certs.append(inner.vec(3))
    return certs


def parse_extra_data(entry_type: int, extra: bytes) -> tuple[bytes | None, list[bytes]]:
    """Decode get-entries extra_data: (precertificate DER or None, chain of issuer DERs)."""
    r = Reader(extra)
    if entry_type == X509_ENTRY:
        chain_blob = r.vec(3)
        precert = None
    else:
        precert = r.vec(3)
        chain_blob = r.vec(3)
    r.expect_end("extra_data")
    cr = Reader(chain_blob)
    chain = []
    while not cr.done():
        chain.append(cr.vec(3))
    return precert, chain


def encode_extra_data(entry_type: int, precert: bytes | None, chain: list[bytes]) -> bytes:
    """Encode get-entries extra_data (inverse of parse_extra_data)."""
    chain_blob = vec24(b"".join(vec24(c) for c in chain))
    if entry_type == X509_ENTRY:
        return chain_blob
    assert precert is not None
    return vec24(precert) + chain_blob


@dataclass(frozen=True, slots=True)
class SCT:
    """RFC 6962 §3.2 SignedCertificateTimestamp (v1)."""

    version: int
    log_id: bytes
    timestamp: int
    extensions: bytes
    signature: DigitallySigned
    raw: bytes = field(default=b"", compare=False)

    @classmethod
    def decode(cls, data: bytes) -> SCT:
        r = Reader(data)
        version = r.uint(1)
        if version != 0:
            raise DecodeError(f"unsupported SCT version {version}")
        sct = cls(version, r.take(32), r.uint(8), r.vec(2), DigitallySigned.read(r), data)
        r.expect_end("SCT")
        return sct

    def encode(self) -> bytes:
        return (
            bytes((self.version,))
            + self.log_id
            + _U64.pack(self.timestamp)
            + vec16(self.extensions)
            + self.signature.encode()
        )


def parse_sct_list(data: bytes) -> list[bytes]:
    """Split a SignedCertificateTimestampList (uint16 total, uint16 per item) into raw SCTs."""
    r = Reader(data)
    inner = Reader(r.vec(2))
    r.expect_end("SCT list")
    out = []
    while not inner.done():
        out.append(inner.vec(2))
    return out


def encode_sct_list(scts: list[bytes]) -> bytes:
    """Encode a SignedCertificateTimestampList."""
    return vec16(b"".join(vec16(s) for s in scts))


def sct_signature_input(
    sct_timestamp: int, entry_type: int, body: bytes, issuer_key_hash: bytes | None, extensions: bytes
) -> bytes:
    """The bytes an SCT signature covers (RFC 6962 §3.2, signature_type certificate_timestamp)."""
    out = b"\x00\x00" + _U64.pack(sct_timestamp) + entry_type.to_bytes(2, "big")
    if entry_type == PRECERT_ENTRY:
        assert issuer_key_hash is not None
        out += issuer_key_hash
    return out + vec24(body) + vec16(extensions)


def leaf_index_extension(index: int) -> bytes:
    """static-ct-api CtExtensions carrying leaf_index (type 0, 5-byte big-endian value)."""
    return b"\x00" + vec16(index.to_bytes(5, "big"))


def parse_leaf_index_extension(ext: bytes) -> int | None:
    """Return the leaf_index from CtExtensions bytes, or None when absent."""
    r = Reader(ext)
    while not r.done():
        etype = r.uint(1)
        data = r.vec(2)
        if etype == 0:
            if len(data) != 5:
                raise DecodeError(f"leaf_index extension is {len(data)} bytes, not 5")
            return int.from_bytes(data, "big")
    return None
