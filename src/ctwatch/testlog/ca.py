"""Test CAs and certificate issuance for the local test log: real X.509, deterministic bytes.

Keys are derived from the corpus seed (EC scalars from a hash, RSA primes from a seeded search)
and every ECDSA signature is RFC 6979 deterministic, so one seed always yields the same corpus.
A precertificate is built with ``cryptography``'s builder; its final certificate is made by
splicing the SCT-list extension into the poison-free TBS, so the pair share that TBS by
construction, exactly as RFC 6962 §3.1 requires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ..cttypes import (
    HASH_SHA256,
    PRECERT_ENTRY,
    SCT,
    SIG_ECDSA,
    SIG_RSA,
    DigitallySigned,
    encode_sct_list,
    sct_signature_input,
)
from ..errors import ConfigError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
HashAlg = hashes.SHA256 | hashes.SHA384

_SAN_OID = x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME
_POISON_OID_DER = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x03"
_SCT_LIST_OID_DER = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x02"

_CURVE_ORDER = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
}
_SMALL_PRIMES = tuple(p for p in range(3, 2000) if all(p % q for q in range(2, int(p**0.5) + 1)))
_KEY_CACHE: dict[tuple[int, str, str], PrivateKey] = {}

CA_NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CA_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
TEST_CA_NAME = "ctwatch Test CA"
UNEXPECTED_CA_NAME = "Unexpected CA"


# --- deterministic keys ---------------------------------------------------------------------------


def derive_key(seed: int, label: str, kind: str = "p256") -> PrivateKey:
    """The private key named ``label`` for ``seed``: ``p256``, ``p384`` or ``rsa2048``.

    Cached per process: RSA prime search costs a few hundred milliseconds.
    """
    cache_key = (seed, label, kind)
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        material = hashlib.sha512(f"ctwatch-testlog:{seed}:{label}:{kind}".encode()).digest()
        if kind == "rsa2048":
            key = _derive_rsa(random.Random(material), 2048)
        elif kind in ("p256", "p384"):
            curve: ec.EllipticCurve = ec.SECP256R1() if kind == "p256" else ec.SECP384R1()
            order = _CURVE_ORDER[curve.name]
            key = ec.derive_private_key(int.from_bytes(material, "big") % (order - 1) + 1, curve)
        else:
            raise ValueError(f"unknown key kind {kind!r}")
        _KEY_CACHE[cache_key] = key
    return key


def _probable_prime(n: int, rng: random.Random) -> bool:
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while not d & 1:
        d >>= 1
        s += 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _derive_rsa(rng: random.Random, bits: int) -> rsa.RSAPrivateKey:
    e = 65537
    half = bits // 2
    primes: list[int] = []
    while len(primes) < 2:
        c = rng.getrandbits(half) | (3 << (half - 2)) | 1  # top two bits set: n has exactly `bits` bits
        if (c - 1) % e and c not in primes and _probable_prime(c, rng):
            primes.append(c)
    p, q = primes
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def spki_der(key: PrivateKey) -> bytes:
    """DER SubjectPublicKeyInfo of a private key's public half (log IDs, issuer key hashes)."""
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: these keys guard nothing but a test log."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(path: Path) -> PrivateKey:
    """A PEM private key written by :func:`key_pem`; a ConfigError if unreadable."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load test log key {path}: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def hash_for(key: PrivateKey) -> HashAlg:
    """The signature hash a CA key uses: SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return hashes.SHA384()
    return hashes.SHA256()


def sign(key: PrivateKey, message: bytes, algorithm: HashAlg | None = None) -> bytes:
    """Deterministic signature: RFC 6979 ECDSA or PKCS#1 v1.5 RSA (SHA-256 unless told)."""
    algorithm = algorithm or hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(algorithm, deterministic_signing=True))
    return key.sign(message, padding.PKCS1v15(), algorithm)


