"""Full details of a log entry that matched: what an alert shows and what pairs a cert with its precert.

Only matched entries get here, so speed does not matter, but robustness does: the certificate is
whatever a CA or an attacker logged. Subject, issuer and validity come from ``cryptography`` when
it accepts the certificate, and from a lean DER walk (the same :func:`read_tlv` as the hot path)
when it does not; hashes, serial, key and CA flag always come from the raw bytes. Nothing but
:class:`DecodeError` escapes.

``tbs_sha256`` is the identity of a certificate across its two lives: for a precert entry it is
the SHA-256 of the logged TBSCertificate, for a final certificate the SHA-256 of its TBS with the
SCT-list extension removed (:func:`tbs_without_sct`), which is the same bytes.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from hashlib import sha256

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .cttypes import X509_ENTRY, parse_merkle_tree_leaf
from .errors import DecodeError
from .identities import SCT_LIST_OID, cert_identities, der_header, read_tlv, tbs_identities, to_unicode

# Complete OID TLVs, compared against the start of each extension.
_BASIC_CONSTRAINTS_OID = b"\x06\x03\x55\x1d\x13"  # 2.5.29.19
_EKU_OID = b"\x06\x03\x55\x1d\x25"  # 2.5.29.37

# RFC 4514 attribute names, as cryptography's rfc4514_string() writes them; others are dotted OIDs.
_ATTR_NAMES = {
    "2.5.4.3": "CN", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.6": "C", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
_STRING_CODECS = {
    0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1A: "latin-1",
    0x1E: "utf-16-be", 0x1C: "utf-32-be",
}
_UTC_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(Z|[+-]\d{4})")
_GENERALIZED_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(?:[.,]\d+)?(Z|[+-]\d{4})?")


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What an alert says about a certificate or precertificate (certspotter's hook variables)."""

    entry_type: str  # "x509" or "precert"
    timestamp: int  # the log's timestamp, ms since the epoch
    names: list[str]  # identities as matched (ASCII, IDNs in punycode)
    names_unicode: list[str]  # the same for display
    subject: str  # RFC 4514
    issuer: str  # RFC 4514, of the issuer DN in this TBS
    serial: str  # lowercase hex of the DER bytes; "-" and the magnitude if negative
    not_before: str | None  # YYYY-MM-DDTHH:MM:SSZ; None if the time cannot be read
    not_after: str | None
    tbs_sha256: str  # equal for a certificate and its precertificate
    cert_sha256: str | None  # of the certificate or precertificate; None if not available
    pubkey_sha256: str  # of the SubjectPublicKeyInfo DER
    issuer_spki_sha256: str | None  # of the real issuer's SubjectPublicKeyInfo, when known
    is_ca: bool

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class _Tbs:
    """The raw pieces of a TBSCertificate (each a complete TLV unless said otherwise)."""

    signature: bytes
    serial: bytes  # INTEGER content
    issuer: bytes
    not_before: tuple[int, bytes]  # (tag, content)
    not_after: tuple[int, bytes]
    subject: bytes
    spki: bytes
    extensions: list[tuple[bytes, bytes]]  # (OID TLV, extnValue content)


def cert_info(leaf_input: bytes, precert_der: bytes | None, chain: list[bytes]) -> CertInfo:
    """Describe a log entry from its leaf and its extra_data (precertificate and issuer chain)."""
    entry = parse_merkle_tree_leaf(leaf_input)
    if entry.entry_type == X509_ENTRY:
        cert_der = entry.body
        tbs_der = _tbs_of(cert_der)
        names = cert_identities(cert_der)
        tbs_hash = sha256(tbs_without_sct(cert_der)).hexdigest()
        cert_hash: str | None = sha256(cert_der).hexdigest()
        # The chain is extra_data, outside the tree: trust its issuer only if it signed the leaf.
        issuer_spki = _spki_sha256(chain[0]) if chain and _signed_by(cert_der, chain[0]) else None
    else:
        tbs_der = entry.body
        names = tbs_identities(tbs_der)
        tbs_hash = sha256(tbs_der).hexdigest()
        cert_hash = sha256(precert_der).hexdigest() if precert_der else None
        # The leaf's issuer_key_hash is the final issuer's SPKI hash, in the verified tree (unlike
        # the chain in extra_data, which a lying log could swap for an authorised CA's).
        assert entry.issuer_key_hash is not None
        issuer_spki = entry.issuer_key_hash.hex()
    tbs = _split_tbs(tbs_der)
    parsed = _load(cert_der if entry.entry_type == X509_ENTRY else _as_certificate(tbs_der, tbs))
    return CertInfo(
        entry_type="x509" if entry.entry_type == X509_ENTRY else "precert",
        timestamp=entry.timestamp,
        names=names,
        names_unicode=[to_unicode(n) for n in names],
        subject=_name(parsed, "subject", tbs.subject),
        issuer=_name(parsed, "issuer", tbs.issuer),
        serial=_serial(tbs.serial),
        not_before=_validity(parsed, "not_valid_before_utc", tbs.not_before),
        not_after=_validity(parsed, "not_valid_after_utc", tbs.not_after),
        tbs_sha256=tbs_hash,
        cert_sha256=cert_hash,
        pubkey_sha256=sha256(tbs.spki).hexdigest(),
        issuer_spki_sha256=issuer_spki,
        is_ca=_is_ca(tbs),
    )


