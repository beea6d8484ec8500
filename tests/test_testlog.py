"""The local test log: its corpus is real CT data, it serves both APIs correctly, and each
misbehaviour mode produces exactly the evidence it promises.

Everything is checked with ctwatch's own verification code (verify.py, merkle.py, the log list
parser) and, where it matters, independently with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ctwatch import merkle
from ctwatch.checkpoint import Checkpoint
from ctwatch.cli import main
from ctwatch.cttypes import (
    HASH_SHA256,
    PRECERT_ENTRY,
    STH,
    X509_ENTRY,
    DigitallySigned,
    Reader,
    TimestampedEntry,
    parse_extra_data,
    parse_leaf_index_extension,
    parse_merkle_tree_leaf,
)
from ctwatch.errors import ConfigError, DecodeError, VerificationError
from ctwatch.loglist import RFC6962, STATIC, LogInfo, parse_log_list
from ctwatch.testlog import Plant, Store, TestLogServer, generate_corpus, grow_corpus, parse_modes
from ctwatch.testlog.server import parse_listen, parse_tile_index
from ctwatch.verify import LogKey, verify_checkpoint, verify_sct, verify_sth

POISON = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")
COUNT = 600
HOSTILE = ("evil<script>alert(1)</script>.example", "crlf\r\nX-Injected: 1.example", "nul\x00byte.example",
           "quote\"'`.example", "shell;$(touch /tmp/pwned)|&`id`.example")
PLANTS = [Plant(("planted.example",)), Plant(("a.planted.test", "b.planted.test")), Plant(HOSTILE),
          Plant(("login.ctwatch-bank.example",), impostor=True)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("testlog") / "log"
    generate_corpus(directory, COUNT, seed=3, plants=PLANTS)
    return directory


@pytest.fixture(scope="module")
def rsa_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("testlog-rsa") / "log"
    generate_corpus(directory, 40, seed=4, rsa_log=True)
    return directory


@pytest.fixture
def server(corpus: Path) -> TestLogServer:
    with TestLogServer(corpus) as s:
        yield s


# --- small HTTP client and parsers ----------------------------------------------------------------


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str) -> dict:
    status, _, body = fetch(url)
    assert status == 200, (url, status, body)
    return orjson.loads(body)


def logs_of(s: TestLogServer) -> dict[str, LogInfo]:
    return {log.protocol: log for log in parse_log_list(s.loglist_path.read_bytes())}


def get_sth(s: TestLogServer) -> STH:
    return STH.from_json(get_json(s.rfc6962_url + "ct/v1/get-sth"))


def get_checkpoint(s: TestLogServer) -> Checkpoint:
    status, _, body = fetch(s.static_url + "checkpoint")
    assert status == 200
    return Checkpoint.parse(body)


def get_entries(s: TestLogServer, size: int) -> list[dict]:
    return get_entries_from(s.rfc6962_url, size)


def get_entries_from(log_url: str, size: int) -> list[dict]:
    out: list[dict] = []
    while len(out) < size:
        out += get_json(f"{log_url}ct/v1/get-entries?start={len(out)}&end={size - 1}")["entries"]
    return out


def b64decode_all(items: list[str]) -> list[bytes]:
    return [base64.b64decode(h) for h in items]


def leaf_hashes(entries: list[dict]) -> list[bytes]:
    return [merkle.leaf_hash(base64.b64decode(e["leaf_input"])) for e in entries]


def tile_url(s: TestLogServer, level: str | int, n: int, width: int | None = None) -> str:
    return f"{s.static_url}tile/{level}/{n:03d}" + (f".p/{width}" if width else "")


def get_tile(url: str) -> bytes:
    status, headers, body = fetch(url)
    assert status == 200, (url, status)
    return gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body


def parse_data_tile(data: bytes) -> list[tuple[TimestampedEntry, bytes | None, list[bytes]]]:
    r = Reader(data)
    out = []
    while not r.done():
        entry = TimestampedEntry.read(r)
        precert = r.vec(3) if entry.entry_type == PRECERT_ENTRY else None
        fps = r.vec(2)
        out.append((entry, precert, [fps[i : i + 32] for i in range(0, len(fps), 32)]))
    return out


def static_entries(s: TestLogServer, size: int) -> list[tuple[TimestampedEntry, bytes | None, list[bytes]]]:
    out = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        out += parse_data_tile(get_tile(tile_url(s, "data", n, width if width < 256 else None)))
    return out


def static_level0(s: TestLogServer, size: int) -> list[bytes]:
    out = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        data = get_tile(tile_url(s, 0, n, width if width < 256 else None))
        out += [data[i : i + 32] for i in range(0, len(data), 32)]
    return out


def static_leaf_hash(entry: TimestampedEntry) -> bytes:
    return merkle.leaf_hash(b"\x00\x00" + entry.encode())


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# --- the corpus -------------------------------------------------------------------------------------


def test_corpus_is_deterministic(tmp_path: Path) -> None:
    a = generate_corpus(tmp_path / "a", 80, seed=9, plants=[Plant(("x.example",))])
    grow_corpus(a, 30, [Plant(("y.example",), impostor=True)])
    b = generate_corpus(tmp_path / "b", 80, seed=9, plants=[Plant(("x.example",))])
    grow_corpus(b, 30, [Plant(("y.example",), impostor=True)])
    assert (tmp_path / "a" / "entries.bin").read_bytes() == (tmp_path / "b" / "entries.bin").read_bytes()
    assert a.manifest == b.manifest and len(a.manifest) == 4
    c = generate_corpus(tmp_path / "c", 80, seed=10)
    assert c.leaf_inputs != a.leaf_inputs[:80]
    reopened = Store.open(tmp_path / "a")
    assert reopened.size == 110 and reopened.leaf_inputs == a.leaf_inputs
    assert reopened.rfc6962_hashes == b"".join(merkle.leaf_hash(x) for x in a.leaf_inputs)


def test_corpus_mix_and_certificates(corpus: Path) -> None:
    store = Store.open(corpus)
    assert store.size == COUNT
    types = [parse_merkle_tree_leaf(x).entry_type for x in store.leaf_inputs]
    assert 0.55 < types.count(PRECERT_ENTRY) / COUNT < 0.78
    key_types, san_counts = set(), set()
    for i in range(COUNT):
        entry, precert, chain = store.entry(i)
        issuer = x509.load_der_x509_certificate(chain[0])
        x509.load_der_x509_certificate(chain[1])  # the root parses too
        cert = x509.load_der_x509_certificate(precert if precert is not None else entry.body)
        cert.verify_directly_issued_by(issuer)
        key_types.add("rsa" if isinstance(cert.public_key(), rsa.RSAPublicKey) else "ec")
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        san_counts.add(len(names))
        assert all(n.endswith((".test", ".example")) for n in names)  # reserved TLDs only
        if entry.entry_type == PRECERT_ENTRY:
            poison = cert.extensions.get_extension_for_oid(POISON)
            assert poison.critical
            assert entry.issuer_key_hash == hashlib.sha256(spki(issuer)).digest()
            assert b"\xd6\x79\x02\x04\x03" not in entry.body  # the poison OID's tail
        else:
            # a final certificate and the precert logged just before it share the TBS
            pre_entry, _, _ = store.entry(i - 1)
            assert pre_entry.entry_type == PRECERT_ENTRY
            assert cert.tbs_precertificate_bytes == pre_entry.body
    assert key_types == {"ec", "rsa"}
    assert san_counts <= {1, 2, 3, 4, 5} and len(san_counts) >= 4


def test_manifest_matches_entries(corpus: Path) -> None:
    store = Store.open(corpus)
    assert len(store.manifest) == 2 * len(PLANTS)
    indexes = [rec["index"] for rec in store.manifest]
    assert indexes == sorted(indexes) and indexes[-1] < COUNT and indexes[0] > 0
    pairs = zip(store.manifest[::2], store.manifest[1::2], strict=True)
    for plant, (pre, fin) in zip(PLANTS, pairs, strict=True):
        assert (pre["entry_type"], fin["entry_type"]) == ("precert", "x509")
        assert fin["index"] == pre["index"] + 1 and pre["tbs_sha256"] == fin["tbs_sha256"]
        assert pre["names"] == fin["names"] == list(plant.names)
        assert pre["issuer"] == ("Unexpected CA" if plant.impostor else "ctwatch Test CA")
        entry, precert, chain = store.entry(pre["index"])
        assert hashlib.sha256(precert).hexdigest() == pre["cert_sha256"]
        assert hashlib.sha256(entry.body).hexdigest() == pre["tbs_sha256"]
        final_entry, _, _ = store.entry(fin["index"])
        assert hashlib.sha256(final_entry.body).hexdigest() == fin["cert_sha256"]
        issuer = x509.load_der_x509_certificate(chain[0])
        assert issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == pre["issuer"]
        # names reach the certificate byte for byte, hostile ones included
        for name in plant.names:
            assert b"\x82" + bytes((len(name.encode()),)) + name.encode() in final_entry.body


def test_plant_validation() -> None:
    assert Plant.parse(" a.example , b.example ").names == ("a.example", "b.example")
    with pytest.raises(ConfigError):
        Plant.parse(",")
    with pytest.raises(ConfigError):
        Plant(("ok.example", ""))


def test_too_many_plants_and_existing_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need at least"):
        generate_corpus(tmp_path / "x", 3, plants=[Plant(("a.example",)), Plant(("b.example",))])
    generate_corpus(tmp_path / "y", 4, plants=[Plant(("a.example",)), Plant(("b.example",))])
    with pytest.raises(ConfigError, match="already holds"):
        generate_corpus(tmp_path / "y", 4)
    with pytest.raises(ConfigError, match="not a test log"):
        Store.open(tmp_path)


# --- serving honestly -----------------------------------------------------------------------------


def test_log_list_names_both_logs(server: TestLogServer) -> None:
    logs = logs_of(server)
    assert logs[RFC6962].url == server.rfc6962_url and logs[RFC6962].state == "usable"
    assert logs[STATIC].url == server.static_url
    assert logs[STATIC].submission_url == server.static_submission_url != server.static_url
    assert logs[RFC6962].log_id != logs[STATIC].log_id
    assert all(url.startswith("http://127.0.0.1:") for url in (server.rfc6962_url, server.static_url))


def test_sth_and_checkpoint_verify(server: TestLogServer) -> None:
    logs = logs_of(server)
    sth = get_sth(server)
    verify_sth(LogKey(logs[RFC6962].key), sth)
    assert sth.tree_size == COUNT
    cp = get_checkpoint(server)
    verified = verify_checkpoint(LogKey(logs[STATIC].key), cp, logs[STATIC].origin)
    assert cp.origin == server.static_submission_url.removeprefix("http://").rstrip("/")
    assert verified.sth.tree_size == COUNT and cp.extensions == ()
    assert [s.name for s in cp.signatures] == ["witness.ctwatch.test", cp.origin]  # the witness is ignored


def test_rsa_log_signs_with_rsa(rsa_corpus: Path) -> None:
    with TestLogServer(rsa_corpus) as s:
        key = LogKey(logs_of(s)[RFC6962].key)
        sth = get_sth(s)
        verify_sth(key, sth)
        assert DigitallySigned.decode(sth.signature).sig_alg == key.sig_alg == 1
        entries = get_entries(s, sth.tree_size)
        assert merkle.root_from_hashes(leaf_hashes(entries)) == sth.root_hash
        checked = 0
        for e in entries:
            entry = parse_merkle_tree_leaf(base64.b64decode(e["leaf_input"]))
            if entry.entry_type == X509_ENTRY:
                _, chain = parse_extra_data(X509_ENTRY, base64.b64decode(e["extra_data"]))
                verify_embedded_sct(key, entry.body, chain[0])
                checked += 1
        assert checked > 3


def verify_embedded_sct(key: LogKey, cert_der: bytes, issuer_der: bytes) -> int:
    """Verify a final certificate's one embedded SCT over its precert entry; return its timestamp."""
    cert = x509.load_der_x509_certificate(cert_der)
    issuer = x509.load_der_x509_certificate(issuer_der)
    (sct,) = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert sct.log_id == key.log_id
    ts = round(sct.timestamp.replace(tzinfo=dt.UTC).timestamp() * 1000)
    verify_sct(key, ts, DigitallySigned(HASH_SHA256, key.sig_alg, sct.signature), PRECERT_ENTRY,
               cert.tbs_precertificate_bytes, hashlib.sha256(spki(issuer)).digest(), sct.extension_bytes)
    return ts


