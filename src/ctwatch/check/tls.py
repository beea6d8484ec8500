"""A minimal TLS client that collects what a server presents and checks that it holds the key.

Python's ``ssl`` module shows neither the SCT TLS extension nor a stapled OCSP response, and a
second, separate handshake could be answered with a different certificate (servers with an RSA
and an ECDSA certificate pick one per ClientHello). So ``check`` speaks just enough TLS itself,
on one connection:

* one ClientHello offering TLS 1.3 and TLS 1.2 (ECDHE/DHE suites only), with SNI,
  ``status_request`` (5) and ``signed_certificate_timestamp`` (18);
* TLS 1.2: the plaintext ServerHello (SCT extension), Certificate, CertificateStatus and
  ServerKeyExchange, whose signature over both randoms proves possession of the leaf key;
* TLS 1.3: the handshake keys are derived (X25519, P-256 or P-384; a HelloRetryRequest is
  followed), the encrypted Certificate is read with its per-entry SCT and OCSP extensions, and
  CertificateVerify and the server Finished are checked.

It stops there and closes the connection: no application data is ever sent. Chain validation is
not done here (see :mod:`ctwatch.check.chain`). Every length is bounded, every read has a
deadline, and malformed server messages raise :class:`DecodeError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..cttypes import Reader, vec16
from ..errors import ConfigError, DecodeError, FetchError

TLS12, TLS13 = 0x0303, 0x0304
VERSION_NAMES = {TLS12: "TLS 1.2", TLS13: "TLS 1.3"}

# Record and handshake content types, handshake message types, extension numbers.
_CCS, _ALERT, _HANDSHAKE, _APPDATA = 20, 21, 22, 23
_SERVER_HELLO, _ENCRYPTED_EXTENSIONS, _CERTIFICATE, _SERVER_KEY_EXCHANGE = 2, 8, 11, 12
_CERTIFICATE_REQUEST, _SERVER_HELLO_DONE, _CERTIFICATE_VERIFY = 13, 14, 15
_FINISHED, _CERTIFICATE_STATUS = 20, 22
_EXT_SNI, _EXT_STATUS_REQUEST, _EXT_GROUPS, _EXT_POINT_FORMATS, _EXT_SIG_ALGS = 0, 5, 10, 11, 13
_EXT_SCT, _EXT_SUPPORTED_VERSIONS, _EXT_COOKIE, _EXT_KEY_SHARE, _EXT_RENEGOTIATION = 18, 43, 44, 51, 0xFF01

_HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
_CLOSE_NOTIFY = b"\x15\x03\x03\x00\x02\x01\x00"

MAX_RECORD = (1 << 14) + 2048  # the largest record TLS 1.2 allows (TLS 1.3 allows less)
MAX_HANDSHAKE_BYTES = 1 << 20  # everything read before the server is done; real chains are < 20 KB
MAX_CERTS = 32

_SHA256, _SHA384, _SHA512 = hashes.SHA256(), hashes.SHA384(), hashes.SHA512()
# TLS 1.3 suites: (hash, AEAD, key length).
_TLS13_SUITES: dict[int, tuple[hashes.HashAlgorithm, type[AESGCM | ChaCha20Poly1305], int]] = {
    0x1301: (_SHA256, AESGCM, 16),
    0x1302: (_SHA384, AESGCM, 32),
    0x1303: (_SHA256, ChaCha20Poly1305, 32),
}
# TLS 1.2 suites whose key exchange is signed by the certificate key: ECDHE, then DHE.
_ECDHE_SUITES = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC009, 0xC013, 0xC00A, 0xC014)
_DHE_SUITES = (0x009E, 0x009F)

_GROUPS = {0x001D: None, 0x0017: ec.SECP256R1, 0x0018: ec.SECP384R1}  # None: X25519
_SHARED_AT_FIRST = (0x001D, 0x0017)  # key shares sent in the first ClientHello

# Signature schemes: (kind, hash). Offered in this order.
_SCHEMES: dict[int, tuple[str, hashes.HashAlgorithm | None]] = {
    0x0403: ("ecdsa", _SHA256), 0x0503: ("ecdsa", _SHA384), 0x0603: ("ecdsa", _SHA512),
    0x0807: ("ed25519", None), 0x0808: ("ed448", None),
    0x0804: ("pss", _SHA256), 0x0805: ("pss", _SHA384), 0x0806: ("pss", _SHA512),
    0x0809: ("pss", _SHA256), 0x080A: ("pss", _SHA384), 0x080B: ("pss", _SHA512),
    0x0401: ("pkcs1", _SHA256), 0x0501: ("pkcs1", _SHA384), 0x0601: ("pkcs1", _SHA512),
}
_TLS13_CURVES = {0x0403: "secp256r1", 0x0503: "secp384r1", 0x0603: "secp521r1"}

_ALERTS = {
    10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure", 42: "bad_certificate",
    47: "illegal_parameter", 50: "decode_error", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 120: "no_application_protocol",
}


@dataclass(frozen=True, slots=True)
class Presented:
    """What a server presented in one handshake, and whether it proved it holds the leaf key.

    ``sct_list`` is the SignedCertificateTimestampList of the TLS extension and ``ocsp_response``
    the stapled OCSP response (DER), each None when the server sent none.
    """

    version: str
    chain: list[bytes]
    sct_list: bytes | None
    ocsp_response: bytes | None
    key_proven: bool
    key_error: str | None


def _vec8(data: bytes) -> bytes:
    return bytes((len(data),)) + data


def _ext(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + vec16(body)


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes((kind,)) + len(body).to_bytes(3, "big") + body


def sni_name(name: str) -> str | None:
    """The SNI host_name for ``name``: its IDNA (A-label) form; None for an IP address (no SNI)."""
    try:
        ipaddress.ip_address(name.strip("[]"))
        return None
    except ValueError:
        pass
    try:
        return name.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise ConfigError(f"{name!r} is not a valid host name: {e}") from None


class _KeyShares:
    """Ephemeral key pairs for the TLS 1.3 groups, created on demand."""

    def __init__(self) -> None:
        self._keys: dict[int, x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey] = {}

    def public(self, group: int) -> bytes:
        key = self._keys.get(group)
        if key is None:
            curve = _GROUPS[group]
            key = x25519.X25519PrivateKey.generate() if curve is None else ec.generate_private_key(curve())
            self._keys[group] = key
        enc, fmt = serialization.Encoding, serialization.PublicFormat
        if isinstance(key, x25519.X25519PrivateKey):
            return key.public_key().public_bytes(enc.Raw, fmt.Raw)
        return key.public_key().public_bytes(enc.X962, fmt.UncompressedPoint)

    def shared(self, group: int, peer: bytes) -> bytes:
        key = self._keys.get(group)
        if key is None:
            raise DecodeError(f"server answered with a key share for group {group:#06x} that was not offered")
        try:
            if isinstance(key, x25519.X25519PrivateKey):
                return key.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
            pub = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, peer)
            return key.exchange(ec.ECDH(), pub)
        except ValueError as e:
            raise DecodeError(f"server key share is invalid: {e}") from None


def client_hello(server_name: str | None, random: bytes, session_id: bytes, shares: _KeyShares,
                 groups: tuple[int, ...], cookie: bytes | None = None) -> bytes:
    """A ClientHello handshake message offering TLS 1.3 and 1.2, asking for SCTs and OCSP."""
    suites = (*_TLS13_SUITES, *_ECDHE_SUITES, *_DHE_SUITES)
    exts = []
    if server_name is not None:
        name = server_name.encode("ascii")
        exts.append(_ext(_EXT_SNI, vec16(b"\x00" + vec16(name))))
    exts += [
        _ext(_EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"),  # ocsp, no responder ids, no extensions
        _ext(_EXT_GROUPS, vec16(b"".join(g.to_bytes(2, "big") for g in _GROUPS))),
        _ext(_EXT_POINT_FORMATS, b"\x01\x00"),
        _ext(_EXT_SIG_ALGS, vec16(b"".join(s.to_bytes(2, "big") for s in _SCHEMES))),
        _ext(_EXT_SCT, b""),
        _ext(_EXT_SUPPORTED_VERSIONS, _vec8(TLS13.to_bytes(2, "big") + TLS12.to_bytes(2, "big"))),
        _ext(_EXT_KEY_SHARE, vec16(b"".join(g.to_bytes(2, "big") + vec16(shares.public(g)) for g in groups))),
        _ext(_EXT_RENEGOTIATION, b"\x00"),
    ]
    if cookie is not None:
        exts.append(_ext(_EXT_COOKIE, vec16(cookie)))
    body = (
        TLS12.to_bytes(2, "big") + random + _vec8(session_id)
        + vec16(b"".join(s.to_bytes(2, "big") for s in suites)) + b"\x01\x00" + vec16(b"".join(exts))
    )
    return _handshake(1, body)


def _parse_extensions(data: bytes) -> dict[int, bytes]:
    r = Reader(data)
    out: dict[int, bytes] = {}
    while not r.done():
        kind = r.uint(2)
        body = r.vec(2)
        if kind in out:
            raise DecodeError(f"duplicate TLS extension {kind}")
        out[kind] = body
    return out


def verify_signature(cert_der: bytes, scheme: int, signature: bytes, message: bytes, tls13: bool) -> None:
    """Raise InvalidSignature unless the leaf key signed ``message`` with ``scheme``.

    TLS 1.3 forbids PKCS#1 v1.5 and ties each ECDSA scheme to its curve; TLS 1.2 does neither.
    """
    if scheme not in _SCHEMES:
        raise InvalidSignature(f"server used signature scheme {scheme:#06x}, which was not offered")
    kind, hash_alg = _SCHEMES[scheme]
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InvalidSignature(f"the certificate's public key cannot be read: {e}") from None
    if kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
        if tls13 and key.curve.name != _TLS13_CURVES[scheme]:
            raise InvalidSignature(f"scheme {scheme:#06x} does not match the key's curve {key.curve.name}")
        key.verify(signature, message, ec.ECDSA(hash_alg))
    elif kind == "pss" and isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
        key.verify(signature, message, padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size), hash_alg)
    elif kind == "pkcs1" and isinstance(key, rsa.RSAPublicKey) and hash_alg is not None and not tls13:
        key.verify(signature, message, padding.PKCS1v15(), hash_alg)
    elif (kind == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey)) or (
            kind == "ed448" and isinstance(key, ed448.Ed448PublicKey)):
        key.verify(signature, message)
    else:
        raise InvalidSignature(f"scheme {scheme:#06x} cannot be used with a {type(key).__name__}")


def _hkdf_expand_label(hash_alg: hashes.HashAlgorithm, secret: bytes, label: str, context: bytes,
                       length: int) -> bytes:
    info = length.to_bytes(2, "big") + _vec8(b"tls13 " + label.encode()) + _vec8(context)
    return HKDFExpand(hash_alg, length, info).derive(secret)


class _Connection:
    """Reads records and handshake messages from the server, within the handshake byte budget."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.read_total = 0
        self.pending = bytearray()  # handshake bytes not yet split into messages
        self.aead: AESGCM | ChaCha20Poly1305 | None = None
        self.iv = b""
        self.seq = 0

    async def _record(self) -> tuple[int, bytes]:
        try:
            header = await self.reader.readexactly(5)
            kind, length = header[0], int.from_bytes(header[3:5], "big")
            if kind not in (_CCS, _ALERT, _HANDSHAKE, _APPDATA) or header[1] != 3:
                raise DecodeError("the server does not speak TLS (bad record header)")
            if length > MAX_RECORD:
                raise DecodeError(f"TLS record of {length} bytes exceeds the maximum")
            self.read_total += 5 + length
            if self.read_total > MAX_HANDSHAKE_BYTES:
                raise DecodeError(f"the server sent more than {MAX_HANDSHAKE_BYTES} bytes before finishing")
            body = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise FetchError("the server closed the connection during the handshake") from None
        if kind == _APPDATA and self.aead is not None:
            kind, body = self._decrypt(header, body)
        if kind == _ALERT:
            desc = body[1] if len(body) == 2 else -1
            raise FetchError(f"the server sent TLS alert {_ALERTS.get(desc, desc)}")
        return kind, body

    def _decrypt(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        assert self.aead is not None
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(len(self.iv), "big"), strict=True))
        self.seq += 1
        try:
            plain = self.aead.decrypt(nonce, body, header)
        except InvalidTag:
            raise DecodeError("a TLS 1.3 record does not decrypt (wrong keys or tampering)") from None
        plain = plain.rstrip(b"\x00")
        if not plain:
            raise DecodeError("encrypted TLS record without a content type")
        return plain[-1], plain[:-1]

    async def message(self) -> tuple[int, bytes, bytes]:
        """The next handshake message: (type, body, raw bytes with its 4-byte header)."""
        while True:
            if len(self.pending) >= 4:
                length = int.from_bytes(self.pending[1:4], "big")
                if 4 + length > MAX_HANDSHAKE_BYTES:
                    raise DecodeError(f"handshake message of {length} bytes exceeds the maximum")
                if len(self.pending) >= 4 + length:
                    raw = bytes(self.pending[: 4 + length])
                    del self.pending[: 4 + length]
                    return raw[0], raw[4:], raw
            kind, body = await self._record()
            if kind == _CCS:
                continue  # TLS 1.3 middlebox compatibility
            if kind != _HANDSHAKE:
                raise DecodeError(f"unexpected TLS record type {kind} during the handshake")
            self.pending += body

    def set_keys(self, aead: AESGCM | ChaCha20Poly1305, iv: bytes) -> None:
        if self.pending:
            raise DecodeError("handshake data straddles the switch to encryption")
        self.aead, self.iv, self.seq = aead, iv, 0


