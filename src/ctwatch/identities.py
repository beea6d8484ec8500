"""The names a certificate is valid for, pulled straight out of its DER: the monitor's hot path.

The monitor runs this on every entry of every log, so it walks the DER itself with offsets into
the leaf (no copies of the certificate, no ``cryptography`` objects) and reads only the subject
common names and the subjectAltName extensions. Names are normalised the way certspotter does,
so a watchlist matches what certspotter users expect:

* dNSNames, iPAddresses and subject CNs (a CN containing a space is not a name and is skipped);
* a leading ``http://``/``https://`` is stripped; the part before the first ``/`` and the part
  before a NUL are tried as well as the whole value;
* surrounding white space and trailing dots go, everything is lower-cased;
* non-ASCII bytes are read as UTF-8 (when valid) and as Latin-1, and each label is converted to
  its IDNA (punycode) form;
* a label with characters outside printable ASCII (and tab) becomes :data:`UNPARSABLE_LABEL`,
  which the watchlist treats as matching any label (fail-safe: nobody can hide a name behind a
  control character);
* IP addresses, also those written as text in a dNSName or CN, come out in ``ipaddress`` form
  (an IPv4-mapped IPv6 address as IPv4, as Go prints it);
* duplicates are dropped, first occurrence kept (CNs first, then SANs in certificate order).

Anything structurally wrong (truncation, indefinite or oversized lengths, wrong tags, trailing
bytes) raises :class:`DecodeError`; nothing else escapes.

There are two walks. The fast one takes the common certificate (plain names, short headers) and
gives up on anything else, which the general one, the reference, then reads; tests hold the fast
walk to the general one's answers. :func:`leaf_scan` also returns, from the same walk, the TBS
hash that pairs a final certificate with its precertificate.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from hashlib import sha256
from typing import Final

import idna

from .cttypes import PRECERT_ENTRY, X509_ENTRY
from .errors import DecodeError

UNPARSABLE_LABEL = "<unparsable>"
"""Stands in for a label that cannot be shown as ASCII (the same placeholder as certspotter)."""

_CN_OID: Final = b"\x06\x03\x55\x04\x03"  # 2.5.4.3 commonName, as a complete OID TLV
_SAN_OID: Final = b"\x06\x03\x55\x1d\x11"  # 2.5.29.17 subjectAltName
SCT_LIST_OID: Final = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x02"  # 1.3.6.1.4.1.11129.2.4.2
"""The embedded SCT list extension's OID TLV: what a precertificate's TBS lacks."""

# Bytes of a name that needs nothing but lower-casing and trailing-dot removal; anything else
# (and a final digit, which may make it an IP address) takes the full certspotter treatment.
_PLAIN: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.*_"
# Go's unicode.IsSpace, which certspotter's strings.TrimSpace uses.
_SPACE = (
    " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_INSANE = re.compile(r"[^\t\x20-\x7e]")

# Universal string types a CN may use. The 8-bit types are read as Latin-1 whatever they claim to
# hold, because CAs put anything in them.
_LATIN1_STRINGS: Final = frozenset((0x13, 0x14, 0x16, 0x1A))  # Printable, Teletex, IA5, Visible
_UTF8_STRING: Final = 0x0C
_UNIVERSAL_STRING: Final = 0x1C
_BMP_STRING: Final = 0x1E


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read the DER header at ``data[pos]`` inside ``data[:end]``: (tag, content start, content end).

    The one DER primitive of ctwatch's lean walks. Rejects what could make a walk misread or hang:
    multi-byte tags, indefinite lengths, lengths over 4 bytes and content running past ``end``.
    Non-minimal length encodings (BER, not DER) are accepted: they change nothing about the names.
    """
    try:
        tag = data[pos]
        length = data[pos + 1]
        if length < 0x80:
            start = pos + 2
        elif length == 0x82:
            length = data[pos + 2] << 8 | data[pos + 3]
            start = pos + 4
        elif length == 0x81:
            length = data[pos + 2]
            start = pos + 3
        elif 0x83 <= length <= 0x84:
            start = pos + 2 + (length & 0x7F)
            length = int.from_bytes(data[pos + 2 : start], "big")
        else:
            raise DecodeError(f"indefinite or oversized DER length at offset {pos}")
    except IndexError:
        raise DecodeError(f"truncated DER at offset {pos}") from None
    # Header bytes read past ``end`` (but inside ``data``) also make start + length > end.
    if start + length > end:
        raise DecodeError(f"DER element at offset {pos} runs past its container")
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"unsupported multi-byte DER tag at offset {pos}")
    return tag, start, start + length