def test_entries_match_root_and_scts_verify(server: TestLogServer) -> None:
    key = LogKey(logs_of(server)[RFC6962].key)
    sth = get_sth(server)
    entries = get_entries(server, sth.tree_size)
    assert merkle.root_from_hashes(leaf_hashes(entries)) == sth.root_hash
    finals = 0
    prev: TimestampedEntry | None = None
    for e in entries:
        entry = parse_merkle_tree_leaf(base64.b64decode(e["leaf_input"]))
        _, chain = parse_extra_data(entry.entry_type, base64.b64decode(e["extra_data"]))
        if entry.entry_type == X509_ENTRY:
            sct_timestamp = verify_embedded_sct(key, entry.body, chain[0])
            cert = x509.load_der_x509_certificate(entry.body)
            # the SCT promises exactly the precert entry logged just before the certificate
            assert prev is not None and prev.entry_type == PRECERT_ENTRY
            assert (prev.body, prev.timestamp) == (cert.tbs_precertificate_bytes, sct_timestamp)
            finals += 1
        prev = entry
    assert finals > COUNT // 5


def test_get_entries_limits(server: TestLogServer, corpus: Path) -> None:
    url = server.rfc6962_url + "ct/v1/get-entries"
    assert len(get_json(f"{url}?start=0&end={COUNT - 1}")["entries"]) == 256
    assert len(get_json(f"{url}?start={COUNT - 10}&end={COUNT + 50}")["entries"]) == 10
    for query in (f"start={COUNT}&end={COUNT + 5}", "start=5&end=4", "start=-1&end=3", "start=a", "end=3"):
        assert fetch(f"{url}?{query}")[0] == 400, query
    with TestLogServer(corpus, batch_max=100) as s:
        assert len(get_json(f"{s.rfc6962_url}ct/v1/get-entries?start=0&end=500")["entries"]) == 100


