"""The parse stage over the real data in tests/data/ctdata: every logged entry and every certificate
gives the names, types, timestamps and hashes that cryptography and the README say it should."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import random
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ctwatch.cttypes import (
    PRECERT_ENTRY,
    X509_ENTRY,
    Reader,
    TimestampedEntry,
    merkle_tree_leaf,
    parse_extra_data,
    parse_merkle_tree_leaf,
)
from ctwatch.entries import _rfc4514, cert_info, tbs_without_sct
from ctwatch.errors import DecodeError
from ctwatch.identities import cert_identities, leaf_identities, tbs_identities, to_unicode

from .conftest import CTDATA

CERTS = CTDATA / "certs"
MANIFEST = json.loads((CERTS / "MANIFEST.json").read_text())
ENTRY_FILES = sorted((CTDATA / "rfc6962").glob("*/get-entr*.json"))
SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

# Some real certificates have negative serials, which cryptography still reads with a warning.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


def load_ders(path: Path) -> list[bytes]:
    """Every certificate in a PEM (with or without text around it) or DER file."""
    data = path.read_bytes()
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", data, re.S)
    return [base64.b64decode(b"".join(b.split())) for b in blocks] if blocks else [data]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def real_entries() -> list[tuple[str, bytes, bytes]]:
    out = []
    for path in ENTRY_FILES:
        doc = json.loads(path.read_text())
        for i, e in enumerate(doc.get("entries", [doc])):
            out.append((f"{path.parent.name}/{path.name}#{i}", base64.b64decode(e["leaf_input"]),
                        base64.b64decode(e["extra_data"])))
    return out


ENTRIES = real_entries()


def oracle_names(cert: x509.Certificate) -> list[str]:
    """certspotter's identities of a plain-ASCII certificate, computed from cryptography's view."""
    names = [cn.value.lower().rstrip(".") for cn in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
             if isinstance(cn.value, str) and " " not in cn.value]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    for gn in san or ():
        if isinstance(gn, x509.DNSName):
            names.append(gn.value.lower().rstrip("."))
        elif isinstance(gn, x509.IPAddress) and not isinstance(gn.value, ipaddress.IPv4Network |
                                                                   ipaddress.IPv6Network):
            names.append(str(gn.value))  # not the 8- or 32-byte "networks" some CAs wrote
    return list(dict.fromkeys(n for n in names if n))


def manifest_cert(record: dict[str, object]) -> bytes:
    return load_ders(CERTS / str(record["file"]))[int(str(record["index"]))]


# --- real log entries ----------------------------------------------------------------------------


def test_there_are_real_entries_of_both_types() -> None:
    types = [leaf_identities(leaf)[0] for _, leaf, _ in ENTRIES]
    assert types.count(X509_ENTRY) >= 6 and types.count(PRECERT_ENTRY) >= 2


@pytest.mark.parametrize(("name", "leaf", "extra"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_real_entry_identities_match_cryptography(name: str, leaf: bytes, extra: bytes) -> None:
    entry = parse_merkle_tree_leaf(leaf)
    entry_type, timestamp, names = leaf_identities(leaf)
    assert (entry_type, timestamp) == (entry.entry_type, entry.timestamp)
    precert, _ = parse_extra_data(entry_type, extra)
    # A precert entry's TBS carries the same names as the precertificate cryptography can read.
    oracle = x509.load_der_x509_certificate(precert if precert is not None else entry.body)
    assert names == oracle_names(oracle)
    body_names = tbs_identities(entry.body) if entry_type == PRECERT_ENTRY else cert_identities(entry.body)
    assert body_names == names


def test_readme_facts_about_the_real_entries() -> None:
    by_name = {name: leaf_identities(leaf) for name, leaf, _ in ENTRIES}
    argon = by_name["argon2025h2/get-entries_912557348.json#0"]
    assert argon[:2] == (PRECERT_ENTRY, 1748856933195)
    assert argon[2][0] == "*.google.com" and len(argon[2]) == 137
    icarus = by_name["icarus/get-entry-and-proof_120000000_129721434.json#0"]
    assert icarus[0] == X509_ENTRY and "gem-jewelers.com" in icarus[2]
    assert by_name["ctgo-scanner-test/get-entries_0_3.json#0"][2] == ["mail.google.com"]
    assert by_name["ctgo-client-test/get-entries_precert_and_x509.json#0"][0] == PRECERT_ENTRY
    assert by_name["ctgo-client-test/get-entries_precert_and_x509.json#1"][0] == X509_ENTRY


@pytest.mark.parametrize(("name", "leaf", "extra"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_real_entry_cert_info(name: str, leaf: bytes, extra: bytes) -> None:
    entry = parse_merkle_tree_leaf(leaf)
    precert, chain = parse_extra_data(entry.entry_type, extra)
    info = cert_info(leaf, precert, chain)
    crypto = x509.load_der_x509_certificate(precert if precert is not None else entry.body)
    assert info.timestamp == entry.timestamp
    assert info.names == leaf_identities(leaf)[2] and info.names_unicode == info.names
    assert info.subject == crypto.subject.rfc4514_string()
    assert int(info.serial, 16) == crypto.serial_number
    assert info.not_before == crypto.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info.not_after == crypto.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info.issuer_spki_sha256 == spki_sha256(x509.load_der_x509_certificate(chain[0]))
    assert info.is_ca is False
    if entry.entry_type == PRECERT_ENTRY:
        assert precert is not None and entry.issuer_key_hash is not None
        assert info.entry_type == "precert"
        assert info.issuer_spki_sha256 == entry.issuer_key_hash.hex()
        assert info.cert_sha256 == hashlib.sha256(precert).hexdigest()
        assert info.tbs_sha256 == hashlib.sha256(entry.body).hexdigest()
        assert info.issuer == crypto.issuer.rfc4514_string()
    else:
        assert info.entry_type == "x509"
        assert info.cert_sha256 == hashlib.sha256(entry.body).hexdigest()
        assert info.pubkey_sha256 == spki_sha256(crypto)
    assert json.loads(json.dumps(info.to_json()))["tbs_sha256"] == info.tbs_sha256


def test_argon_precert_pairs_with_its_final_certificate() -> None:
    (_, leaf, extra), = [e for e in ENTRIES if e[0].startswith("argon2025h2")]
    precert, chain = parse_extra_data(PRECERT_ENTRY, extra)
    info = cert_info(leaf, precert, chain)
    final = load_ders(CERTS / "luct" / "google-chain.pem")[0]
    assert info.tbs_sha256 == hashlib.sha256(tbs_without_sct(final)).hexdigest()
    tbs_precert = x509.load_der_x509_certificate(final).tbs_precertificate_bytes
    assert info.tbs_sha256 == hashlib.sha256(tbs_precert).hexdigest()
    final_leaf = merkle_tree_leaf(TimestampedEntry(1, X509_ENTRY, final))
    final_info = cert_info(final_leaf, None, chain)
    assert final_info.tbs_sha256 == info.tbs_sha256
    assert final_info.names == info.names and final_info.issuer_spki_sha256 == info.issuer_spki_sha256


def test_cryptography_vector_precert_tbs() -> None:
    vectors = CERTS / "cryptography_vectors" / "x509"
    (cert,) = load_ders(vectors / "cryptography-scts.pem")
    assert tbs_without_sct(cert) == (vectors / "cryptography-scts-tbs-precert.der").read_bytes()


def test_tbs_without_sct_is_identity_without_scts() -> None:
    (cert,) = load_ders(CERTS / "ct-python-testdata" / "v1_cert.pem")
    tbs = x509.load_der_x509_certificate(cert).tbs_certificate_bytes
    assert tbs_without_sct(cert) == tbs


def _builder(key: ec.EllipticCurvePrivateKey, subject: str, issuer: str) -> x509.CertificateBuilder:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(0x1234)
            .not_valid_before(when).not_valid_after(when + dt.timedelta(days=90)))


def test_tbs_without_sct_drops_an_emptied_extensions_field() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sct = x509.UnrecognizedExtension(SCT_LIST, b"\x04\x02\x00\x00")
    san = x509.SubjectAlternativeName([x509.DNSName("example.com")])

    def cert(*extensions: x509.ExtensionType) -> x509.Certificate:
        builder = _builder(key, "example.com", "CA")
        for ext in extensions:
            builder = builder.add_extension(ext, critical=False)
        return builder.sign(key, hashes.SHA256())

    assert tbs_without_sct(der(cert(sct))) == cert().tbs_certificate_bytes
    assert tbs_without_sct(der(cert(sct, san))) == cert(san).tbs_certificate_bytes
    assert cert(sct, san).tbs_precertificate_bytes == cert(san).tbs_certificate_bytes


def test_issuer_comes_from_the_tree_not_from_extra_data() -> None:
    """A lying log can send any chain in extra_data; the issuer must come from what it signed."""
    ca_key, psc_key, leaf_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = _builder(ca_key, "CA", "CA").add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    psc = (_builder(psc_key, "PSC", "CA").add_extension(
        x509.ExtendedKeyUsage([ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    precert = _builder(leaf_key, "example.com", "PSC").sign(psc_key, hashes.SHA256())
    # A precert signed by a Precertificate Signing Certificate: issuer_key_hash names the real CA.
    ikh = bytes.fromhex(spki_sha256(ca))
    leaf = merkle_tree_leaf(TimestampedEntry(7, PRECERT_ENTRY, precert.tbs_certificate_bytes, ikh))
    rogue = _builder(rogue_key, "Rogue", "Rogue").sign(rogue_key, hashes.SHA256())
    for chain in ([der(psc), der(ca)], [der(psc)], [der(rogue)], []):
        assert cert_info(leaf, der(precert), chain).issuer_spki_sha256 == spki_sha256(ca)
    # x509: chain[0] counts only if it signed the certificate.
    cert = _builder(leaf_key, "example.com", "CA").sign(ca_key, hashes.SHA256())
    x509_leaf = merkle_tree_leaf(TimestampedEntry(7, X509_ENTRY, der(cert)))
    assert cert_info(x509_leaf, None, [der(ca)]).issuer_spki_sha256 == spki_sha256(ca)
    forged = _builder(rogue_key, "CA", "CA").sign(rogue_key, hashes.SHA256())  # same DN, other key
    assert cert_info(x509_leaf, None, [der(forged)]).issuer_spki_sha256 is None
    assert cert_info(x509_leaf, None, []).issuer_spki_sha256 is None
    assert cert_info(merkle_tree_leaf(TimestampedEntry(7, X509_ENTRY, der(ca))), None, []).is_ca is True


# --- real tiles: a thousand modern precertificates ------------------------------------------------


def tile_entries() -> list[tuple[bytes, bytes]]:
    """(MerkleTreeLeaf, pre_certificate) for every entry of the full Navigli data tiles."""
    out = []
    for tile in sorted((CTDATA / "static-ct" / "navigli2025h2" / "tile" / "data").glob("00?")):
        r = Reader(tile.read_bytes())
        while not r.done():
            entry = TimestampedEntry.read(r)
            precert = r.vec(3) if entry.entry_type == PRECERT_ENTRY else b""
            r.vec(2)  # issuer fingerprints
            out.append((merkle_tree_leaf(entry), precert))
    return out


def test_tile_precerts_match_cryptography() -> None:
    entries = tile_entries()
    assert len(entries) == 1024
    for leaf, precert in entries:
        assert leaf_identities(leaf)[2] == oracle_names(x509.load_der_x509_certificate(precert))


# --- the certificates of the manifest ---------------------------------------------------------------

PARSED = [r for r in MANIFEST if "sha256" in r]
UNPARSED = [r for r in MANIFEST if "parse_error" in r]


def _rid(r: dict[str, object]) -> str:
    return f"{r['file']}#{r['index']}"


def _is_plain(name: str) -> bool:
    return name.isascii() and name.isprintable()


@pytest.mark.parametrize("record", [r for r in PARSED if "san_dns" in r], ids=_rid)
def test_manifest_san_dns_names(record: dict[str, object]) -> None:
    der = manifest_cert(record)
    assert hashlib.sha256(der).hexdigest() == record["sha256"]
    names = cert_identities(der)
    crypto = x509.load_der_x509_certificate(der)
    sans = crypto.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert sans[: len(record["san_dns"])] == record["san_dns"]  # type: ignore[arg-type]
    assert len(sans) == record["san_dns_count"]
    plain = [n.lower().rstrip(".") for n in sans if _is_plain(n)]
    assert set(plain) <= set(names)
    if len(plain) == len(sans):  # UTF-8 and NUL names are checked by the tests at the end
        assert names == oracle_names(crypto)


@pytest.mark.parametrize("record", PARSED, ids=_rid)
def test_manifest_certs_agree_with_cryptography(record: dict[str, object]) -> None:
    der = manifest_cert(record)
    crypto = x509.load_der_x509_certificate(der)
    names = cert_identities(der)
    assert all(n and n.isascii() and n.isprintable() and n == n.lower() for n in names)
    info = cert_info(merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, der)), None, [])
    assert info.names == names
    assert int(info.serial, 16) == crypto.serial_number
    assert info.not_before == crypto.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The lean DN writer (used when cryptography gives up) writes what cryptography writes.
    for attr in ("subject", "issuer"):
        try:
            expected = getattr(crypto, attr).rfc4514_string()
        except ValueError:
            continue
        assert getattr(info, attr) == expected
        assert _rfc4514(getattr(crypto, attr).public_bytes()) == expected


@pytest.mark.parametrize("record", UNPARSED, ids=_rid)
def test_malformed_manifest_inputs_never_crash(record: dict[str, object]) -> None:
    data = manifest_cert(record)
    for parse in (cert_identities, tbs_identities, tbs_without_sct):
        try:
            result = parse(data)
        except DecodeError:
            continue
        assert isinstance(result, list | bytes)
    try:
        info = cert_info(merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, data)), None, [data])
    except DecodeError:
        return
    assert info.subject and info.serial


def test_mutated_entries_give_cert_info_or_decode_error() -> None:
    rng = random.Random(9162)
    for _, leaf, extra in ENTRIES:
        entry = parse_merkle_tree_leaf(leaf)
        precert, chain = parse_extra_data(entry.entry_type, extra)
        described = 0
        for _ in range(60):
            mutated = bytearray(leaf)
            for _ in range(rng.randrange(1, 3)):
                mutated[rng.randrange(15, len(leaf) - 2)] = rng.randrange(256)
            try:
                info = cert_info(bytes(mutated), precert, [bytes(c[: rng.randrange(len(c))]) for c in chain])
            except DecodeError:
                continue
            described += 1
            if entry.entry_type == PRECERT_ENTRY:  # the issuer is the (mutated) leaf's issuer_key_hash
                assert info.issuer_spki_sha256 == bytes(mutated)[12:44].hex()
            else:  # a truncated chain cannot have signed the certificate
                assert info.issuer_spki_sha256 is None
        assert described > 0


def test_certs_cryptography_rejects_still_get_described() -> None:
    def info(name: str) -> dict[str, object]:
        (der,) = load_ders(CERTS / "ct-python-testdata" / name)
        return cert_info(merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, der)), None, []).to_json()

    march = info("marchnetworks_com.pem")  # UTCTime without seconds
    assert (march["not_before"], march["not_after"]) == ("2000-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    promise = info("promise_com.pem")  # UTCTime with a -1200 offset
    assert promise["not_before"] == "2011-06-30T03:32:48Z"
    assert promise["serial"] == "210000015535c43920110629153246"
    assert info("negative_serial.pem")["serial"].startswith("-")  # type: ignore[union-attr]
    assert info("matrixssl_sample.pem")["serial"] == "00"
    assert "," in str(info("cert_bad_utf8_subject.pem")["subject"])
    with pytest.raises(DecodeError):
        info("asn1_indefinite_length_encoding.pem")


# --- names that need care ----------------------------------------------------------------------------


def test_idn_certificates() -> None:
    vectors = CERTS / "cryptography_vectors" / "x509"
    (der,) = load_ders(vectors / "custom" / "san_idna_names.pem")
    assert cert_identities(der) == ["xn--80ato2c.cryptography"]
    assert to_unicode("xn--80ato2c.cryptography") == "пыка.cryptography"
    (der,) = load_ders(vectors / "custom" / "san_wildcard_idna.pem")
    assert "*.xn--80ato2c.cryptography" in cert_identities(der)
    (der,) = load_ders(vectors / "utf8-dnsname.pem")  # UTF-8 in dNSNames: tried as UTF-8 and Latin-1
    names = cert_identities(der)
    assert names[:4] == ["partner.biztositas.hu", "biztositas.hu", "*.biztositas.hu", "xn--biztosts-fza2j.hu"]
    assert "*.xn--biztosts-fza2j.hu" in names
    assert to_unicode("*.xn--biztosts-fza2j.hu") == "*.biztosítás.hu"
    info = cert_info(merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, der)), None, [])
    assert "biztosítás.hu" in info.names_unicode
    (der,) = load_ders(vectors / "tls-feature-ocsp-staple.pem")  # an emoji label: valid punycode,
    assert "xn--lv8haa.scotthelme.co.uk" in cert_identities(der)  # but not IDNA2008, so shown as is
    assert to_unicode("xn--lv8haa.scotthelme.co.uk") == "xn--lv8haa.scotthelme.co.uk"


def test_null_characters_give_both_forms() -> None:
    (der,) = load_ders(CERTS / "ct-python-testdata" / "null_chars.pem")
    assert cert_identities(der) == [
        "null.python.org", "null.python.<unparsable>.org",  # CN=null.python.org\0example.org
        "altnull.python.org", "altnull.python.<unparsable>.com",  # DNS:altnull.python.org\0example.com
        "192.0.2.1", "2001:db8::1",
    ]


def test_hostile_issuer_name_with_a_chain_is_no_crash() -> None:
    """cryptography raises KeyError on an unknown string tag; cert_info must still describe it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (CTDATA / "certs" / "x509-limbo-online" / "google.com.chain.pem").read_bytes()
    certs = x509.load_pem_x509_certificates(pem)
    leaf = bytearray(certs[0].public_bytes(Encoding.DER))
    at = leaf.find(b"Google Trust Services")
    leaf[at - 2] = 0x15  # the issuer O's string tag becomes one no library knows
    chain = [c.public_bytes(Encoding.DER) for c in certs[1:]]
    info = cert_info(merkle_tree_leaf(TimestampedEntry(1, X509_ENTRY, bytes(leaf))), None, chain)
    assert info.issuer_spki_sha256 is None  # the tampered certificate was not signed by chain[0]
    assert info.names
