"""The scan hot path's fast walks give exactly what the general walks give, or give up.

``identities._fast_walk`` takes the common certificate in one inline walk; the general walks
(``_cert_names``/``_tbs_names`` for the names, ``entries.tbs_without_sct`` for the TBS hash) are
the reference, proven by test_identities.py and test_entries_conformance.py. Here: on every real
certificate, on the test-log corpus, on crafted odd certificates and on mutated and truncated
ones, ``leaf_scan`` gives the reference's answer (names and TBS hash, or DecodeError), and the fast
walk takes the certificates it was made for. Likewise ``Watchlist.match``'s inline walk against
the general frontier walk.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ctwatch import scan as scan_module
from ctwatch.cttypes import (
    PRECERT_ENTRY,
    X509_ENTRY,
    Reader,
    TimestampedEntry,
    merkle_tree_leaf,
    parse_merkle_tree_leaf,
)
from ctwatch.entries import tbs_without_sct
from ctwatch.errors import DecodeError
from ctwatch.identities import (
    SCT_LIST_OID,
    _cert_names,
    _fast_walk,
    _tbs_names,
    _tbs_sha256,
    leaf_identities,
    leaf_scan,
    read_tlv,
)
from ctwatch.match.rules import build_rules
from ctwatch.match.watchlist import Watchlist
from ctwatch.nameblocks import read_block
from ctwatch.scan import Scanner, ScanResult, leaf_tbs_sha256, scan_entries
from ctwatch.sources.base import RawEntries
from ctwatch.testlog import Store

from .conftest import CTDATA

PRINTABLE, UTF8, BMP = 0x13, 0x0C, 0x1E
DNS, IP, URI = 0x82, 0x87, 0x86
CN_OID, O_OID, SAN_OID = b"\x06\x03\x55\x04\x03", b"\x06\x03\x55\x04\x0a", b"\x06\x03\x55\x1d\x11"


# --- the reference --------------------------------------------------------------------------------


def reference(leaf: bytes) -> tuple[int, list[str], bytes | None]:
    """(entry type, names, TBS hash) from the general walks; the hash is None where
    tbs_without_sct rejects a body whose names could be read. Raises DecodeError as they do."""
    entry = parse_merkle_tree_leaf(leaf)
    body = entry.body
    if entry.entry_type == X509_ENTRY:
        names = _cert_names(body, 0, len(body))
        try:
            tbs = tbs_without_sct(body)
        except DecodeError:
            return X509_ENTRY, names, None
        return X509_ENTRY, names, hashlib.sha256(tbs).digest()
    return PRECERT_ENTRY, _tbs_names(body, 0, len(body)), hashlib.sha256(body).digest()


def fast_takes(leaf: bytes) -> bool:
    x509 = leaf[11] == X509_ENTRY
    start = 15 if x509 else 47
    return _fast_walk(leaf, start, start + int.from_bytes(leaf[start - 3 : start], "big"), x509) is not None


def check(leaf: bytes) -> None:
    """leaf_scan gives the reference's answer: the same names and, unless it defers to
    tbs_without_sct (None), the same TBS hash; DecodeError exactly when the reference raises it."""
    try:
        expected = reference(leaf)
    except DecodeError:
        with pytest.raises(DecodeError):
            leaf_scan(leaf, True)
        return
    etype, names, digest = leaf_scan(leaf, True)
    assert (etype, names) == expected[:2]
    assert digest is None or digest == expected[2]
    if fast_takes(leaf):
        assert digest is not None and digest == expected[2]
    assert leaf_scan(leaf, False) == (etype, names, None)
    assert leaf_identities(leaf)[2] == names


# --- the data ---------------------------------------------------------------------------------------


def real_leaves() -> list[bytes]:
    """Every real logged entry in ctdata (get-entries responses and the Navigli tiles), and every
    certificate of the manifest as an x509 entry."""
    out = []
    for path in sorted((CTDATA / "rfc6962").glob("*/get-entr*.json")):
        doc = json.loads(path.read_text())
        out += [base64.b64decode(e["leaf_input"]) for e in doc.get("entries", [doc])]
    for tile in sorted((CTDATA / "static-ct" / "navigli2025h2" / "tile" / "data").glob("00?")):
        r = Reader(tile.read_bytes())
        while not r.done():
            entry = TimestampedEntry.read(r)
            if entry.entry_type == PRECERT_ENTRY:
                r.vec(3)  # pre_certificate
            r.vec(2)  # issuer fingerprints
            out.append(merkle_tree_leaf(entry))
    for record in json.loads((CTDATA / "certs" / "MANIFEST.json").read_text()):
        data = (CTDATA / "certs" / record["file"]).read_bytes()
        blocks = data.split(b"-----BEGIN CERTIFICATE-----")[1:]
        ders = [base64.b64decode(b"".join(b.split(b"-----END")[0].split())) for b in blocks] or [data]
        out.append(merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, ders[int(record["index"])])))
    return out


REAL = real_leaves()


@pytest.fixture(scope="module")
def corpus(small_corpus: Path) -> list[bytes]:
    return Store.open(small_corpus).leaf_inputs


def der(tag: int, content: bytes, long_form: bool = False) -> bytes:
    n = len(content)
    if n < 0x80 and not long_form:
        return bytes((tag, n)) + content
    size = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def seq(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


def rdn(*atvs: tuple[bytes, int, bytes]) -> bytes:
    return der(0x31, b"".join(seq(oid, der(tag, value)) for oid, tag, value in atvs))


def san(*names: tuple[int, bytes], critical: bool = False, tail: bytes = b"") -> bytes:
    value = seq(*(der(tag, v) for tag, v in names)) + tail
    return seq(SAN_OID, *([b"\x01\x01\xff"] if critical else []), der(0x04, value))


SCT_EXT = seq(SCT_LIST_OID, der(0x04, der(0x04, bytes(range(120)))))
OTHER_EXT = seq(b"\x06\x03\x55\x1d\x13", der(0x04, seq()))  # basicConstraints


def make_tbs(rdns: list[bytes], extensions: list[bytes] | None, between: bytes = b"",
             long_form: bool = False) -> bytes:
    fields = [der(0xA0, der(0x02, b"\x02")), der(0x02, b"\x01\x02"), seq(der(0x06, b"\x2a\x03")),
              seq(rdn((CN_OID, PRINTABLE, b"CA"))),
              seq(der(0x17, b"250101000000Z"), der(0x17, b"260101000000Z")),
              der(0x30, b"".join(rdns), long_form), seq(seq(der(0x06, b"\x2a\x03")), der(0x03, b"\x00\x04")),
              between]
    if extensions is not None:
        fields.append(der(0xA3, der(0x30, b"".join(extensions), long_form), long_form))
    return der(0x30, b"".join(fields), long_form)


def as_leaves(tbs: bytes) -> Iterator[bytes]:
    """The TBS as a precert entry, and wrapped in a certificate as an x509 entry."""
    yield merkle_tree_leaf(TimestampedEntry(1, PRECERT_ENTRY, tbs, bytes(32)))
    cert = seq(tbs, seq(der(0x06, b"\x2a\x03")), der(0x03, b"\x00" + bytes(64)))
    yield merkle_tree_leaf(TimestampedEntry(1, X509_ENTRY, cert))


def cn(value: bytes, tag: int = PRINTABLE) -> bytes:
    return rdn((CN_OID, tag, value))


# --- agreement on real and generated certificates ---------------------------------------------------


def test_real_entries_and_certificates() -> None:
    taken = 0
    for leaf in REAL:
        check(leaf)
        taken += fast_takes(leaf)
    assert len(REAL) > 1100
    assert taken > 0.9 * len(REAL)  # the fast walk is what runs


def test_test_log_corpus(corpus: list[bytes]) -> None:
    for leaf in corpus:
        check(leaf)
    assert all(fast_takes(leaf) for leaf in corpus)
    # Final certificates carry SCT lists, and the fast TBS hash pairs each with its precertificate.
    precert_hashes = {leaf_scan(leaf, True)[2] for leaf in corpus if leaf[11] == PRECERT_ENTRY}
    finals = [leaf for leaf in corpus if leaf[11] == X509_ENTRY]
    assert finals and all(leaf_scan(leaf, True)[2] in precert_hashes for leaf in finals)


# --- crafted certificates: each taken by the fast walk, or left to the general one -----------------

TAKEN = {
    "plain": make_tbs([cn(b"www.example.com")], [OTHER_EXT, san((DNS, b"a.example"), (DNS, b"b.example"))]),
    "upper case": make_tbs([cn(b"WWW.Example.COM", UTF8)], [san((DNS, b"A.EXAMPLE.com"))]),
    "wildcards and underscores": make_tbs([], [san((DNS, b"*.example.com"), (DNS, b"_dmarc.ex-ample.org"))]),
    "duplicates": make_tbs([cn(b"a.example"), cn(b"A.example")],
                           [san((DNS, b"b.example"), (DNS, b"a.example"), (DNS, b"b.example"))]),
    "several CNs and RDNs": make_tbs([rdn((O_OID, PRINTABLE, b"Org Name"), (CN_OID, PRINTABLE, b"x.example")),
                                      cn(b"y.example", UTF8)], None),
    "critical SAN": make_tbs([], [san((DNS, b"a.example"), critical=True)]),
    "two SAN extensions": make_tbs([], [san((DNS, b"a.example")), OTHER_EXT, san((DNS, b"b.example"))]),
    "no names": make_tbs([], [OTHER_EXT]),
    "no extensions": make_tbs([cn(b"a.example")], None),
    "empty extensions": make_tbs([cn(b"a.example")], []),
    "long-form lengths": make_tbs([cn(b"a.example")], [san((DNS, b"b.example"))], long_form=True),
    "an SCT list": make_tbs([], [OTHER_EXT, SCT_EXT, san((DNS, b"a.example"))]),
    "only an SCT list": make_tbs([cn(b"a.example")], [SCT_EXT]),
    "a long SAN": make_tbs([], [san(*((DNS, b"n%d.example" % i) for i in range(300)))]),
}
GIVEN_UP = {
    "CN with a space": make_tbs([cn(b"Some Name")], None),
    "BMP CN": make_tbs([cn("a.example".encode("utf-16-be"), BMP)], None),
    "CN that is an IP address": make_tbs([cn(b"192.0.2.1")], None),
    "trailing dot": make_tbs([], [san((DNS, b"a.example."))]),
    "empty dNSName": make_tbs([], [san((DNS, b""), (DNS, b"a.example"))]),
    "dNSName that is an IP address": make_tbs([], [san((DNS, b"10.0.0.1"))]),
    "newline": make_tbs([], [san((DNS, b"a.example\nb.example"))]),
    "NUL": make_tbs([], [san((DNS, b"a.example\0.evil"))]),
    "URL": make_tbs([], [san((DNS, b"https://a.example/x"))]),
    "UTF-8": make_tbs([], [san((DNS, "bücher.example".encode()))]),
    "control character": make_tbs([], [san((DNS, b"a\x01b.example"))]),
    "IP SAN": make_tbs([], [san((IP, bytes(4)), (DNS, b"a.example"))]),
    "URI SAN": make_tbs([], [san((URI, b"https://a.example"))]),
    "stray zero after the SAN": make_tbs([], [san((DNS, b"a.example"), tail=b"\x00")]),
    "unique ID": make_tbs([cn(b"a.example")], [san((DNS, b"b.example"))], between=der(0x81, b"\x00\x01")),
    "two SCT lists": make_tbs([], [SCT_EXT, san((DNS, b"a.example")), SCT_EXT]),
}


@pytest.mark.parametrize("name", TAKEN)
def test_crafted_certificates_the_fast_walk_takes(name: str) -> None:
    for leaf in as_leaves(TAKEN[name]):
        check(leaf)
        assert fast_takes(leaf)


@pytest.mark.parametrize("name", GIVEN_UP)
def test_crafted_certificates_left_to_the_general_walk(name: str) -> None:
    for leaf in as_leaves(GIVEN_UP[name]):
        check(leaf)
        assert not fast_takes(leaf)


def test_tbs_hash_of_a_cert_with_an_sct_list_is_its_precerts() -> None:
    with_sct = make_tbs([cn(b"a.example")], [OTHER_EXT, SCT_EXT, san((DNS, b"a.example"))])
    without = make_tbs([cn(b"a.example")], [OTHER_EXT, san((DNS, b"a.example"))])
    precert, _ = as_leaves(without)
    _, final = as_leaves(with_sct)
    assert leaf_scan(final, True)[2] == leaf_scan(precert, True)[2] == hashlib.sha256(without).digest()
    only_sct = make_tbs([cn(b"a.example")], [SCT_EXT])
    _, final = as_leaves(only_sct)
    assert leaf_scan(final, True)[2] == hashlib.sha256(make_tbs([cn(b"a.example")], None)).digest()


def test_tbs_sha256_is_tbs_without_sct_for_every_size() -> None:
    """The re-encoded lengths cross each DER length-form boundary."""
    for size in [*range(300), 60_000, 65_000]:
        ext = seq(b"\x06\x03\x2a\x03\x04", der(0x04, bytes(size)))
        for exts in ([ext, SCT_EXT], [SCT_EXT, ext], [SCT_EXT]):
            tbs = make_tbs([cn(b"a.example")], exts)
            _, leaf = as_leaves(tbs)
            walk = _fast_walk(leaf, 15, len(leaf) - 2, True)
            assert walk is not None
            cert = parse_merkle_tree_leaf(leaf).body
            assert _tbs_sha256(leaf, *walk[1]) == hashlib.sha256(tbs_without_sct(cert)).digest()


# --- hostile input: mutations and truncations -----------------------------------------------------------


def header_positions(data: bytes, pos: int, end: int) -> list[int]:
    """Offsets of the tag and length bytes of every DER element under data[pos:end] (into
    constructed elements and into OCTET STRINGs that hold DER)."""
    out: list[int] = []
    todo = [(pos, end)]
    while todo:
        pos, end = todo.pop()
        while pos < end:
            try:
                tag, start, stop = read_tlv(data, pos, end)
            except DecodeError:
                break
            out += range(pos, start)
            if tag & 0x20 or tag == 0x04:
                todo.append((start, stop))
            pos = stop
    return out


def sample_leaves(corpus: list[bytes]) -> list[bytes]:
    """Real entries of both types and corpus ones, precert and final certificate with SCTs."""
    real = [leaf for leaf in REAL[:4] if fast_takes(leaf)]
    assert {leaf[11] for leaf in real} == {X509_ENTRY, PRECERT_ENTRY}
    return real + corpus[:3] + list(as_leaves(TAKEN["an SCT list"]))


def test_mutated_headers(corpus: list[bytes]) -> None:
    """Every DER tag and length byte set to values that change the walk's course."""
    for leaf in sample_leaves(corpus):
        start = 15 if leaf[11] == X509_ENTRY else 47
        for pos in header_positions(leaf, start, len(leaf) - 2):
            for value in {0x00, 0x01, 0x30, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF, leaf[pos] - 1,
                          leaf[pos] + 1, leaf[pos] ^ 0x80}:
                check(leaf[:pos] + bytes((value & 0xFF,)) + leaf[pos + 1 :])