def test_proofs_verify(server: TestLogServer) -> None:
    old = get_sth(server)
    server.grow(77)
    new = get_sth(server)
    assert new.tree_size == old.tree_size + 77 and new.timestamp > old.timestamp
    base = server.rfc6962_url + "ct/v1/"
    entries = get_entries(server, new.tree_size)
    hashes = leaf_hashes(entries)
    assert merkle.root_from_hashes(hashes[: old.tree_size]) == old.root_hash
    for first in (1, 5, 256, old.tree_size):
        proof = get_json(f"{base}get-sth-consistency?first={first}&second={new.tree_size}")["consistency"]
        old_root = merkle.root_from_hashes(hashes[:first])
        merkle.verify_consistency(first, new.tree_size, old_root, new.root_hash, b64decode_all(proof))
    assert get_json(f"{base}get-sth-consistency?first=9&second=9")["consistency"] == []
    assert fetch(f"{base}get-sth-consistency?first=0&second=9")[0] == 400
    assert fetch(f"{base}get-sth-consistency?first=9&second={new.tree_size + 1}")[0] == 400
    for index in (0, 1, 300, new.tree_size - 1):
        query = urllib.parse.urlencode({"hash": base64.b64encode(hashes[index]).decode(),
                                        "tree_size": new.tree_size})
        got = get_json(f"{base}get-proof-by-hash?{query}")
        assert got["leaf_index"] == index
        merkle.verify_inclusion(hashes[index], index, new.tree_size, b64decode_all(got["audit_path"]),
                                new.root_hash)
        both = get_json(f"{base}get-entry-and-proof?leaf_index={index}&tree_size={new.tree_size}")
        assert both["leaf_input"] == entries[index]["leaf_input"]
        merkle.verify_inclusion(hashes[index], index, new.tree_size, b64decode_all(both["audit_path"]),
                                new.root_hash)
    q = urllib.parse.urlencode({"hash": base64.b64encode(b"\x00" * 32).decode(), "tree_size": 5})
    assert fetch(f"{base}get-proof-by-hash?{q}")[0] == 404
    assert fetch(f"{base}get-proof-by-hash?hash=%%%&tree_size=5")[0] == 400
    roots = get_json(base + "get-roots")["certificates"]
    assert len(roots) == 2
    assert get_json(server.static_submission_url + "ct/v1/get-roots")["certificates"] == roots


