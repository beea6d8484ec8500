"""The test log's directory: keys, CA certificates, entries, level-0 hashes, manifest, log list.

Layout of ``--dir``::

    testlog.json          seed, size, byte length of entries.bin (the commit point of an append)
    entries.bin           per entry: uint32 length ‖ leaf_input, uint32 length ‖ extra_data
    rfc6962.hashes        32-byte leaf hash per entry, RFC 6962 log
    static.hashes         32-byte leaf hash per entry, static-ct-api log (leaf_index extension)
    manifest.json         planted entries (see corpus.py)
    keys/*.pem, certs/*.pem

Both logs hold the same certificates at the same indexes; they differ only in leaf bytes (the
static log's TimestampedEntry carries the leaf_index extension) and so in their trees.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..cttypes import (
    PRECERT_ENTRY,
    TimestampedEntry,
    encode_extra_data,
    leaf_index_extension,
    merkle_tree_leaf,
    parse_cert_list,
    parse_extra_data,
    parse_merkle_tree_leaf,
    vec16,
)
from ..errors import ConfigError
from .ca import (
    TEST_CA_NAME,
    UNEXPECTED_CA_NAME,
    Issuer,
    LogSigner,
    PrivateKey,
    SubjectKey,
    derive_key,
    issuer_from,
    key_pem,
    load_key,
    make_issuer,
)

FORMAT = 1
META = "testlog.json"
ENTRIES = "entries.bin"
RFC6962_HASHES = "rfc6962.hashes"
STATIC_HASHES = "static.hashes"
MANIFEST = "manifest.json"
EC_SUBJECT_KEYS = 12
RSA_SUBJECT_KEYS = 2
_U32 = struct.Struct(">I")


# --- entry encodings ----------------------------------------------------------------------------


_FINGERPRINTS: dict[bytes, bytes] = {}  # encoded issuer chain → encoded fingerprint list (few distinct)


def fingerprint(cert_der: bytes) -> bytes:
    """SHA-256 of a certificate's DER: its static-ct-api issuer name."""
    return hashlib.sha256(cert_der).digest()


def static_forms(leaf_input: bytes, extra_data: bytes, leaf_index: int) -> tuple[bytes, bytes]:
    """(TileLeaf, MerkleTreeLeaf) in the static-ct-api log of an entry stored in RFC 6962 form.

    The static log's TimestampedEntry carries the ``leaf_index`` extension, so its leaf hash
    differs from the RFC 6962 log's for the same certificate. Byte slicing rather than decoding,
    because data tiles are built on the serving path; entries of a store always have empty
    extensions (the generator makes them so), which is checked.
    """
    if len(leaf_input) < 14 or leaf_input[-2:] != b"\x00\x00":
        raise ValueError("stored leaf_input has extensions or is too short")
    te = leaf_input[2:-2] + vec16(leaf_index_extension(leaf_index))
    if leaf_input[10:12] == PRECERT_ENTRY.to_bytes(2, "big"):
        end = 3 + int.from_bytes(extra_data[:3], "big")
        precert, chain_blob = extra_data[:end], extra_data[end:]
    else:
        precert, chain_blob = b"", extra_data
    fps = _FINGERPRINTS.get(chain_blob)
    if fps is None:
        fps = vec16(b"".join(fingerprint(c) for c in parse_cert_list(chain_blob)))
        if len(_FINGERPRINTS) < 1024:
            _FINGERPRINTS[chain_blob] = fps
    return te + precert + fps, b"\x00\x00" + te


def with_timestamp(leaf_input: bytes, timestamp: int) -> bytes:
    """The same MerkleTreeLeaf logged at another time (a forked history's entry)."""
    return leaf_input[:2] + timestamp.to_bytes(8, "big") + leaf_input[10:]