def test_random_mutations(corpus: list[bytes]) -> None:
    rng = random.Random(2025)
    for leaf in REAL[:40] + corpus[:40]:
        for _ in range(100):
            mutated = bytearray(leaf)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(15, len(leaf) - 2)] = rng.randrange(256)
            check(bytes(mutated))


def test_truncated_bodies(corpus: list[bytes]) -> None:
    """A body cut anywhere, inside a well-formed leaf: never a crash, never another answer."""
    for leaf in sample_leaves(corpus):
        entry = parse_merkle_tree_leaf(leaf)
        for cut in range(len(entry.body)):
            body = entry.body[:cut]
            check(merkle_tree_leaf(TimestampedEntry(1, entry.entry_type, body, entry.issuer_key_hash)))
            assert _fast_walk(body, 0, cut, entry.entry_type == X509_ENTRY) is None


# --- scan_entries as a whole -----------------------------------------------------------------------------


def test_scan_entries_rows_and_hits(corpus: list[bytes], watchlist: Path) -> None:
    rules = build_rules(None, watchlist)
    odd = [*as_leaves(GIVEN_UP["two SCT lists"]), *as_leaves(GIVEN_UP["URL"]), b"\x00\x00junk"]
    leaves = corpus[:500] + odd
    body = orjson.dumps({"entries": [{"leaf_input": base64.b64encode(li).decode(), "extra_data": ""}
                                     for li in leaves]})
    res = scan_entries(RawEntries(100, len(leaves), body=body), rules, True)
    assert res.start == 100 and res.count == len(leaves)
    assert res.hashes == b"".join(hashlib.sha256(b"\x00" + li).digest() for li in leaves)
    assert [m[0] for m in res.malformed] == [len(leaves) - 1]
    assert res.names is not None
    rows = list(read_block(*res.names))
    assert len(rows) == len(leaves) - 1  # every readable entry here has names
    for offset, etype, tbs, names, ikh in rows:
        leaf = leaves[offset]
        assert (etype, names) == reference(leaf)[:2]
        assert tbs == leaf_tbs_sha256(leaf)
        assert ikh == (leaf[12:44] if etype == PRECERT_ENTRY else None)
    watched = [leaf_scan(leaf, False)[1] for leaf in leaves[:-1]]
    expected = [i for i, names in enumerate(watched) if rules.watchlist and rules.watchlist.match(names)]
    assert expected and [h.offset for h in res.hits] == expected
    assert scan_entries(RawEntries(100, len(leaves), body=body), rules, False).names is None