def test_static_tiles_match_checkpoint(server: TestLogServer) -> None:
    cp = get_checkpoint(server)
    entries = static_entries(server, cp.tree_size)
    level0 = static_level0(server, cp.tree_size)
    assert [static_leaf_hash(e) for e, _, _ in entries] == level0
    assert merkle.root_from_hashes(level0) == cp.root_hash
    rfc = get_entries(server, cp.tree_size)
    issuers: dict[bytes, bytes] = {}
    for index, ((entry, precert, fps), rfc_entry) in enumerate(zip(entries, rfc, strict=True)):
        assert parse_leaf_index_extension(entry.extensions) == index
        rfc_leaf = parse_merkle_tree_leaf(base64.b64decode(rfc_entry["leaf_input"]))
        assert (rfc_leaf.body, rfc_leaf.timestamp) == (entry.body, entry.timestamp)  # same certificates
        rfc_precert, chain = parse_extra_data(entry.entry_type, base64.b64decode(rfc_entry["extra_data"]))
        assert precert == rfc_precert and fps == [hashlib.sha256(c).digest() for c in chain]
        for fp in fps:
            if fp not in issuers:
                status, headers, der = fetch(f"{server.static_url}issuer/{fp.hex()}")
                assert status == 200 and headers["Content-Type"] == "application/pkix-cert"
                issuers[fp] = der
            assert hashlib.sha256(issuers[fp]).digest() == fp
    # level 1 holds the roots of full level-0 tiles
    level1 = get_tile(tile_url(server, 1, 0, cp.tree_size // 256))
    assert [level1[i : i + 32] for i in range(0, len(level1), 32)] == [
        merkle.root_from_hashes(level0[256 * k : 256 * k + 256]) for k in range(cp.tree_size // 256)]


def test_tile_encoding_and_partials(server: TestLogServer) -> None:
    assert fetch(tile_url(server, "data", 1))[1].get("Content-Encoding") == "gzip"  # no negotiation needed
    assert "Content-Encoding" not in fetch(tile_url(server, "data", 0))[1]
    assert fetch(tile_url(server, 0, 1))[1].get("Content-Encoding") == "gzip"
    last, width = COUNT // 256, COUNT % 256
    assert fetch(tile_url(server, "data", last, width))[0] == 200
    assert fetch(tile_url(server, "data", last, width - 3))[0] == 200  # an older checkpoint's partial
    assert fetch(tile_url(server, "data", last, width + 1))[0] == 404
    assert fetch(tile_url(server, "data", last))[0] == 404
    server.grow(256 - width)  # the partial tile fills up and disappears
    assert fetch(tile_url(server, "data", last, width))[0] == 404
    assert fetch(tile_url(server, 0, last, width))[0] == 404
    assert len(get_tile(tile_url(server, "data", last))) > 0
    assert len(get_tile(tile_url(server, 0, last))) == 8192
    for bad in ("tile/0/1", "tile/0/x000/001", "tile/6/000", "tile/0/000.p/256", "tile/0/000.p/07",
                "issuer/00", "issuer/" + "AB" * 32, "issuer/" + "00" * 32):
        assert fetch(server.static_url + bad)[0] == 404, bad


def test_tile_index_paths() -> None:
    assert parse_tile_index("x001/x234/067") == (1234067, None)
    assert parse_tile_index("067.p/5") == (67, 5)
    assert parse_tile_index("x000/067") is None and parse_tile_index("67") is None


def test_growth_and_persistence(corpus: Path, tmp_path: Path) -> None:
    with TestLogServer(corpus) as s:
        first = get_sth(s)
        assert get_sth(s) == first  # the head moves only when told
        planted = s.grow(20, [Plant(("late.example",))])
        assert [r["entry_type"] for r in planted] == ["precert", "x509"]
        assert get_sth(s).tree_size == COUNT + 20
        status, _, body = fetch(f"{s.base_url}/admin/grow?count=3&impostor=late-evil.example", "POST")
        assert status == 200 and orjson.loads(body)["tree_size"] == COUNT + 23
        assert fetch(f"{s.base_url}/admin/grow?count=x", "POST")[0] == 400
    assert Store.open(corpus).size == COUNT  # persist=False by default: the corpus is untouched
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    with TestLogServer(copy, persist=True, loglist_path=tmp_path / "list.json") as s:
        s.grow(10)
        grown = get_sth(s)
        assert (tmp_path / "list.json").exists()
    assert not (tmp_path / "list.json.tmp").exists()
    with TestLogServer(copy) as s:
        again = get_sth(s)
        assert (again.tree_size, again.root_hash) == (grown.tree_size, grown.root_hash)


def test_listen_is_loopback_only(corpus: Path) -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen("localhost:1") == ("127.0.0.1", 1)
    for bad in ("0.0.0.0:80", "10.1.2.3:80", "example.com:80", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


# --- misbehaviour -----------------------------------------------------------------------------------


def test_parse_modes() -> None:
    assert parse_modes(["fork"]) == {RFC6962: {"fork"}, STATIC: {"fork"}}
    assert parse_modes(["static:fork,garbage_leaf"]) == {RFC6962: {"garbage_leaf"}, STATIC: {"fork"}}
    for bad in ("nonsense", "static:garbage_leaf", "other:fork", "rfc6962:issuer_mismatch"):
        with pytest.raises(ConfigError):
            parse_modes([bad])


def test_bad_sth_signature(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["bad_sth_signature"]) as s:
        with pytest.raises(VerificationError):
            verify_sth(LogKey(logs_of(s)[RFC6962].key), get_sth(s))
        verify_checkpoint(LogKey(logs_of(s)[STATIC].key), get_checkpoint(s), logs_of(s)[STATIC].origin)


def test_root_mismatch(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["root_mismatch"]) as s:
        logs = logs_of(s)
        sth = get_sth(s)
        verify_sth(LogKey(logs[RFC6962].key), sth)
        assert merkle.root_from_hashes(leaf_hashes(get_entries(s, sth.tree_size))) != sth.root_hash
        cp = verify_checkpoint(LogKey(logs[STATIC].key), get_checkpoint(s), logs[STATIC].origin).sth
        assert merkle.root_from_hashes(static_level0(s, cp.tree_size)) != cp.root_hash


def test_fork(server: TestLogServer) -> None:
    key = LogKey(logs_of(server)[RFC6962].key)
    before = get_sth(server)
    honest = get_entries(server, before.tree_size)
    server.set_modes("rfc6962:fork")
    forked = get_sth(server)
    verify_sth(key, forked)
    index = server.affected_index("fork")
    assert index == before.tree_size // 2
    assert forked.tree_size == before.tree_size and forked.root_hash != before.root_hash
    entries = get_entries(server, forked.tree_size)
    assert merkle.root_from_hashes(leaf_hashes(entries)) == forked.root_hash  # consistent with itself
    changed = [i for i, (a, b) in enumerate(zip(honest, entries, strict=True)) if a != b]
    assert changed == [index]
    a, b = (parse_merkle_tree_leaf(base64.b64decode(e[index]["leaf_input"])) for e in (honest, entries))
    assert (b.timestamp - a.timestamp, b.body) == (1, a.body)
    server.grow(40)
    later = get_sth(server)
    proof = [base64.b64decode(h) for h in get_json(
        f"{server.rfc6962_url}ct/v1/get-sth-consistency?first={before.tree_size}&second={later.tree_size}")["consistency"]]
    merkle.verify_consistency(forked.tree_size, later.tree_size, forked.root_hash, later.root_hash, proof)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(before.tree_size, later.tree_size, before.root_hash, later.root_hash, proof)


def test_shrink_and_timestamp_regression(server: TestLogServer) -> None:
    key = LogKey(logs_of(server)[RFC6962].key)
    before = get_sth(server)
    server.set_modes("shrink")
    small = get_sth(server)
    verify_sth(key, small)
    assert small.tree_size < before.tree_size and small.timestamp > before.timestamp
    assert small.root_hash == merkle.root_from_hashes(leaf_hashes(get_entries(server, small.tree_size)))
    assert get_checkpoint(server).tree_size == COUNT  # no checkpoint was served before: no reference yet
    info = logs_of(server)[STATIC]
    assert verify_checkpoint(LogKey(info.key), get_checkpoint(server), info.origin).sth.tree_size < COUNT
    server.set_modes()
    now = get_sth(server)
    server.set_modes("timestamp_regression")
    old = get_sth(server)
    verify_sth(key, old)
    assert old.timestamp < now.timestamp and old.tree_size == now.tree_size


def test_before_modes_need_a_reference(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["shrink"]) as s:
        assert get_sth(s).tree_size == COUNT  # nothing served yet: the first head is honest
        assert get_sth(s).tree_size < COUNT


def test_bad_consistency(server: TestLogServer) -> None:
    server.grow(10)
    sth = get_sth(server)
    server.set_modes("bad_consistency")
    old_root = merkle.root_from_hashes(leaf_hashes(get_entries(server, 100)))
    url = f"{server.rfc6962_url}ct/v1/get-sth-consistency?first=100&second={sth.tree_size}"
    proof = b64decode_all(get_json(url)["consistency"])
    with pytest.raises(VerificationError):
        merkle.verify_consistency(100, sth.tree_size, old_root, sth.root_hash, proof)
    server.set_modes()
    good = b64decode_all(get_json(url)["consistency"])
    assert len(good) == len(proof) and good != proof
    merkle.verify_consistency(100, sth.tree_size, old_root, sth.root_hash, good)


def test_rate_limit_storm(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["rate_limit_storm"]) as s:
        results = [fetch(s.rfc6962_url + "ct/v1/get-sth") for _ in range(60)]
        limited = [h for status, h, _ in results if status == 429]
        assert 10 < len(limited) < 50 and all(r[0] in (200, 429) for r in results)
        assert {h["Retry-After"] for h in limited} <= {"0", "1"}
        assert 10 < sum(fetch(s.static_url + "checkpoint")[0] == 429 for _ in range(60)) < 50
        assert fetch(f"{s.base_url}/admin/status")[0] == 200  # the admin API is never limited


def test_short_batches(corpus: Path) -> None:
    with TestLogServer(corpus) as s:
        url = f"{s.rfc6962_url}ct/v1/get-entries?start=10&end=265"
        full = get_json(url)["entries"]
        s.set_modes("short_batches")
        sizes = set()
        for _ in range(20):
            got = get_json(url)["entries"]
            assert 1 <= len(got) <= 256 and got == full[: len(got)]
            sizes.add(len(got))
        assert len(sizes) > 5


def read_or_cut(url: str) -> tuple[str, bytes]:
    """("ok", body) for a complete read (Content-Length honoured), ("short_read", b"") otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
            assert int(r.headers["Content-Length"]) == len(body)
            return "ok", body
    except http.client.IncompleteRead:
        return "short_read", b""


def test_truncated_bodies(corpus: Path) -> None:
    with TestLogServer(corpus) as s:
        honest_tile = fetch(tile_url(s, "data", 1))[2]
        s.set_modes("truncated_bodies")
        seen: dict[str, int] = {}
        for _ in range(80):
            kind, body = read_or_cut(s.rfc6962_url + "ct/v1/get-sth")
            if kind == "ok":
                try:
                    orjson.loads(body)
                except orjson.JSONDecodeError:
                    kind = "cut_json"
            seen[kind] = seen.get(kind, 0) + 1
        assert set(seen) == {"ok", "cut_json", "short_read"} and seen["ok"] > 40
        tiles = [read_or_cut(tile_url(s, "data", 1)) for _ in range(40)]
        cut = [kind for kind, body in tiles if body != honest_tile]
        assert 0 < len(cut) < 30
        for kind, body in tiles:
            if kind == "ok" and body != honest_tile:
                assert honest_tile.startswith(body)  # a gzip stream cut short, Content-Length matching


def test_garbage_leaf(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["garbage_leaf"]) as s:
        logs = logs_of(s)
        sth = get_sth(s)
        verify_sth(LogKey(logs[RFC6962].key), sth)
        index = s.affected_index("garbage_leaf")
        assert index == COUNT // 2
        entries = get_entries(s, sth.tree_size)
        assert merkle.root_from_hashes(leaf_hashes(entries)) == sth.root_hash  # honest over the garbage
        with pytest.raises(DecodeError):
            parse_merkle_tree_leaf(base64.b64decode(entries[index]["leaf_input"]))
        for i in (index - 1, index + 1):
            parse_merkle_tree_leaf(base64.b64decode(entries[i]["leaf_input"]))
        cp = get_checkpoint(s)
        assert merkle.root_from_hashes(static_level0(s, cp.tree_size)) == cp.root_hash


def test_garbage_leaf_set_later_keeps_history(server: TestLogServer) -> None:
    before = get_sth(server)
    server.set_modes("garbage_leaf")
    assert server.affected_index("garbage_leaf") == before.tree_size  # the first entry no STH covered
    assert get_sth(server) == before
    server.grow(5)
    after = get_sth(server)
    proof = [base64.b64decode(h) for h in get_json(
        f"{server.rfc6962_url}ct/v1/get-sth-consistency?first={before.tree_size}&second={after.tree_size}")["consistency"]]
    merkle.verify_consistency(before.tree_size, after.tree_size, before.root_hash, after.root_hash, proof)
    entry = get_json(f"{server.rfc6962_url}ct/v1/get-entries?start={before.tree_size}&end={before.tree_size}")
    with pytest.raises(DecodeError):
        parse_merkle_tree_leaf(base64.b64decode(entry["entries"][0]["leaf_input"]))


def test_bad_checkpoint_signature(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["bad_checkpoint_signature"]) as s:
        logs = logs_of(s)
        cp = get_checkpoint(s)
        with pytest.raises(VerificationError):
            verify_checkpoint(LogKey(logs[STATIC].key), cp, logs[STATIC].origin)
        verify_sth(LogKey(logs[RFC6962].key), get_sth(s))


def test_static_fork_and_shrink(server: TestLogServer) -> None:
    info = logs_of(server)[STATIC]
    key = LogKey(info.key)
    before = verify_checkpoint(key, get_checkpoint(server), info.origin).sth
    honest = static_entries(server, before.tree_size)
    server.set_modes("static:fork")
    forked = verify_checkpoint(key, get_checkpoint(server), info.origin).sth
    assert forked.tree_size == before.tree_size and forked.root_hash != before.root_hash
    index = server.affected_index("static:fork")
    entries = static_entries(server, forked.tree_size)
    assert [i for i, (a, b) in enumerate(zip(honest, entries, strict=True)) if a != b] == [index]
    level0 = static_level0(server, forked.tree_size)
    assert merkle.root_from_hashes(level0) == forked.root_hash
    assert [static_leaf_hash(e) for e, _, _ in entries] == level0
    assert get_sth(server).root_hash == get_entries_root(server)  # the RFC 6962 log is untouched
    server.set_modes("static:shrink")
    small = verify_checkpoint(key, get_checkpoint(server), info.origin).sth
    assert small.tree_size < forked.tree_size


def get_entries_root(s: TestLogServer) -> bytes:
    return merkle.root_from_hashes(leaf_hashes(get_entries(s, s.tree_size)))


def test_wrong_leaf_index(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["wrong_leaf_index"]) as s:
        info = logs_of(s)[STATIC]
        cp = verify_checkpoint(LogKey(info.key), get_checkpoint(s), info.origin).sth
        index = s.affected_index("wrong_leaf_index")
        entries = static_entries(s, cp.tree_size)
        wrong = [i for i, (e, _, _) in enumerate(entries) if parse_leaf_index_extension(e.extensions) != i]
        assert wrong == [index]
        level0 = static_level0(s, cp.tree_size)
        assert [static_leaf_hash(e) for e, _, _ in entries] == level0
        assert merkle.root_from_hashes(level0) == cp.root_hash


def test_issuer_mismatch(corpus: Path) -> None:
    with TestLogServer(corpus, modes=["issuer_mismatch"]) as s:
        _, _, fps = parse_data_tile(get_tile(tile_url(s, "data", 0)))[0]
        for fp in fps:
            status, _, der = fetch(f"{s.static_url}issuer/{fp.hex()}")
            assert status == 200
            x509.load_der_x509_certificate(der)  # a real certificate, just not the named one
            assert hashlib.sha256(der).digest() != fp


def test_admin_misbehave_endpoint(server: TestLogServer) -> None:
    query = "mode=static:issuer_mismatch,short_batches"
    status, _, body = fetch(f"{server.base_url}/admin/misbehave?{query}", "POST")
    assert status == 200
    st = orjson.loads(body)
    assert st[STATIC]["modes"] == ["issuer_mismatch"] and st[RFC6962]["modes"] == ["short_batches"]
    assert fetch(f"{server.base_url}/admin/misbehave?mode=bogus", "POST")[0] == 400
    assert fetch(f"{server.base_url}/admin/misbehave", "POST")[0] == 200
    assert server.status()[RFC6962]["modes"] == []


# --- command line -----------------------------------------------------------------------------------


def test_cli_generate_grow_modes(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path / "log"
    result = runner.invoke(main, ["testlog", "generate", "--dir", str(d), "--count", "30", "--seed", "5",
                                  "--plant", "a.example,b.example", "--impostor", "evil.example"])
    assert result.exit_code == 0, result.output
    assert "30 entries, 4 planted" in result.output
    result = runner.invoke(main, ["testlog", "grow", "--dir", str(d), "--count", "8", "--plant", "c.example"])
    assert result.exit_code == 0 and Store.open(d).size == 38
    assert runner.invoke(main, ["testlog", "generate", "--dir", str(d), "--count", "3"]).exit_code == 2
    assert runner.invoke(main, ["testlog", "grow", "--dir", str(tmp_path), "--count", "3"]).exit_code == 2
    modes = runner.invoke(main, ["testlog", "modes"]).output
    assert "garbage_leaf" in modes and "issuer_mismatch" in modes
    for cmd in ("generate", "grow", "serve"):
        assert runner.invoke(main, ["testlog", cmd, "--help"]).exit_code == 0


def test_cli_serve_until_sigterm(corpus: Path, tmp_path: Path) -> None:
    listing = tmp_path / "loglist.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ctwatch.cli import main; main()", "testlog", "serve",
         "--dir", str(corpus), "--loglist", str(listing), "--no-persist", "--misbehave", "root_mismatch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        url = next(line.split()[-1] for line in lines if "RFC 6962 log" in line)
        sth = STH.from_json(get_json(url + "ct/v1/get-sth"))
        logs = {log.protocol: log for log in parse_log_list(listing.read_bytes())}
        assert logs[RFC6962].url == url
        verify_sth(LogKey(logs[RFC6962].key), sth)
        assert sth.root_hash != merkle.root_from_hashes(leaf_hashes(get_entries_from(url, COUNT)))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert os.path.exists(listing)
