"""Certificates decoded for people and for certstream clients, with ``cryptography``, and their
embedded SCTs checked with :mod:`ctwatch.check.scts`.

Everything here reads attacker-controlled DER. A field ``cryptography`` refuses is shown as
undecodable instead of failing the page or the feed; nothing but plain data comes out (callers
escape it for where it goes).
"""

from __future__ import annotations

import base64
import hashlib
import time
import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from ..check.scts import check_signature, embedded_scts
from ..loglist import LogInfo, parse_log_list, read_bundled

MAX_VALUE = 4096  # characters of one decoded value shown
# What cryptography raises on hostile DER, much of it only when a field is first read: KeyError
# for an unknown string type in a name, UnsupportedAlgorithm for an unknown key type, its own
# classes for a bad version, a duplicate extension or an unsupported GeneralName, ValueError else.
_UNDECODABLE = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

# certstream's extension keys (certstream-server and certstream-server-go spell them so).
_CERTSTREAM_EXT = {
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "authorityInfoAccess",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "authorityKeyIdentifier",
    ExtensionOID.BASIC_CONSTRAINTS: "basicConstraints",
    ExtensionOID.CERTIFICATE_POLICIES: "certificatePolicies",
    ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS: "ctlSignedCertificateTimestamp",
    ExtensionOID.EXTENDED_KEY_USAGE: "extendedKeyUsage",
    ExtensionOID.KEY_USAGE: "keyUsage",
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: "subjectAltName",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: "subjectKeyIdentifier",
}
_SUBJECT_KEYS = (
    ("C", NameOID.COUNTRY_NAME),
    ("CN", NameOID.COMMON_NAME),
    ("L", NameOID.LOCALITY_NAME),
    ("O", NameOID.ORGANIZATION_NAME),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("ST", NameOID.STATE_OR_PROVINCE_NAME),
)
_KEY_USAGES = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Content Commitment"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Signing"),
    ("crl_sign", "CRL Signing"),
)


@cache
def bundled_logs() -> dict[bytes, LogInfo]:
    """Every log of the bundled Chrome and Apple lists, whatever its state, by log ID.

    Retired and rejected logs stay: their SCTs are still in certificates people look up.
    Chrome's descriptions win where both lists name a log.
    """
    logs: dict[bytes, LogInfo] = {}
    for lst in ("apple", "chrome"):
        for info in parse_log_list(read_bundled(lst), f"bundled {lst} list"):
            logs[info.log_id] = info
    return logs


def log_name(log_id_b64: str, logs: Mapping[bytes, LogInfo] | None = None) -> str | None:
    """The description of a log (``Google 'Argon2025h2' log``) in ``logs`` (default: the bundled
    lists), or None."""
    try:
        log_id = base64.b64decode(log_id_b64, validate=True)
    except ValueError:
        return None
    info = (bundled_logs() if logs is None else logs).get(log_id)
    return info.description if info else None


def embedded_sct_checks(
    cert_der: bytes, issuer_key_hash: bytes | None, logs: dict[bytes, LogInfo]
) -> list[dict[str, Any]]:
    """The SCTs embedded in a final certificate: log, timestamp, and whether the signature verifies.

    An embedded SCT signs the precertificate entry, which :func:`ctwatch.check.scts.check_signature`
    rebuilds from the certificate (its TBS without the SCT list) and ``issuer_key_hash`` (SHA-256
    of the issuer's SubjectPublicKeyInfo). A malformed list or SCT, an unknown log or a signature
    that fails is reported in ``error``, never raised.
    """
    now_ms = int(time.time() * 1000)
    out = []
    for found in embedded_scts(cert_der):
        check = check_signature(found, logs, cert_der, issuer_key_hash, now_ms)
        sct = check.sct
        out.append(
            {
                "log_id": base64.b64encode(sct.log_id).decode() if sct else None,
                "log": check.log.description if check.log else None,
                "log_url": check.log.url if check.log else None,
                "timestamp": sct.timestamp if sct else None,
                "verified": check.valid,
                "error": check.error,
            }
        )
    return out