async def fetch_presented(host: str, port: int, server_name: str | None, timeout: float) -> Presented:
    """Connect to ``host``:``port`` with SNI ``server_name`` and return what the server presents.

    Raises FetchError when the server cannot be reached or refuses the handshake, DecodeError when
    it answers with malformed TLS; ``timeout`` bounds the whole exchange.
    """
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_RECORD + 5)
            try:
                return await _handshake_with(reader, writer, server_name)
            finally:
                writer.close()
    except TimeoutError:
        raise FetchError(f"{host}:{port}: no TLS handshake within {timeout:g} s") from None
    except OSError as e:
        raise FetchError(f"{host}:{port}: {e.strerror or e}") from None


async def _handshake_with(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          server_name: str | None) -> Presented:
    conn = _Connection(reader)
    random, session_id = os.urandom(32), os.urandom(32)
    shares = _KeyShares()
    hello = client_hello(server_name, random, session_id, shares, _SHARED_AT_FIRST)
    writer.write(b"\x16\x03\x01" + len(hello).to_bytes(2, "big") + hello)
    await writer.drain()
    kind, body, raw = await conn.message()
    if kind != _SERVER_HELLO:
        raise DecodeError(f"expected ServerHello, got handshake message {kind}")
    hello_transcript = hello
    sh = _ServerHello.parse(body)
    if sh.random == _HRR_RANDOM:
        group, cookie = sh.retry_request()
        digest = hashlib.new(_TLS13_SUITES[sh.suite][0].name, hello).digest()
        retry = client_hello(server_name, random, session_id, shares, (group,), cookie)
        writer.write(b"\x16\x03\x03" + len(retry).to_bytes(2, "big") + retry)
        await writer.drain()
        hello_transcript = _handshake(254, digest) + raw + retry
        kind, body, raw = await conn.message()
        if kind != _SERVER_HELLO:
            raise DecodeError(f"expected ServerHello after HelloRetryRequest, got message {kind}")
        sh = _ServerHello.parse(body)
        if sh.random == _HRR_RANDOM:
            raise DecodeError("the server sent a second HelloRetryRequest")
    if sh.version == TLS13:
        return await _tls13(conn, sh, shares, hello_transcript + raw)
    presented = await _tls12(conn, sh, random)
    writer.write(_CLOSE_NOTIFY)  # still plaintext in TLS 1.2: spares the server an "unexpected EOF"
    return presented