# --- the watchlist's inline walk --------------------------------------------------------------------------


WATCH_ITEMS = [".", ".example", "example", "a.example", ".b.a.example", "ac-1.example", ".com",
               "www.example.com", "192.0.2.1", "x.y.z.test"]
IDENTITIES = ["a.example", "b.a.example", "c.b.a.example", "z.example", "example", "*.example", "*.a.example",
              "*.b.a.example", "*", "*.", ".", "", "*.com", "*.*.example", "a.*.example", "?.example",
              "<unparsable>.example", "ac-*.example", "*.ac-1.example", "www.example.com", "*.example.com",
              "192.0.2.1", "192.0.2.2", "2001:db8::1", "x.y.z.test", "*.y.z.test", "*.z.test", "q.x.y.z.test"]


def test_watchlist_match_is_the_general_walk() -> None:
    rng = random.Random(17)
    for _ in range(300):
        wl = Watchlist(rng.sample(WATCH_ITEMS, rng.randrange(1, len(WATCH_ITEMS))))
        for _ in range(5):
            identities = rng.sample(IDENTITIES, rng.randrange(0, 5))
            hits = [h for h in map(wl._match_wildcard, identities) if h is not None]
            assert wl.match(identities) == (wl.items[min(hits)] if hits else None), (wl.items, identities)