def leaf_identities(leaf_input: bytes) -> tuple[int, int, list[str]]:
    """Decode a MerkleTreeLeaf and return (entry_type, timestamp, identities) in one pass."""
    entry_type, names, _ = leaf_scan(leaf_input, False)
    return entry_type, int.from_bytes(leaf_input[2:10], "big"), names


def leaf_scan(leaf_input: bytes, tbs_hash: bool) -> tuple[int, list[str], bytes | None]:
    """(entry_type, identities, TBS hash) of a MerkleTreeLeaf, from one walk of its DER.

    The TBS hash (computed only when ``tbs_hash``) pairs a certificate with its precertificate:
    the SHA-256 of a precert entry's TBS, or of an x509 entry's TBS without its SCT list (see
    :func:`ctwatch.entries.tbs_without_sct`). It is None for an x509 entry unusual enough to take
    the general walk: then ``tbs_without_sct`` says. The leaf is read as
    :func:`ctwatch.cttypes.parse_merkle_tree_leaf` reads it, inline so that the body is never copied.
    """
    size = len(leaf_input)
    if size < 15 or leaf_input[0] != 0 or leaf_input[1] != 0:
        raise DecodeError("not a version 0 timestamped_entry MerkleTreeLeaf")
    entry_type = leaf_input[10] << 8 | leaf_input[11]
    if entry_type == X509_ENTRY:
        start = 15
    elif entry_type == PRECERT_ENTRY:
        start = 47  # after the 32-byte issuer_key_hash
        if size < start:
            raise DecodeError("truncated precert entry")
    else:
        raise DecodeError(f"unknown entry_type {entry_type}")
    end = start + int.from_bytes(leaf_input[start - 3 : start], "big")
    if end + 2 > size or end + 2 + (leaf_input[end] << 8 | leaf_input[end + 1]) != size:
        raise DecodeError("MerkleTreeLeaf lengths do not add up")
    x509 = entry_type == X509_ENTRY
    walk = _fast_walk(leaf_input, start, end, x509)
    if walk is not None:
        names, layout = walk
    else:
        names = _cert_names(leaf_input, start, end) if x509 else _tbs_names(leaf_input, start, end)
        layout = None
    if not tbs_hash:
        return entry_type, names, None
    if not x509:  # a precert's TBS is hashed as logged, whatever it holds
        return entry_type, names, sha256(leaf_input[start:end]).digest()
    return entry_type, names, None if layout is None else _tbs_sha256(leaf_input, *layout)


def tbs_identities(tbs_der: bytes) -> list[str]:
    """Identities of a DER TBSCertificate (the body of a precert entry)."""
    walk = _fast_walk(tbs_der, 0, len(tbs_der), False)
    return _tbs_names(tbs_der, 0, len(tbs_der)) if walk is None else walk[0]


def cert_identities(cert_der: bytes) -> list[str]:
    """Identities of a DER certificate (the body of an x509 entry)."""
    walk = _fast_walk(cert_der, 0, len(cert_der), True)
    return _cert_names(cert_der, 0, len(cert_der)) if walk is None else walk[0]


def der_header(tag: int, length: int) -> bytes:
    """The DER tag and length bytes of an element of ``length`` content bytes (tag < 0x1F)."""
    if length < 0x80:
        return bytes((tag, length))
    if length < 0x100:  # the commonest long forms, without int.to_bytes
        return bytes((tag, 0x81, length))
    if length < 0x10000:
        return bytes((tag, 0x82, length >> 8, length & 0xFF))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size


def to_unicode(name: str) -> str:
    """Display form of an identity: each valid punycode label decoded, any other label left alone."""
    if "xn--" not in name:
        return name
    labels = name.split(".")
    for i, label in enumerate(labels):
        if label.startswith("xn--"):
            with contextlib.suppress(idna.IDNAError, UnicodeError):
                labels[i] = idna.decode(label)
    return ".".join(labels)