@dataclass(frozen=True, slots=True)
class EncodedEntry:
    """One log entry in every form the store keeps."""

    leaf_input: bytes
    extra_data: bytes
    static_leaf_input: bytes

    @classmethod
    def of(cls, index: int, entry: TimestampedEntry, precert: bytes | None,
           chain: Sequence[bytes]) -> EncodedEntry:
        """Encode entry ``index`` for both logs."""
        leaf_input = merkle_tree_leaf(entry)
        extra_data = encode_extra_data(entry.entry_type, precert, list(chain))
        return cls(leaf_input, extra_data, static_forms(leaf_input, extra_data, index)[1])


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Every key and CA certificate of one test log directory."""

    rfc6962: LogSigner
    static: LogSigner
    test_ca: Issuer
    unexpected_ca: Issuer
    ec_subjects: tuple[SubjectKey, ...]
    rsa_subjects: tuple[SubjectKey, ...]

    @property
    def roots(self) -> tuple[bytes, ...]:
        """DER roots the log accepts (get-roots)."""
        return (self.test_ca.root_der, self.unexpected_ca.root_der)

    @property
    def issuers(self) -> dict[bytes, bytes]:
        """Every issuer certificate an entry's chain can name, by fingerprint."""
        return {fingerprint(c): c for ca in (self.test_ca, self.unexpected_ca) for c in ca.chain}

    @classmethod
    def create(cls, directory: Path, seed: int, rsa_log: bool) -> KeyRing:
        """Derive every key from ``seed`` and write keys/ and certs/ under ``directory``."""
        keys: dict[str, PrivateKey] = {
            "rfc6962-log": derive_key(seed, "rfc6962-log", "rsa2048" if rsa_log else "p256"),
            "static-log": derive_key(seed, "static-log", "p256"),
        }
        certs: dict[str, x509.Certificate] = {}
        cas = (("test-ca", TEST_CA_NAME, "p256"), ("unexpected-ca", UNEXPECTED_CA_NAME, "p384"))
        for slug, name, kind in cas:
            issuer, _, root = make_issuer(seed, name, kind)
            keys[slug] = issuer.key
            certs[slug] = issuer.cert
            certs[f"{slug}-root"] = root
        for i in range(EC_SUBJECT_KEYS):
            keys[f"subject-ec-{i:02d}"] = derive_key(seed, f"subject-{i}", "p256")
        for i in range(RSA_SUBJECT_KEYS):
            keys[f"subject-rsa-{i:02d}"] = derive_key(seed, f"subject-rsa-{i}", "rsa2048")
        (directory / "keys").mkdir(parents=True, exist_ok=True)
        (directory / "certs").mkdir(parents=True, exist_ok=True)
        for name, key in keys.items():
            path = directory / "keys" / f"{name}.pem"
            path.write_bytes(key_pem(key))
            path.chmod(0o600)
        for name, cert in certs.items():
            (directory / "certs" / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls.load(directory)

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Read keys/ and certs/ as :meth:`create` wrote them."""

        def cert(name: str) -> x509.Certificate:
            path = directory / "certs" / f"{name}.pem"
            try:
                return x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError) as e:
                raise ConfigError(f"cannot load test CA certificate {path}: {e}") from None

        keydir = directory / "keys"
        subjects = [SubjectKey.of(load_key(p)) for p in sorted(keydir.glob("subject-*.pem"))]
        if not subjects:
            raise ConfigError(f"{keydir}: no subject keys")
        return cls(
            rfc6962=LogSigner(load_key(keydir / "rfc6962-log.pem")),
            static=LogSigner(load_key(keydir / "static-log.pem")),
            test_ca=issuer_from(TEST_CA_NAME, load_key(keydir / "test-ca.pem"), cert("test-ca"),
                                cert("test-ca-root")),
            unexpected_ca=issuer_from(UNEXPECTED_CA_NAME, load_key(keydir / "unexpected-ca.pem"),
                                      cert("unexpected-ca"), cert("unexpected-ca-root")),
            ec_subjects=tuple(s for s in subjects if not isinstance(s.public_key, rsa.RSAPublicKey)),
            rsa_subjects=tuple(s for s in subjects if isinstance(s.public_key, rsa.RSAPublicKey)),
        )


# --- the store ----------------------------------------------------------------------------------


def _record(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_prefix(path: Path, length: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(length)
    if len(data) != length:
        raise ConfigError(f"{path} is shorter ({len(data)} bytes) than {META} says ({length})")
    return data


class Store:
    """A test log directory loaded in memory: entries, both logs' leaf hashes, keys, manifest."""

    def __init__(self, directory: Path, seed: int, keys: KeyRing) -> None:
        self.directory = directory
        self.seed = seed
        self.keys = keys
        self.leaf_inputs: list[bytes] = []
        self.extras: list[bytes] = []
        self.rfc6962_hashes = bytearray()
        self.static_hashes = bytearray()
        self.manifest: list[dict[str, object]] = []
        self._entries_bytes = 0  # committed length of entries.bin
        self._persisted = 0  # entries on disk; in-memory appends come after them only

    @property
    def size(self) -> int:
        """Entries held (in memory; on disk too unless appended with ``persist=False``)."""
        return len(self.leaf_inputs)

    @classmethod
    def create(cls, directory: Path, seed: int, rsa_log: bool = False) -> Store:
        """Make a new, empty log directory (refusing one that already holds a log)."""
        if (directory / META).exists():
            raise ConfigError(f"{directory} already holds a test log; 'ctwatch testlog grow' adds entries")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            store = cls(directory, seed, KeyRing.create(directory, seed, rsa_log))
            for name in (ENTRIES, RFC6962_HASHES, STATIC_HASHES):
                (directory / name).write_bytes(b"")
            _write_atomic(directory / MANIFEST, b'{"planted": []}\n')
            store._write_meta()
        except OSError as e:
            raise ConfigError(f"cannot create the test log in {directory}: {e.strerror or e}") from None
        return store

    @classmethod
    def open(cls, directory: Path) -> Store:
        """Load a directory made by :meth:`create` (and grown by :meth:`append`)."""
        try:
            meta = orjson.loads((directory / META).read_bytes())
            if meta.get("format") != FORMAT:
                raise ConfigError(f"{directory}: unsupported test log format {meta.get('format')!r}")
            seed, size, nbytes = int(meta["seed"]), int(meta["size"]), int(meta["entries_bytes"])
            manifest = orjson.loads((directory / MANIFEST).read_bytes())["planted"]
            if not isinstance(manifest, list):
                raise TypeError("manifest 'planted' is not a list")
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"{directory} is not a test log directory: {e}") from None
        store = cls(directory, seed, KeyRing.load(directory))
        store.manifest = manifest
        store._entries_bytes = nbytes
        store._persisted = size
        data = memoryview(_read_prefix(directory / ENTRIES, nbytes))
        pos = 0
        leaves, extras = store.leaf_inputs, store.extras
        try:
            while pos < nbytes:
                for out in (leaves, extras):
                    (n,) = _U32.unpack_from(data, pos)
                    out.append(bytes(data[pos + 4 : pos + 4 + n]))
                    pos += 4 + n
        except struct.error:
            raise ConfigError(f"{directory / ENTRIES} is truncated") from None
        if pos != nbytes or len(leaves) != size:
            raise ConfigError(f"{directory / ENTRIES} does not hold the {size} entries {META} says")
        store.rfc6962_hashes = bytearray(_read_prefix(directory / RFC6962_HASHES, 32 * size))
        store.static_hashes = bytearray(_read_prefix(directory / STATIC_HASHES, 32 * size))
        return store

    def append(self, entries: Sequence[EncodedEntry], planted: Sequence[dict[str, object]] = (),
               persist: bool = True) -> None:
        """Add entries (and their manifest records); with ``persist``, write them to the directory.

        Files are cut back to the committed length first, so an append interrupted earlier
        leaves no trace; ``testlog.json`` is replaced last and is the commit point.
        """
        blob = b"".join(_record(e.leaf_input) + _record(e.extra_data) for e in entries)
        rfc = b"".join(hashlib.sha256(b"\x00" + e.leaf_input).digest() for e in entries)
        static = b"".join(hashlib.sha256(b"\x00" + e.static_leaf_input).digest() for e in entries)
        if persist:
            if self._persisted != self.size:
                raise ConfigError("entries appended in memory only cannot be followed by persisted ones")
            d = self.directory
            for name, committed, data in ((ENTRIES, self._entries_bytes, blob),
                                          (RFC6962_HASHES, 32 * self.size, rfc),
                                          (STATIC_HASHES, 32 * self.size, static)):
                with (d / name).open("r+b") as f:
                    f.truncate(committed)
                    f.seek(committed)
                    f.write(data)
            _write_atomic(d / MANIFEST, orjson.dumps({"planted": [*self.manifest, *planted]},
                                                     option=orjson.OPT_INDENT_2))
        self.leaf_inputs.extend(e.leaf_input for e in entries)
        self.extras.extend(e.extra_data for e in entries)
        self.rfc6962_hashes += rfc
        self.static_hashes += static
        self.manifest.extend(planted)
        if persist:
            self._entries_bytes += len(blob)
            self._persisted = self.size
            self._write_meta()

    def _write_meta(self) -> None:
        meta = {"format": FORMAT, "seed": self.seed, "size": self._persisted,
                "entries_bytes": self._entries_bytes}
        _write_atomic(self.directory / META, orjson.dumps(meta, option=orjson.OPT_INDENT_2))

    def entry(self, index: int) -> tuple[TimestampedEntry, bytes | None, list[bytes]]:
        """Decoded entry ``index``: (TimestampedEntry, precertificate or None, issuer chain)."""
        entry = parse_merkle_tree_leaf(self.leaf_inputs[index])
        precert, chain = parse_extra_data(entry.entry_type, self.extras[index])
        return entry, precert, chain


# --- log list -----------------------------------------------------------------------------------


def log_list_json(keys: KeyRing, rfc6962_url: str, static_monitoring_url: str, static_submission_url: str,
                  mmd: int = 86400) -> bytes:
    """A Chrome v3 log list naming the two test logs (both ``usable``)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    interval = {"start_inclusive": "2025-01-01T00:00:00Z", "end_exclusive": "2030-01-01T00:00:00Z"}

    def common(signer: LogSigner, description: str) -> dict[str, object]:
        return {
            "description": description,
            "log_id": base64.b64encode(signer.log_id).decode(),
            "key": base64.b64encode(signer.spki).decode(),
            "mmd": mmd,
            "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}},
            "temporal_interval": interval,
        }

    doc = {
        "version": "1.0",
        "log_list_timestamp": now,
        "operators": [{
            "name": "ctwatch test",
            "email": ["testlog@ctwatch.invalid"],
            "logs": [{**common(keys.rfc6962, "ctwatch test log (RFC 6962)"), "url": rfc6962_url}],
            "tiled_logs": [{
                **common(keys.static, "ctwatch test log (static-ct-api)"),
                "submission_url": static_submission_url,
                "monitoring_url": static_monitoring_url,
            }],
        }],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