class LogSigner:
    """A CT log's key: signs TLS DigitallySigned structures (STHs, SCTs)."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.spki = spki_der(key)
        self.log_id = hashlib.sha256(self.spki).digest()
        self.sig_alg = SIG_ECDSA if isinstance(key, ec.EllipticCurvePrivateKey) else SIG_RSA

    def digitally_signed(self, message: bytes) -> DigitallySigned:
        """SHA-256 signature of ``message`` as a TLS DigitallySigned."""
        return DigitallySigned(HASH_SHA256, self.sig_alg, sign(self.key, message))

    def sct(self, timestamp: int, entry_type: int, body: bytes, issuer_key_hash: bytes | None) -> bytes:
        """An encoded v1 SCT promising to log the entry (no extensions, as RFC 6962 logs do)."""
        ds = self.digitally_signed(sct_signature_input(timestamp, entry_type, body, issuer_key_hash, b""))
        return SCT(0, self.log_id, timestamp, b"", ds).encode()


# --- minimal DER, for splicing extensions into our own TBS bytes --------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_len(len(content)) + content


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the TLV at ``pos``; single-byte tags (all X.509 uses here)."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    start = pos + 2 + n
    return tag, start, start + length


def _children(data: bytes, start: int, end: int) -> list[bytes]:
    out = []
    pos = start
    while pos < end:
        _, _, nxt = _read_tlv(data, pos)
        out.append(data[pos:nxt])
        pos = nxt
    return out


def _edit_extensions(tbs: bytes, drop_oid_der: bytes | None, append: bytes | None) -> bytes:
    """Return ``tbs`` with the extension whose OID TLV is ``drop_oid_der`` removed and/or ``append`` added."""
    _, start, end = _read_tlv(tbs, 0)
    fields = _children(tbs, start, end)
    for i, f in enumerate(fields):
        if f[0] == 0xA3:  # [3] EXPLICIT Extensions
            _, inner, _ = _read_tlv(f, 0)
            _, start, end = _read_tlv(f, inner)
            exts = [x for x in _children(f, start, end)
                    if drop_oid_der is None or not x[_read_tlv(x, 0)[1] :].startswith(drop_oid_der)]
            if append is not None:
                exts.append(append)
            fields[i] = _tlv(0xA3, _tlv(0x30, b"".join(exts)))
            return _tlv(0x30, b"".join(fields))
    raise ValueError("TBSCertificate has no extensions")


def strip_poison(tbs: bytes) -> bytes:
    """A precertificate's TBS without the poison extension: what the log entry holds."""
    return _edit_extensions(tbs, _POISON_OID_DER, None)


def sct_list_extension(sct_list: bytes) -> bytes:
    """DER Extension carrying an encoded SignedCertificateTimestampList (non-critical)."""
    return _tlv(0x30, _SCT_LIST_OID_DER + _tlv(0x04, _tlv(0x04, sct_list)))


def san_extension_value(names: list[str]) -> bytes:
    """DER GeneralNames of dNSNames holding the UTF-8 bytes of ``names`` as given.

    Hand-encoded rather than via ``x509.DNSName`` so hostile test names (NUL, CRLF, non-ASCII)
    reach the certificate byte for byte, as a misissuing CA could put them there.
    """
    return _tlv(0x30, b"".join(_tlv(0x82, n.encode("utf-8")) for n in names))


def _certificate(tbs: bytes, sig_alg_der: bytes, signature: bytes) -> bytes:
    return _tlv(0x30, tbs + sig_alg_der + _tlv(0x03, b"\x00" + signature))


def _sig_alg_der(cert_der: bytes) -> bytes:
    _, start, end = _read_tlv(cert_der, 0)
    return _children(cert_der, start, end)[1]


# --- CAs and issuance --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuing intermediate with its chain up to the root, ready to sign leaves."""

    name: str
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[bytes, ...]  # DER: the intermediate, then the root
    issuer_key_hash: bytes  # SHA-256 of the intermediate's SPKI (PreCert.issuer_key_hash)
    hash_alg: HashAlg

    @property
    def root_der(self) -> bytes:
        """The root's DER (what get-roots lists)."""
        return self.chain[-1]


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ctwatch test PKI"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


_CA_KU = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # certSign, cRLSign


def _ca_cert(subject: str, key: PrivateKey, issuer: x509.Name, issuer_key: PrivateKey, serial: int,
             path_length: int | None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(issuer).public_key(key.public_key())
        .serial_number(serial).not_valid_before(CA_NOT_BEFORE).not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_KU, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                       critical=False)
    )
    return builder.sign(issuer_key, hash_for(issuer_key), ecdsa_deterministic=True)