@dataclass(frozen=True, slots=True)
class _ServerHello:
    random: bytes
    suite: int
    version: int
    extensions: dict[int, bytes]

    @classmethod
    def parse(cls, body: bytes) -> _ServerHello:
        r = Reader(body)
        legacy = r.uint(2)
        random = r.take(32)
        r.vec(1)  # session id echo
        suite = r.uint(2)
        if r.uint(1) != 0:
            raise DecodeError("server chose TLS compression")
        exts = _parse_extensions(r.vec(2)) if not r.done() else {}
        r.expect_end("ServerHello")
        version = legacy
        if _EXT_SUPPORTED_VERSIONS in exts:
            version = int.from_bytes(exts[_EXT_SUPPORTED_VERSIONS], "big")
        if version not in VERSION_NAMES:
            raise FetchError(f"the server chose protocol version {version:#06x}; "
                             "only TLS 1.2 and 1.3 are checked")
        offered = _TLS13_SUITES if version == TLS13 else (*_ECDHE_SUITES, *_DHE_SUITES)
        if suite not in offered:
            raise DecodeError(f"the server chose cipher suite {suite:#06x}, which was not offered")
        return cls(random, suite, version, exts)

    def retry_request(self) -> tuple[int, bytes | None]:
        """(group, cookie) a HelloRetryRequest asks for."""
        if self.version != TLS13 or _EXT_KEY_SHARE not in self.extensions:
            raise DecodeError("HelloRetryRequest without TLS 1.3 key_share")
        group = int.from_bytes(self.extensions[_EXT_KEY_SHARE], "big")
        if group not in _GROUPS or group in _SHARED_AT_FIRST:
            raise FetchError(f"the server wants key exchange group {group:#06x}, "
                             "which ctwatch does not offer")
        cookie = self.extensions.get(_EXT_COOKIE)
        return group, Reader(cookie).vec(2) if cookie is not None else None


