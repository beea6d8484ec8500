"""The hot-path name extraction: certspotter's normalisation rules, and hostile input that must end
in DecodeError and nothing else."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Sequence

import pytest

from ctwatch.cttypes import PRECERT_ENTRY, X509_ENTRY, TimestampedEntry, merkle_tree_leaf
from ctwatch.errors import DecodeError
from ctwatch.identities import (
    UNPARSABLE_LABEL,
    cert_identities,
    leaf_identities,
    read_tlv,
    tbs_identities,
    to_unicode,
)

from .conftest import CTDATA

UTF8, PRINTABLE, BMP, INTEGER = 0x0C, 0x13, 0x1E, 0x02
DNS, IP, URI = 0x82, 0x87, 0x86


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = bytes((n,)) if n < 0x80 else bytes((0x80 | ((n.bit_length() + 7) // 8),)) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes((tag,)) + size + content


def seq(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


def tbs(cns: Sequence[tuple[int, bytes]] = (), sans: Sequence[tuple[int, bytes]] | None = None,
        san_tail: bytes = b"") -> bytes:
    """A TBSCertificate with the given subject CNs and SAN entries (the rest is filler)."""
    cn_oid = der(0x06, b"\x55\x04\x03")
    subject = seq(*(der(0x31, seq(cn_oid, der(tag, value))) for tag, value in cns))
    fields = [der(0xA0, der(INTEGER, b"\x02")), der(INTEGER, b"\x01"), seq(der(0x06, b"\x2a\x03")),
              seq(), seq(der(0x17, b"250101000000Z"), der(0x17, b"260101000000Z")), subject, seq()]
    if sans is not None:
        gns = seq(*(der(tag, value) for tag, value in sans)) + san_tail
        fields.append(der(0xA3, seq(seq(der(0x06, b"\x55\x1d\x11"), der(0x04, gns)))))
    return seq(*fields)


def names_of(value: bytes, tag: int = DNS) -> list[str]:
    return tbs_identities(tbs(sans=[(tag, value)]))


def real_leaves() -> list[bytes]:
    out = []
    for path in sorted((CTDATA / "rfc6962").glob("*/get-entr*.json")):
        doc = json.loads(path.read_text())
        out += [base64.b64decode(e["leaf_input"]) for e in doc.get("entries", [doc])]
    return out


LEAVES = real_leaves()


# --- normalisation (certspotter's identifiers.go) -------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (b"www.Example.COM", ["www.example.com"]),
    (b"example.com.", ["example.com"]),
    (b" example.com\t", ["example.com"]),
    (b"*.example.com", ["*.example.com"]),
    (b"", []),
    (b"...", []),
    (b"http://Example.com/login", ["example.com", "example.com/login"]),
    (b"https://example.com", ["example.com"]),
    (b"www.example.com\x00.evil.net", ["www.example.com", f"www.example.{UNPARSABLE_LABEL}.evil.net"]),
    (b"a\x01b.example.com", [f"{UNPARSABLE_LABEL}.example.com"]),
    (b"a\tb.example.com", ["a\tb.example.com"]),  # certspotter keeps tab and spaces in dNSNames
    (b"192.0.2.7", ["192.0.2.7"]),  # an IP address written as a name
    (b"2001:DB8:0::1", ["2001:db8::1"]),
    (b"b\xc3\xbccher.example", ["xn--bcher-kva.example", "xn--bcher-lka6y.example"]),  # UTF-8, then Latin-1
    (b"b\xfccher.example", ["xn--bcher-kva.example"]),  # not UTF-8: Latin-1 only
    (b"\xe2\x98\x83.example", ["xn--n3h.example", "xn--da5b0n.example"]),  # idna refuses both: punycode
    (b"B\xc3\x9cCHER.example", ["xn--bcher-kva.example", "xn--bcher-3ea01c.example"]),  # lower-cased first
])
def test_dns_name_normalisation(value: bytes, expected: list[str]) -> None:
    assert names_of(value) == expected


@pytest.mark.parametrize(("cns", "expected"), [
    ([(PRINTABLE, b"Example.COM")], ["example.com"]),
    ([(PRINTABLE, b"Example Organisation Ltd")], []),  # a CN with a space is not a name
    ([(UTF8, b"http://example.com/a b")], ["example.com"]),  # the part before "/" has no space
    ([(UTF8, "bücher.example".encode())], ["xn--bcher-kva.example"]),
    ([(UTF8, b"b\xfccher.example")], ["xn--bcher-kva.example"]),  # invalid UTF-8 read as Latin-1
    ([(BMP, "example.org".encode("utf-16-be"))], ["example.org"]),
    ([(PRINTABLE, b"198.51.100.1")], ["198.51.100.1"]),
    ([(PRINTABLE, b"a.example"), (PRINTABLE, b"b.example")], ["a.example", "b.example"]),
    ([(PRINTABLE, b"null.example\x00evil.example")], ["null.example", f"null.{UNPARSABLE_LABEL}.example"]),
])
def test_common_name_normalisation(cns: list[tuple[int, bytes]], expected: list[str]) -> None:
    assert tbs_identities(tbs(cns)) == expected


def test_ip_addresses_and_order() -> None:
    sans = [(IP, bytes([192, 0, 2, 1])), (IP, bytes.fromhex("20010db8000000000000000000000001")),
            (IP, bytes.fromhex("00000000000000000000ffffc6336401")),  # IPv4-mapped: printed as IPv4
            (IP, bytes(8)),  # address and mask, written by some CAs: skipped like certspotter does
            (URI, b"https://uri.example/"), (DNS, b"example.com"), (DNS, b"EXAMPLE.com")]
    assert tbs_identities(tbs([(PRINTABLE, b"example.com")], sans)) == [
        "example.com", "192.0.2.1", "2001:db8::1", "198.51.100.1"]


def test_san_trailing_bytes() -> None:
    assert tbs_identities(tbs(sans=[(DNS, b"a.example")], san_tail=b"\x00")) == ["a.example"]
    with pytest.raises(DecodeError):
        tbs_identities(tbs(sans=[(DNS, b"a.example")], san_tail=b"\x00\x00"))


def test_non_string_common_name_is_malformed() -> None:
    with pytest.raises(DecodeError, match="non-string"):
        tbs_identities(tbs([(INTEGER, b"\x01")]))


def test_to_unicode() -> None:
    assert to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert to_unicode("*.xn--80ato2c.cryptography") == "*.пыка.cryptography"
    assert to_unicode("xn--zz.example") == "xn--zz.example"  # not valid punycode: left alone
    assert to_unicode("xn--n3h.example") == "xn--n3h.example"  # valid punycode, not IDNA2008
    assert to_unicode(f"{UNPARSABLE_LABEL}.example") == f"{UNPARSABLE_LABEL}.example"


# --- the MerkleTreeLeaf wrapper ----------------------------------------------------------------------


def test_leaf_header() -> None:
    body = tbs([(PRINTABLE, b"example.com")])
    leaf_index = b"\x00\x00\x05\x00\x00\x00\x00\x07"  # static-ct-api entries carry this extension
    leaf = merkle_tree_leaf(TimestampedEntry(1234, PRECERT_ENTRY, body, bytes(32), leaf_index))
    assert leaf_identities(leaf) == (PRECERT_ENTRY, 1234, ["example.com"])
    bad = {
        "version": b"\x01" + leaf[1:],
        "leaf type": leaf[:1] + b"\x01" + leaf[2:],
        "entry type": leaf[:10] + b"\x00\x02" + leaf[12:],
        "trailing byte": leaf + b"\x00",
        "short extensions": leaf[:-1],
        "x509 body is a TBS": merkle_tree_leaf(TimestampedEntry(1, X509_ENTRY, body)),
    }
    for what, data in bad.items():
        with pytest.raises(DecodeError):
            leaf_identities(data)
            pytest.fail(what)


def test_read_tlv_rejects_what_could_mislead_a_walk() -> None:
    assert read_tlv(b"\x30\x81\x01\x00", 0, 4) == (0x30, 3, 4)
    assert read_tlv(b"\x04\x84\x00\x00\x00\x01\x00", 0, 7) == (0x04, 6, 7)
    for data in (b"\x30\x80\x00\x00", b"\x30\x85\x00\x00\x00\x00\x01", b"\x1f\x01\x00", b"\x30\x02\x00",
                 b"\x30", b"\x30\x82\x01"):
        with pytest.raises(DecodeError):
            read_tlv(data, 0, len(data))
    with pytest.raises(DecodeError):  # inside a shorter container
        read_tlv(b"\x30\x02\x00\x00", 0, 3)


# --- hostile input: nothing but DecodeError -----------------------------------------------------------


def _never_crashes(fn: Callable[[bytes], object], data: bytes) -> None:
    try:
        result = fn(data)
    except DecodeError:
        return
    assert isinstance(result, list | tuple)


def test_every_truncation_of_real_entries() -> None:
    for leaf in LEAVES[:4]:
        for cut in range(len(leaf)):
            with pytest.raises(DecodeError):
                leaf_identities(leaf[:cut])
            body = leaf[15:cut]
            _never_crashes(cert_identities, body)
            _never_crashes(tbs_identities, body)


def test_random_bytes_and_mutations() -> None:
    rng = random.Random(6962)
    for _ in range(3000):
        junk = rng.randbytes(rng.randrange(0, 200))
        for fn in (leaf_identities, cert_identities, tbs_identities):
            _never_crashes(fn, junk)
        # A plausible start makes the walk go deeper before it fails.
        _never_crashes(tbs_identities, b"\x30\x81\xc8" + junk)
    for leaf in LEAVES:
        for _ in range(300):
            mutated = bytearray(leaf)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(15, len(leaf))] = rng.randrange(256)
            _never_crashes(leaf_identities, bytes(mutated))


def test_huge_and_indefinite_lengths() -> None:
    headers = (b"\x30\x84\xff\xff\xff\xff", b"\x30\x80", b"\x30\x88" + b"\xff" * 8, b"\x30\x83\x10\x00\x00")
    for header in headers:
        with pytest.raises(DecodeError):
            cert_identities(header + bytes(16))
    deep = b"".join(b"\x30\x80" for _ in range(10_000))  # nesting is walked iteratively anyway
    with pytest.raises(DecodeError):
        tbs_identities(deep)