def make_issuer(seed: int, name: str, kind: str) -> tuple[Issuer, PrivateKey, x509.Certificate]:
    """A root and an intermediate called ``name`` (keys of ``kind``); returns (issuer, root key, root)."""
    slug = name.lower().replace(" ", "-")
    root_key = derive_key(seed, f"{slug}-root", kind)
    int_key = derive_key(seed, f"{slug}-intermediate", kind)
    root_name = _name(f"{name} Root")
    serial = int.from_bytes(hashlib.sha256(f"{seed}:{slug}".encode()).digest()[:15], "big")
    root = _ca_cert(f"{name} Root", root_key, root_name, root_key, serial, None)
    inter = _ca_cert(name, int_key, root_name, root_key, serial + 1, 0)
    return issuer_from(name, int_key, inter, root), root_key, root


def issuer_from(name: str, key: PrivateKey, inter: x509.Certificate, root: x509.Certificate) -> Issuer:
    """Assemble an :class:`Issuer` from loaded or fresh parts."""
    der = serialization.Encoding.DER
    return Issuer(name, key, inter, (inter.public_bytes(der), root.public_bytes(der)),
                  hashlib.sha256(spki_der(key)).digest(), hash_for(key))


_LEAF_KU_EC = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
_LEAF_KU_RSA = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
_LEAF_EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
_LEAF_BC = x509.BasicConstraints(ca=False, path_length=None)
_LEAF_POLICY = x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("2.23.140.1.2.1"), None)])
_POISON = x509.PrecertPoison()


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """A leaf key of the reused pool, with its precomputed extension (speed: built once)."""

    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    ski: x509.SubjectKeyIdentifier
    key_usage: x509.KeyUsage

    @classmethod
    def of(cls, key: PrivateKey) -> SubjectKey:
        """Precompute a pool key's extensions once, not per certificate."""
        pub = key.public_key()
        ku = _LEAF_KU_RSA if isinstance(key, rsa.RSAPrivateKey) else _LEAF_KU_EC
        return cls(pub, x509.SubjectKeyIdentifier.from_public_key(pub), ku)


@dataclass(frozen=True, slots=True)
class IssuedPair:
    """A precertificate and, when requested, its final certificate with an embedded SCT."""

    precert: bytes
    tbs: bytes  # the precert TBS without poison = the final cert's TBS without the SCT list
    final: bytes | None


class LeafFactory:
    """Issues leaf precertificates (and final certificates) under one :class:`Issuer`."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        slug = issuer.name.lower().replace(" ", "-")
        self._aia = x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(f"http://ca.ctwatch.test/{slug}.der"),
        )])
        self._sig_alg: bytes | None = None

    def issue(self, names: list[str], subject_key: SubjectKey, serial: int, not_before: dt.datetime,
              lifetime: dt.timedelta, log: LogSigner | None, sct_timestamp: int) -> IssuedPair:
        """A precert for ``names``; with ``log``, also the final cert carrying ``log``'s SCT.

        The SCT is signed over the precert entry (timestamp ``sct_timestamp``), so it verifies
        against the precert's log entry as well as against the final certificate.
        """
        cn = names[0]
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if 0 < len(cn) <= 64 else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.issuer.cert.subject)
            .public_key(subject_key.public_key).serial_number(serial)
            .not_valid_before(not_before).not_valid_after(not_before + lifetime)
            .add_extension(subject_key.key_usage, critical=True)
            .add_extension(_LEAF_EKU, critical=False)
            .add_extension(_LEAF_BC, critical=True)
            .add_extension(subject_key.ski, critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(self._aia, critical=False)
            .add_extension(x509.UnrecognizedExtension(_SAN_OID, san_extension_value(names)), critical=False)
            .add_extension(_LEAF_POLICY, critical=False)
            .add_extension(_POISON, critical=True)
        )
        pre = builder.sign(self.issuer.key, self.issuer.hash_alg, ecdsa_deterministic=True)
        pre_der = pre.public_bytes(serialization.Encoding.DER)
        tbs = strip_poison(pre.tbs_certificate_bytes)
        if log is None:
            return IssuedPair(pre_der, tbs, None)
        if self._sig_alg is None:
            self._sig_alg = _sig_alg_der(pre_der)
        sct = log.sct(sct_timestamp, PRECERT_ENTRY, tbs, self.issuer.issuer_key_hash)
        final_tbs = _edit_extensions(tbs, None, sct_list_extension(encode_sct_list([sct])))
        final = _certificate(final_tbs, self._sig_alg, sign(self.issuer.key, final_tbs, self.issuer.hash_alg))
        return IssuedPair(pre_der, tbs, final)