# --- the Scanner's worker transport ---------------------------------------------------------------------


def test_scanner_workers_read_bodies_from_memory_files(
    corpus: list[bytes], watchlist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large body reaches a worker through a reused memory file, in the pieces it arrived in, and
    gives what the inline scan gives; small bodies and systems without memfd use the pipe."""
    rules = build_rules(None, watchlist)
    body = orjson.dumps({"entries": [{"leaf_input": base64.b64encode(li).decode(), "extra_data": "AAAA"}
                                     for li in corpus[:300]]})
    assert len(body) > scan_module.BODY_FILE_MIN
    pieces = [body[i : i + 5000] for i in range(0, len(body), 5000)]
    expected = scan_entries(RawEntries(0, 300, body=body), rules, True)

    def same(res: ScanResult) -> None:
        assert (res.start, res.hashes, res.names) == (0, expected.hashes, expected.names)
        assert [(h.offset, h.kind, h.leaf_input, h.extra, h.watch_item) for h in res.hits] == [
            (h.offset, h.kind, h.leaf_input, h.extra, h.watch_item) for h in expected.hits
        ]

    async def scan_all(scanner: Scanner) -> None:
        for raw in (RawEntries(0, 300, body=body), RawEntries(0, 300, body=pieces),
                    RawEntries(0, 300, body=[body[:100], body[100:]])):
            same(await scanner.scan(raw))

    scanner = Scanner(rules, True, workers=1)
    try:
        asyncio.run(scan_all(scanner))
        assert len(scanner._files) == 1  # one file, refilled for each body
        with pytest.raises(DecodeError):  # a body holding more entries than asked for
            asyncio.run(scanner.scan(RawEntries(0, 299, body=pieces)))
        monkeypatch.setattr(scan_module, "MEMORY_FILES", False)
        asyncio.run(scan_all(scanner))
    finally:
        scanner.close()
    assert scanner._files == []