def _certificate_list(body: bytes, tls13: bool) -> tuple[list[bytes], dict[int, bytes]]:
    """(certificate DERs, the leaf's TLS 1.3 entry extensions) from a Certificate message."""
    r = Reader(body)
    if tls13:
        r.vec(1)  # certificate_request_context
    inner = Reader(r.vec(3))
    r.expect_end("Certificate")
    chain: list[bytes] = []
    leaf_exts: dict[int, bytes] = {}
    while not inner.done():
        if len(chain) == MAX_CERTS:
            raise DecodeError(f"the server sent more than {MAX_CERTS} certificates")
        chain.append(inner.vec(3))
        if tls13:
            exts = _parse_extensions(inner.vec(2))
            if len(chain) == 1:
                leaf_exts = exts
    if not chain:
        raise FetchError("the server sent no certificate")
    return chain, leaf_exts


def _ocsp_from_status(body: bytes) -> bytes:
    """The OCSP response of a CertificateStatus structure (status_type ocsp)."""
    r = Reader(body)
    if r.uint(1) != 1:
        raise DecodeError("certificate status is not of type ocsp")
    out = r.vec(3)
    r.expect_end("CertificateStatus")
    return out


async def _tls12(conn: _Connection, sh: _ServerHello, client_random: bytes) -> Presented:
    chain: list[bytes] = []
    ocsp: bytes | None = None
    key_error: str | None = "the server sent no signed key exchange"
    while True:
        kind, body, _ = await conn.message()
        if kind == _CERTIFICATE:
            chain, _ = _certificate_list(body, tls13=False)
        elif kind == _CERTIFICATE_STATUS:
            ocsp = _ocsp_from_status(body)
        elif kind == _SERVER_KEY_EXCHANGE:
            if not chain:
                raise DecodeError("ServerKeyExchange before Certificate")
            key_error = _check_key_exchange(body, sh, client_random, chain[0])
        elif kind == _SERVER_HELLO_DONE:
            break
        elif kind != _CERTIFICATE_REQUEST:
            raise DecodeError(f"unexpected TLS 1.2 handshake message {kind}")
    if not chain:
        raise FetchError("the server sent no certificate")
    return Presented(VERSION_NAMES[TLS12], chain, sh.extensions.get(_EXT_SCT), ocsp, key_error is None,
                     key_error)