def load(der: bytes) -> x509.Certificate | None:
    """The parsed certificate, or None when ``cryptography`` refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # negative serials and the like: shown, not warned about
        try:
            return x509.load_der_x509_certificate(der)
        except _UNDECODABLE:
            return None


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _cut(s: str) -> str:
    return s if len(s) <= MAX_VALUE else s[:MAX_VALUE] + "…"


def _general_name(n: x509.GeneralName) -> str:
    if isinstance(n, x509.DNSName):
        return "DNS:" + n.value
    if isinstance(n, x509.IPAddress):
        return f"IP Address:{n.value}"
    if isinstance(n, x509.RFC822Name):
        return "email:" + n.value
    if isinstance(n, x509.UniformResourceIdentifier):
        return "URI:" + n.value
    if isinstance(n, x509.DirectoryName):
        return "DirName:" + n.value.rfc4514_string()
    return f"{type(n).__name__}:{getattr(n, 'value', '')!s}"


def extension_value(ext: x509.Extension[x509.ExtensionType]) -> str:
    """One extension in OpenSSL's words (the form certstream clients know)."""
    v = ext.value
    if isinstance(v, x509.SubjectAlternativeName):
        return ", ".join(_general_name(n) for n in v)
    if isinstance(v, x509.KeyUsage):
        out = [label for attr, label in _KEY_USAGES if getattr(v, attr)]
        if v.key_agreement:
            out += [
                label
                for attr, label in (("encipher_only", "Encipher Only"), ("decipher_only", "Decipher Only"))
                if getattr(v, attr)
            ]
        return ", ".join(out)
    if isinstance(v, x509.ExtendedKeyUsage):
        return ", ".join(getattr(oid, "_name", None) or oid.dotted_string for oid in v)
    if isinstance(v, x509.BasicConstraints):
        return ("CA:TRUE" if v.ca else "CA:FALSE") + (
            f", pathlen:{v.path_length}" if v.path_length is not None else ""
        )
    if isinstance(v, x509.AuthorityKeyIdentifier):
        return "keyid:" + _colon_hex(v.key_identifier) if v.key_identifier else ""
    if isinstance(v, x509.SubjectKeyIdentifier):
        return _colon_hex(v.digest)
    if isinstance(v, x509.AuthorityInformationAccess):
        return ", ".join(f"{d.access_method._name} - {_general_name(d.access_location)}" for d in v)
    if isinstance(v, x509.CRLDistributionPoints):
        return ", ".join(_general_name(n) for dp in v for n in (dp.full_name or []))
    if isinstance(v, x509.CertificatePolicies):
        return ", ".join("Policy: " + p.policy_identifier.dotted_string for p in v)
    if isinstance(v, x509.PrecertificateSignedCertificateTimestamps):
        return f"{len(v)} signed certificate timestamp(s)"
    if isinstance(v, x509.PrecertPoison):
        return "critical CT poison: this is a precertificate"
    if isinstance(v, x509.UnrecognizedExtension):
        return v.value.hex()
    return repr(v)


def _extensions(cert: x509.Certificate) -> list[dict[str, Any]] | None:
    try:
        exts = list(cert.extensions)
    except _UNDECODABLE:
        return None
    out = []
    for ext in exts:
        try:
            value = extension_value(ext)
        except _UNDECODABLE:
            value = "(undecodable)"
        out.append(
            {
                "oid": ext.oid.dotted_string,
                "name": getattr(ext.oid, "_name", ext.oid.dotted_string),
                "critical": ext.critical,
                "value": _cut(value),
                "ext": ext,
            }
        )
    return out


def _public_key(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except _UNDECODABLE:
        return "(unsupported key)"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size} bits"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return type(key).__name__.removesuffix("PublicKey")
    return type(key).__name__


def _safe(fn: Any, default: Any = None) -> Any:
    try:
        return fn()
    except _UNDECODABLE:
        return default


def describe(der: bytes) -> dict[str, Any]:
    """The decoded fields of a certificate or precertificate for its detail page."""
    out: dict[str, Any] = {"sha256": hashlib.sha256(der).hexdigest(), "size": len(der)}
    cert = load(der)
    if cert is None:
        out["error"] = "cryptography cannot parse this certificate"
        return out
    decoded = _extensions(cert)
    exts = decoded or []
    out.update(
        {
            "version": _safe(lambda: cert.version.name),
            "serial": _safe(lambda: format(cert.serial_number, "x")),
            "signature_algorithm": _safe(lambda: cert.signature_algorithm_oid._name),
            "subject": _safe(lambda: cert.subject.rfc4514_string(), "(undecodable)"),
            "issuer": _safe(lambda: cert.issuer.rfc4514_string(), "(undecodable)"),
            "not_before": _safe(lambda: cert.not_valid_before_utc.isoformat()),
            "not_after": _safe(lambda: cert.not_valid_after_utc.isoformat()),
            "public_key": _public_key(cert),
            "extensions": [{k: v for k, v in e.items() if k != "ext"} for e in exts],
            "extensions_error": "extensions cannot be decoded" if decoded is None else None,
        }
    )
    return out