def tbs_without_sct(cert_der: bytes) -> bytes:
    """The TBSCertificate of ``cert_der`` without its SCT-list extension, re-encoded.

    This is what a log puts in the precert entry of the certificate's precertificate. All other
    bytes are kept as they are; when no extension is left the extensions field goes too (as Go's
    ``omitempty`` does in certificate-transparency-go). A TBS without SCTs comes back unchanged.
    """
    tbs = _tbs_of(cert_der)
    _, start, end = read_tlv(tbs, 0, len(tbs))
    pos = start
    while pos < end:
        tag, content, nxt = read_tlv(tbs, pos, end)
        if tag == 0xA3:
            break
        pos = nxt
    else:
        return tbs
    _, ext, ext_end = read_tlv(tbs, content, nxt)
    kept: list[bytes] = []
    removed = False
    while ext < ext_end:
        _, oid, stop = read_tlv(tbs, ext, ext_end)
        if tbs.startswith(SCT_LIST_OID, oid, stop):
            removed = True
        else:
            kept.append(tbs[ext:stop])
        ext = stop
    if not removed:
        return tbs
    field = _der(0xA3, _der(0x30, b"".join(kept))) if kept else b""
    return _der(0x30, tbs[start:pos] + field + tbs[nxt:end])


def _tbs_of(cert_der: bytes) -> bytes:
    tag, start, end = read_tlv(cert_der, 0, len(cert_der))
    if tag != 0x30 or end != len(cert_der):
        raise DecodeError("certificate is not one DER SEQUENCE")
    tag, _, stop = read_tlv(cert_der, start, end)
    if tag != 0x30:
        raise DecodeError("certificate does not start with a TBSCertificate")
    return cert_der[start:stop]


def _split_tbs(tbs: bytes) -> _Tbs:
    tag, pos, end = read_tlv(tbs, 0, len(tbs))
    if tag != 0x30 or end != len(tbs):
        raise DecodeError("TBSCertificate is not one DER SEQUENCE")
    fields: list[tuple[int, int, int, int]] = []  # (tag, header start, content start, end)
    while pos < end:
        tag, start, stop = read_tlv(tbs, pos, end)
        fields.append((tag, pos, start, stop))
        pos = stop
    if fields and fields[0][0] == 0xA0:  # version
        fields.pop(0)
    if len(fields) < 6 or [f[0] for f in fields[:6]] != [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]:
        raise DecodeError("TBSCertificate fields have the wrong types")
    serial, signature, issuer, validity, subject, spki = fields[:6]
    if serial[2] == serial[3]:
        raise DecodeError("empty serial number")
    t1, s1, e1 = read_tlv(tbs, validity[2], validity[3])
    t2, s2, e2 = read_tlv(tbs, e1, validity[3])
    extensions: list[tuple[bytes, bytes]] = []
    for tag, _, start, stop in fields[6:]:
        if tag == 0xA3:
            extensions += _split_extensions(tbs, start, stop)
    return _Tbs(
        signature=tbs[signature[1] : signature[3]],
        serial=tbs[serial[2] : serial[3]],
        issuer=tbs[issuer[1] : issuer[3]],
        not_before=(t1, tbs[s1:e1]),
        not_after=(t2, tbs[s2:e2]),
        subject=tbs[subject[1] : subject[3]],
        spki=tbs[spki[1] : spki[3]],
        extensions=extensions,
    )


def _split_extensions(tbs: bytes, pos: int, end: int) -> list[tuple[bytes, bytes]]:
    """The extensions as (OID TLV, value); one that is not shaped like an Extension is left out."""
    tag, pos, end = read_tlv(tbs, pos, end)
    if tag != 0x30:
        raise DecodeError("extensions are not a SEQUENCE")
    out = []
    while pos < end:
        _, ext, pos = read_tlv(tbs, pos, end)
        try:
            tag, _, oid_end = read_tlv(tbs, ext, pos)
            vtag, start, stop = read_tlv(tbs, oid_end, pos)
            if vtag == 0x01:  # critical
                vtag, start, stop = read_tlv(tbs, stop, pos)
        except DecodeError:
            continue
        if tag == 0x06 and vtag == 0x04:
            out.append((tbs[ext:oid_end], tbs[start:stop]))
    return out


def _as_certificate(tbs_der: bytes, tbs: _Tbs) -> bytes:
    """Wrap a bare TBS (a precert entry) so that cryptography can read its fields."""
    return _der(0x30, tbs_der + tbs.signature + b"\x03\x01\x00")


def _load(cert_der: bytes) -> x509.Certificate | None:
    try:
        with warnings.catch_warnings():  # e.g. negative serials: we read the serial ourselves
            warnings.simplefilter("ignore")
            return x509.load_der_x509_certificate(cert_der)
    except Exception:  # cryptography rejects many real certificates; the lean walk takes over
        return None