def _check_key_exchange(body: bytes, sh: _ServerHello, client_random: bytes, leaf: bytes) -> str | None:
    """None if the ServerKeyExchange is signed by the leaf key, else why not."""
    r = Reader(body)
    if sh.suite in _ECDHE_SUITES:
        if r.uint(1) != 3:
            raise DecodeError("ECDHE parameters are not a named curve")
        r.take(2)
        r.vec(1)
    else:
        for _ in range(3):  # p, g, Ys
            r.vec(2)
    params = body[: r.pos]
    scheme = r.uint(2)
    signature = r.vec(2)
    r.expect_end("ServerKeyExchange")
    try:
        verify_signature(leaf, scheme, signature, client_random + sh.random + params, tls13=False)
    except InvalidSignature as e:
        return f"the key exchange is not signed by the certificate key ({e or 'bad signature'})"
    return None


async def _tls13(conn: _Connection, sh: _ServerHello, shares: _KeyShares, transcript: bytes) -> Presented:
    hash_alg, aead_cls, key_len = _TLS13_SUITES[sh.suite]
    share = sh.extensions.get(_EXT_KEY_SHARE)
    if share is None:
        raise DecodeError("TLS 1.3 ServerHello without key_share")
    r = Reader(share)
    group = r.uint(2)
    shared = shares.shared(group, r.vec(2))
    r.expect_end("key_share")

    def digest(data: bytes) -> bytes:
        return hashlib.new(hash_alg.name, data).digest()

    size = hash_alg.digest_size
    early = hmac.digest(bytes(size), bytes(size), hash_alg.name)
    derived = _hkdf_expand_label(hash_alg, early, "derived", digest(b""), size)
    handshake_secret = hmac.digest(derived, shared, hash_alg.name)
    traffic = _hkdf_expand_label(hash_alg, handshake_secret, "s hs traffic", digest(transcript), size)
    conn.set_keys(aead_cls(_hkdf_expand_label(hash_alg, traffic, "key", b"", key_len)),
                  _hkdf_expand_label(hash_alg, traffic, "iv", b"", 12))

    chain: list[bytes] = []
    leaf_exts: dict[int, bytes] = {}
    key_error: str | None = "the server sent no CertificateVerify"
    while True:
        kind, body, raw = await conn.message()
        if kind == _CERTIFICATE:
            chain, leaf_exts = _certificate_list(body, tls13=True)
        elif kind == _CERTIFICATE_VERIFY:
            if not chain:
                raise DecodeError("CertificateVerify before Certificate")
            cv = Reader(body)
            scheme, signature = cv.uint(2), cv.vec(2)
            cv.expect_end("CertificateVerify")
            content = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + digest(transcript)
            try:
                verify_signature(chain[0], scheme, signature, content, tls13=True)
                key_error = None
            except InvalidSignature as e:
                key_error = f"CertificateVerify is not signed by the certificate key ({e or 'bad signature'})"
        elif kind == _FINISHED:
            finished_key = _hkdf_expand_label(hash_alg, traffic, "finished", b"", size)
            if not hmac.compare_digest(body, hmac.digest(finished_key, digest(transcript), hash_alg.name)):
                key_error = "the server Finished message does not verify"
            break
        elif kind not in (_ENCRYPTED_EXTENSIONS, _CERTIFICATE_REQUEST):
            raise DecodeError(f"unexpected TLS 1.3 handshake message {kind}")
        transcript += raw
    if not chain:
        raise FetchError("the server sent no certificate")
    status = leaf_exts.get(_EXT_STATUS_REQUEST)
    return Presented(VERSION_NAMES[TLS13], chain, leaf_exts.get(_EXT_SCT),
                     _ocsp_from_status(status) if status is not None else None, key_error is None, key_error)