def pem(ders: list[bytes]) -> str:
    """PEM blocks of the DER certificates, in order."""
    out = []
    for der in ders:
        b64 = base64.b64encode(der).decode()
        out.append(
            "-----BEGIN CERTIFICATE-----\n"
            + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
            + "\n-----END CERTIFICATE-----\n"
        )
    return "".join(out)


def _subject(name: x509.Name | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    agg = ""
    for key, oid in _SUBJECT_KEYS:
        vals = [str(a.value) for a in name.get_attributes_for_oid(oid)] if name is not None else []
        out[key] = ",".join(vals) if vals else None
        if vals:
            agg += f"/{key}={out[key]}"
    emails = (
        [str(a.value) for a in name.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)] if name is not None else []
    )
    out["email_address"] = ",".join(emails) if emails else None
    out["aggregated"] = agg
    return out


def _name_from_rfc4514(text: str | None) -> x509.Name | None:
    if not text:
        return None
    try:
        return x509.Name.from_rfc4514_string(text)
    except _UNDECODABLE:
        return None


def certstream_cert(
    der: bytes | None,
    *,
    names: list[str] | None = None,
    subject: str | None = None,
    issuer: str | None = None,
    serial: str | None = None,
    not_before: int | None = None,
    not_after: int | None = None,
    with_der: bool = True,
) -> dict[str, Any]:
    """A certstream ``leaf_cert`` (or chain element): from the DER when there is one, else from the record.

    ``names`` (the monitor's identities) become ``all_domains``; without them the SAN dNSNames and
    the subject CN are used, as certstream-server does.
    """
    cert = load(der) if der is not None else None
    extensions: dict[str, Any] = {}
    if cert is not None:
        for e in _extensions(cert) or []:
            if isinstance(e["ext"].value, x509.PrecertPoison):
                extensions["ctlPoisonByte"] = True
            elif (key := _CERTSTREAM_EXT.get(e["ext"].oid)) is not None:
                extensions[key] = e["value"]
    subj = _subject(
        cert.subject if cert is not None and _safe(lambda: cert.subject) else _name_from_rfc4514(subject)
    )
    iss = _subject(
        cert.issuer if cert is not None and _safe(lambda: cert.issuer) else _name_from_rfc4514(issuer)
    )
    if names is None:
        names = []
        if cert is not None:
            for e in _extensions(cert) or []:
                if isinstance(e["ext"].value, x509.SubjectAlternativeName):
                    names = list(e["ext"].value.get_values_for_type(x509.DNSName))
        if (
            subj["CN"]
            and subj["CN"] not in names
            and not _safe(lambda: cert is not None and _is_ca(cert), False)
        ):
            names.append(subj["CN"])
    if cert is not None:
        nb = _safe(lambda: int(cert.not_valid_before_utc.timestamp()), not_before)
        na = _safe(lambda: int(cert.not_valid_after_utc.timestamp()), not_after)
        sn = _safe(lambda: format(cert.serial_number, "X"), serial or "")
    else:
        nb, na, sn = not_before, not_after, (serial or "").upper()
    sn = "0" + sn if len(sn) % 2 else sn
    out: dict[str, Any] = {
        "subject": subj,
        "issuer": iss,
        "extensions": extensions,
        "not_before": nb,
        "not_after": na,
        "serial_number": sn,
        "fingerprint": _colon_hex(hashlib.sha1(der).digest()) if der is not None else None,
        "sha1": _colon_hex(hashlib.sha1(der).digest()) if der is not None else None,
        "sha256": _colon_hex(hashlib.sha256(der).digest()) if der is not None else None,
        "signature_algorithm": _safe(lambda: _sig_alg(cert), "") if cert is not None else "",
        "is_ca": bool(cert is not None and _safe(lambda: _is_ca(cert), False)),
        "all_domains": names,
    }
    if with_der and der is not None:
        out["as_der"] = base64.b64encode(der).decode()
    return out


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _sig_alg(cert: x509.Certificate) -> str:
    """certstream's spelling: ``sha256, rsa``, ``ecdsa, sha256``…"""
    name = cert.signature_algorithm_oid._name  # e.g. sha256WithRSAEncryption, ecdsa-with-SHA256
    low = name.lower()
    if low.startswith("ecdsa-with-"):
        return "ecdsa, " + low.removeprefix("ecdsa-with-")
    if "withrsaencryption" in low:
        return low.replace("withrsaencryption", "") + ", rsa"
    if low.startswith("rsassa"):
        return "rsa-pss"
    return low