def _name(parsed: x509.Certificate | None, attr: str, raw: bytes) -> str:
    if parsed is not None:
        try:
            return getattr(parsed, attr).rfc4514_string()
        except Exception:  # fields are parsed lazily, so a bad name only fails here
            pass
    return _rfc4514(raw)


def _validity(parsed: x509.Certificate | None, attr: str, raw: tuple[int, bytes]) -> str | None:
    when: datetime | None = None
    if parsed is not None:
        try:
            when = getattr(parsed, attr)
        except Exception:  # as in _name
            when = None
    if when is None:
        when = _parse_time(*raw)
    return None if when is None else _iso(when)


def _iso(w: datetime) -> str:
    """ISO 8601 of a UTC time (strftime("%Y") does not zero-pad years before 1000)."""
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"


def _parse_time(tag: int, raw: bytes) -> datetime | None:
    """UTCTime or GeneralizedTime, leniently: seconds and zone may be missing, offsets are honoured."""
    pattern = {0x17: _UTC_TIME, 0x18: _GENERALIZED_TIME}.get(tag)
    m = pattern.fullmatch(raw.decode("ascii", errors="replace")) if pattern else None
    if m is None:
        return None
    year = int(m[1])
    if tag == 0x17:
        year += 2000 if year < 50 else 1900
    zone = m[7] or "Z"
    try:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) if zone != "Z" else timedelta()
        tz = timezone(-offset if zone[0] == "-" else offset)
        when = datetime(year, int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=tz)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):  # no such date, an offset of a day or more, year 0 in UTC
        return None


def _serial(content: bytes) -> str:
    if content[0] & 0x80:
        return "-" + format(-int.from_bytes(content, "big", signed=True), "x")
    if len(content) > 1 and content[0] == 0 and content[1] & 0x80:
        content = content[1:]  # the sign byte DER requires, not part of the number
    return content.hex()


def _is_ca(tbs: _Tbs) -> bool:
    """Whether a basicConstraints extension says cA (of contradicting duplicates, any will do)."""
    for oid, value in tbs.extensions:
        if oid == _BASIC_CONSTRAINTS_OID:
            try:
                tag, pos, end = read_tlv(value, 0, len(value))
                if tag == 0x30 and pos < end:
                    tag, start, stop = read_tlv(value, pos, end)
                    if tag == 0x01 and value[start:stop] != b"\x00":
                        return True
            except DecodeError:
                continue  # unreadable: browsers would not take it as a CA either
    return False


def _signed_by(cert_der: bytes, issuer_der: bytes) -> bool:
    """Whether ``issuer_der`` issued and signed ``cert_der`` (False for anything unparsable).

    Checked with the issuer's key directly, not ``verify_directly_issued_by``, so the SHA-1
    signatures of older real certificates count too: this is about who signed, not policy.
    """
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        issuer = x509.load_der_x509_certificate(issuer_der)
        if cert.issuer != issuer.subject:
            return False
        key, algo = issuer.public_key(), cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algo is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algo is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))
        else:
            cert.verify_directly_issued_by(issuer)
    except Exception:  # cryptography raises KeyError and more on hostile DER: not signed by it
        return False
    return True


def _spki_sha256(cert_der: bytes) -> str | None:
    try:
        return sha256(_split_tbs(_tbs_of(cert_der)).spki).hexdigest()
    except DecodeError:
        return None


def _rfc4514(name: bytes) -> str:
    """RFC 4514 string of a DER Name, written like cryptography's rfc4514_string()."""
    _, pos, end = read_tlv(name, 0, len(name))
    rdns: list[str] = []
    while pos < end:
        _, atv, pos = read_tlv(name, pos, end)
        parts: list[str] = []
        while atv < pos:
            _, start, atv = read_tlv(name, atv, pos)
            tag, oid_start, oid_end = read_tlv(name, start, atv)
            if tag != 0x06:
                raise DecodeError("attribute type is not an OID")
            oid = _oid(name[oid_start:oid_end])
            tag, vstart, vend = read_tlv(name, oid_end, atv)
            codec = _STRING_CODECS.get(tag)
            if codec is None:
                value = "#" + name[oid_end:vend].hex()
            else:
                value = _escape(name[vstart:vend].decode(codec, errors="replace"))
            parts.append(f"{_ATTR_NAMES.get(oid, oid)}={value}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


def _escape(value: str) -> str:
    for ch in '\\"+,;<>':
        value = value.replace(ch, "\\" + ch)
    value = value.replace("\0", "\\00")
    if value[:1] in ("#", " "):
        value = "\\" + value
    if value.endswith(" "):
        value = value[:-1] + "\\ "
    return value


def _oid(content: bytes) -> str:
    arcs: list[int] = []
    acc = 0
    for b in content:
        acc = acc << 7 | (b & 0x7F)
        if not b & 0x80:
            arcs.append(acc)
            acc = 0
    if not arcs or content[-1] & 0x80:
        raise DecodeError("malformed OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _der(tag: int, content: bytes) -> bytes:
    return der_header(tag, len(content)) + content