def ip_identity(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """How an IP address is written as an identity (and so in a watchlist): IPv4-mapped as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


# --- the fast walk ---------------------------------------------------------------------------------
# What nearly every logged certificate looks like, walked with the DER headers read inline (a call
# per header would cost more than the rest of the walk): one-, two- or three-byte lengths, short
# RDNs, plain subject CNs, the extensions as the last TBS field, subjectAltNames of short plain
# dNSNames only, at most one SCT list. On anything else the fast walk gives up (None) and the
# general walk below, the reference, decides; so the fast walk needs to be right only on what it
# accepts. An IndexError (a truncated leaf) is a give-up too.

_Layout = tuple[int, int, int, int, int, int, int]
_SKIPPED_FIELDS: Final = (0xA0, 0x02, 0x30, 0x30, 0x30)  # version, serialNumber, signature, issuer, validity
_PLAIN_CN_STRINGS: Final = _LATIN1_STRINGS | {_UTF8_STRING}
# The last byte of a name that _plain() would not take as it is: a dot or a digit (to be stripped,
# or maybe an IP address), or 0, which is the length byte itself when the name is empty.
_ODD_LAST: Final = b"\x00" b"0123456789."


def _fast_walk(data: bytes, pos: int, end: int, cert: bool) -> tuple[list[str], _Layout] | None:
    """(identities, layout for :func:`_tbs_sha256`) of a common certificate (``cert``) or TBS.

    Gives up (None) on anything the general walk, :func:`_cert_names` or :func:`_tbs_names`, must
    judge, and otherwise returns exactly their identities.
    """
    try:
        if cert:
            if data[pos] != 0x30:
                return None
            n = data[pos + 1]
            if n == 0x82:
                n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
            elif n == 0x81:
                n, pos = data[pos + 2], pos + 3
            elif n < 0x80:
                pos += 2
            else:
                return None
            if pos + n != end:
                return None
        tbs = pos
        if data[pos] != 0x30:
            return None
        n = data[pos + 1]
        if n == 0x82:
            n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
        elif n == 0x81:
            n, pos = data[pos + 2], pos + 3
        elif n < 0x80:
            pos += 2
        else:
            return None
        body = pos
        if pos + n > end or (pos + n != end and not cert):
            return None
        end = pos + n
        # Skipped fields, then the subject and the key. Positions only grow, so one bounds check
        # after the key covers every field; loops below rely on the same.
        for want in _SKIPPED_FIELDS if data[pos] == 0xA0 else _SKIPPED_FIELDS[1:]:
            if data[pos] != want:
                return None
            n = data[pos + 1]
            if n < 0x80:
                pos += 2 + n
            elif n == 0x82:
                pos += 4 + (data[pos + 2] << 8 | data[pos + 3])
            elif n == 0x81:
                pos += 3 + data[pos + 2]
            else:
                return None
        if data[pos] != 0x30:  # subject
            return None
        n = data[pos + 1]
        if n < 0x80:
            pos += 2
        elif n == 0x81:
            n, pos = data[pos + 2], pos + 3
        elif n == 0x82:
            n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
        else:
            return None
        subject, pos = pos, pos + n
        subject_end = pos
        if data[pos] != 0x30:  # subjectPublicKeyInfo
            return None
        n = data[pos + 1]
        if n == 0x82:
            pos += 4 + (data[pos + 2] << 8 | data[pos + 3])
        elif n == 0x81:
            pos += 3 + data[pos + 2]
        elif n < 0x80:
            pos += 2 + n
        else:
            return None
        if pos > end:
            return None
        raws: list[bytes] = []  # the CNs, then the dNSNames, as they are in the DER
        while subject < subject_end:  # RDNs
            if data[subject] != 0x31 or data[subject + 1] >= 0x80:
                return None
            atv, subject = subject + 2, subject + 2 + data[subject + 1]
            while atv < subject:
                if data[atv] != 0x30 or data[atv + 1] >= 0x80:
                    return None
                value, atv = atv + 2, atv + 2 + data[atv + 1]
                if data.startswith(_CN_OID, value, atv):
                    value += 5
                    n = data[value + 1]
                    if (data[value] not in _PLAIN_CN_STRINGS or n >= 0x80 or value + 2 + n > atv
                            or data[value + 1 + n] in _ODD_LAST):
                        return None
                    raws.append(data[value + 2 : value + 2 + n])
            if atv != subject:
                return None
        if subject != subject_end:
            return None
        ext_field = ext_list = sct = sct_end = end
        if pos < end:  # the extensions field, which must be the last
            ext_field = pos
            if data[pos] != 0xA3:
                return None
            n = data[pos + 1]
            if n == 0x82:
                n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
            elif n == 0x81:
                n, pos = data[pos + 2], pos + 3
            elif n < 0x80:
                pos += 2
            else:
                return None
            if pos + n != end or data[pos] != 0x30:
                return None
            n = data[pos + 1]
            if n == 0x82:
                n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
            elif n == 0x81:
                n, pos = data[pos + 2], pos + 3
            elif n < 0x80:
                pos += 2
            else:
                return None
            if pos + n != end:
                return None
            ext_list = pos
            while pos < end:
                ext = pos
                if data[pos] != 0x30:
                    return None
                n = data[pos + 1]
                if n < 0x80:
                    pos += 2
                elif n == 0x82:
                    n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
                elif n == 0x81:
                    n, pos = data[pos + 2], pos + 3
                else:
                    return None
                value, pos = pos, pos + n
                # The OID's fifth byte tells the two wanted extensions from most others cheaply.
                oid_byte = data[value + 4]
                if oid_byte == 0x11 and data.startswith(_SAN_OID, value, pos):
                    if not _fast_san(data, value + 5, pos, raws):
                        return None
                elif oid_byte == 0x01 and data.startswith(SCT_LIST_OID, value, pos):
                    if sct != sct_end:  # a second one
                        return None
                    sct, sct_end = ext, pos
            if pos != end:
                return None
        if not raws:
            return [], (tbs, body, end, ext_field, ext_list, sct, sct_end)
        joined = b"\n".join(raws)
        if len(joined.translate(None, _PLAIN)) != len(raws) - 1:  # more than the separators left
            return None
        names = joined.lower().decode("ascii").split("\n")
        return list(dict.fromkeys(names)), (tbs, body, end, ext_field, ext_list, sct, sct_end)
    except IndexError:
        return None


def _fast_san(data: bytes, pos: int, end: int, raws: list[bytes]) -> bool:
    """Append the dNSNames of the subjectAltName value ([critical,] extnValue) at ``data[pos:end]``
    to ``raws``; False (give up) unless it holds short dNSNames and nothing else."""
    if data[pos] == 0x01 and data[pos + 1] == 1:  # critical
        pos += 3
    if data[pos] != 0x04:
        return False
    n = data[pos + 1]
    if n == 0x82:
        n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
    elif n == 0x81:
        n, pos = data[pos + 2], pos + 3
    elif n < 0x80:
        pos += 2
    else:
        return False
    if pos + n != end or data[pos] != 0x30:
        return False
    n = data[pos + 1]
    if n == 0x82:
        n, pos = data[pos + 2] << 8 | data[pos + 3], pos + 4
    elif n == 0x81:
        n, pos = data[pos + 2], pos + 3
    elif n < 0x80:
        pos += 2
    else:
        return False
    if pos + n != end:
        return False
    while pos < end:
        n = data[pos + 1]
        if data[pos] != 0x82 or n >= 0x80 or data[pos + 1 + n] in _ODD_LAST:
            return False
        pos += 2 + n
        raws.append(data[pos - n : pos])
    return pos == end


def _tbs_sha256(data: bytes, tbs: int, body: int, end: int, ext_field: int, ext_list: int, sct: int,
                sct_end: int) -> bytes:
    """SHA-256 of the TBS at ``data[tbs:end]`` without the extension at ``data[sct:sct_end]``.

    The bytes are those of :func:`ctwatch.entries.tbs_without_sct` for a TBS the fast walk took:
    only the lengths of the TBS, of the extensions field and of its SEQUENCE change.
    """
    if sct == sct_end:
        return sha256(data[tbs:end]).digest()
    kept = (end - ext_list) - (sct_end - sct)
    if kept:
        inner = der_header(0x30, kept)
        field = der_header(0xA3, len(inner) + kept) + inner
    else:  # no extension left: the extensions field goes too
        field = b""
    head = der_header(0x30, ext_field - body + len(field) + kept)
    kept_before, kept_after = data[ext_list:sct], data[sct_end:end]
    return sha256(b"".join((head, data[body:ext_field], field, kept_before, kept_after))).digest()


# --- the general walk ---------------------------------------------------------------------------------


def _cert_names(data: bytes, pos: int, end: int) -> list[str]:
    tag, start, stop = read_tlv(data, pos, end)
    if tag != 0x30 or stop != end:
        raise DecodeError("certificate is not one DER SEQUENCE")
    tag, _, tbs_end = read_tlv(data, start, stop)
    if tag != 0x30:
        raise DecodeError("certificate does not start with a TBSCertificate")
    return _tbs_names(data, start, tbs_end)


def _tbs_names(data: bytes, pos: int, end: int) -> list[str]:
    tag, pos, stop = read_tlv(data, pos, end)
    if tag != 0x30 or stop != end:
        raise DecodeError("TBSCertificate is not one DER SEQUENCE")
    tag, _, pos = read_tlv(data, pos, end)
    if tag == 0xA0:  # version
        tag, _, pos = read_tlv(data, pos, end)
    t_sig, _, pos = read_tlv(data, pos, end)
    t_issuer, _, pos = read_tlv(data, pos, end)
    t_validity, _, pos = read_tlv(data, pos, end)
    t_subject, subject, pos = read_tlv(data, pos, end)
    t_key, _, key_end = read_tlv(data, pos, end)
    if tag != 0x02 or not t_sig == t_issuer == t_validity == t_subject == t_key == 0x30:
        raise DecodeError("TBSCertificate fields have the wrong types")
    names: dict[str, None] = {}  # an ordered set
    try:
        _subject_names(data, subject, pos, names)
        pos = key_end
        while pos < end:  # issuerUniqueID, subjectUniqueID, extensions
            tag, start, pos = read_tlv(data, pos, end)
            if tag == 0xA3:
                _extension_names(data, start, pos, names)
    except IndexError:
        # The inlined header reads below may index one byte past the buffer on truncated input.
        raise DecodeError("truncated DER in TBSCertificate") from None
    return list(names)


# The loops below inline read_tlv's common case (tag and a short length) because they run for
# every RDN, extension and SAN of every certificate; the general reader handles the rest.


def _subject_names(data: bytes, pos: int, end: int, names: dict[str, None]) -> None:
    while pos < end:
        n = data[pos + 1]
        if data[pos] == 0x31 and n < 0x80 and pos + 2 + n <= end:
            atv_pos, rdn_end = pos + 2, pos + 2 + n
        else:
            tag, atv_pos, rdn_end = read_tlv(data, pos, end)
            if tag != 0x31:
                raise DecodeError("RDN is not a SET")
        pos = rdn_end
        while atv_pos < rdn_end:
            n = data[atv_pos + 1]
            if data[atv_pos] == 0x30 and n < 0x80 and atv_pos + 2 + n <= rdn_end:
                atv, atv_pos = atv_pos + 2, atv_pos + 2 + n
            else:
                tag, atv, atv_pos = read_tlv(data, atv_pos, rdn_end)
                if tag != 0x30:
                    raise DecodeError("AttributeTypeAndValue is not a SEQUENCE")
            if data.startswith(_CN_OID, atv, atv_pos):
                tag, start, stop = read_tlv(data, atv + 5, atv_pos)
                _add_cn(tag, data[start:stop], names)


def _extension_names(data: bytes, pos: int, end: int, names: dict[str, None]) -> None:
    tag, pos, stop = read_tlv(data, pos, end)
    if tag != 0x30 or stop != end:
        raise DecodeError("extensions are not one SEQUENCE")
    while pos < end:
        n = data[pos + 1]
        if data[pos] == 0x30 and n < 0x80 and pos + 2 + n <= end:
            ext, pos = pos + 2, pos + 2 + n
        else:
            tag, ext, pos = read_tlv(data, pos, end)
            if tag != 0x30:
                raise DecodeError("extension is not a SEQUENCE")
        if data.startswith(_SAN_OID, ext, pos):
            _san_names(data, ext + 5, pos, names)


def _san_names(data: bytes, pos: int, end: int, names: dict[str, None]) -> None:
    tag, start, stop = read_tlv(data, pos, end)
    if tag == 0x01:  # critical
        tag, start, stop = read_tlv(data, stop, end)
    if tag != 0x04 or stop != end:
        raise DecodeError("malformed subjectAltName extension")
    tag, pos, end = read_tlv(data, start, stop)
    # certspotter tolerates exactly one stray zero byte after the SAN, a common CA error.
    if tag != 0x30 or not (end == stop or (end + 1 == stop and data[end] == 0)):
        raise DecodeError("malformed subjectAltName value")
    while pos < end:
        tag = data[pos]
        n = data[pos + 1]
        if n < 0x80 and tag & 0x1F != 0x1F and pos + 2 + n <= end:
            start, pos = pos + 2, pos + 2 + n
        else:
            tag, start, pos = read_tlv(data, pos, end)
        if tag == 0x82:  # dNSName
            raw = data[start:pos]
            plain = _plain(raw)
            if plain is not None:
                names[plain] = None
            else:
                _add_dns_name(raw, names)
        elif tag == 0x87 and pos - start in (4, 16):  # iPAddress; certspotter skips other sizes
            names[ip_identity(ipaddress.ip_address(data[start:pos]))] = None


def _plain(raw: bytes) -> str | None:
    """The name for the common case of an LDH name, or None when it needs the full treatment."""
    if raw.translate(None, _PLAIN) or raw[-1:].isdigit():
        return None
    return raw.rstrip(b".").lower().decode("ascii") or None


def _add_cn(tag: int, raw: bytes, names: dict[str, None]) -> None:
    if tag in _LATIN1_STRINGS or tag == _UTF8_STRING:
        plain = _plain(raw)
        if plain is not None:
            names[plain] = None
            return
    if tag in _LATIN1_STRINGS:
        value = raw.decode("latin-1")
    elif tag == _UTF8_STRING:
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    elif tag == _BMP_STRING:
        value = raw.decode("utf-16-be", errors="replace")
    elif tag == _UNIVERSAL_STRING:
        value = raw.decode("utf-32-be", errors="replace")
    else:
        raise DecodeError(f"subject CN has non-string tag 0x{tag:02x}")
    if value.startswith(("http://", "https://")):
        value = value.partition("//")[2]
    nul = value.find("\0")
    for part in (value[:nul], value) if nul >= 0 else (value,):
        slash = part.find("/")
        for cand in (part[:slash], part) if slash >= 0 else (part,):
            ip = _parse_ip(cand)
            if ip is not None:
                names[ip] = None
            elif " " not in cand:
                _add(_sanitize(cand), names)


def _add_dns_name(raw: bytes, names: dict[str, None]) -> None:
    """The full certspotter treatment of a dNSName that _plain() could not take."""
    if raw.startswith((b"http://", b"https://")):
        raw = raw.partition(b"//")[2]
    nul = raw.find(b"\0")
    for part in (raw[:nul], raw) if nul >= 0 else (raw,):
        slash = part.find(b"/")
        for cand in (part[:slash], part) if slash >= 0 else (part,):
            if cand.isascii():
                text = cand.decode("ascii")
                ip = _parse_ip(text)
                if ip is not None:
                    names[ip] = None
                else:
                    _add(_sanitize(text), names)
                continue
            # dNSName is an IA5String, but CAs put UTF-8 or Latin-1 in it: try both readings.
            with contextlib.suppress(UnicodeDecodeError):
                _add(_sanitize(cand.decode("utf-8")), names)
            _add(_sanitize(cand.decode("latin-1")), names)


def _add(name: str, names: dict[str, None]) -> None:
    if name:
        names[name] = None


def _parse_ip(text: str) -> str | None:
    # Cheap test first: a failed ip_address() costs more than everything else about a name.
    if not (text[-1:].isdigit() or ":" in text) or "%" in text:
        return None
    try:
        return ip_identity(ipaddress.ip_address(text))
    except ValueError:
        return None


def _sanitize(value: str) -> str:
    """Trim, lower-case and make every label printable ASCII (punycode or the placeholder)."""
    value = value.strip(_SPACE).rstrip(".").lower()
    if value.isascii():
        if value.isprintable():
            return value
        return ".".join(UNPARSABLE_LABEL if _INSANE.search(lb) else lb for lb in value.split("."))
    return ".".join(_ascii_label(lb) for lb in value.split("."))


def _ascii_label(label: str) -> str:
    if not label.isascii():
        try:
            label = idna.encode(label, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            # idna refuses labels that browsers refuse too, but the owner of the rest of the name
            # still wants to hear about them: fall back to plain punycode.
            label = "xn--" + label.encode("punycode").decode("ascii")
    return UNPARSABLE_LABEL if _INSANE.search(label) else label
