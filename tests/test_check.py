"""``ctwatch check``: real TLS servers on loopback, the local test log, and the real chains of ctdata.

The test log's corpus certificates are dated 2025-06 and have expired, so each test issues a
fresh certificate under the test log's CAs, logs its precertificate (and final certificate) in
both test logs, and serves it from a local TLS server: Python's ``ssl`` (TLS 1.3), or
``openssl s_server`` to send an SCT TLS extension and staple an OCSP response.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ctwatch.check import CheckOptions, check_file, parse_target
from ctwatch.check.chain import load_pem
from ctwatch.check.scts import (
    EMBEDDED,
    OCSP,
    TLS_EXTENSION,
    FoundSct,
    check_signature,
    embedded_scts,
    ocsp_scts,
)
from ctwatch.check.tls import fetch_presented, verify_signature
from ctwatch.check.verdict import EXIT_CHAIN_INVALID, EXIT_CODES, render_text
from ctwatch.cli import main
from ctwatch.cttypes import (
    PRECERT_ENTRY,
    SCT,
    X509_ENTRY,
    TimestampedEntry,
    encode_sct_list,
    leaf_index_extension,
    sct_signature_input,
)
from ctwatch.errors import ConfigError, DecodeError, FetchError
from ctwatch.loglist import parse_log_list, read_bundled
from ctwatch.match.policy import CRITICAL, INFO, NONE, Policy
from ctwatch.state import StateDB
from ctwatch.testlog import TestLogServer, generate_corpus
from ctwatch.testlog.ca import Issuer, LeafFactory, LogSigner, PrivateKey, SubjectKey
from ctwatch.testlog.store import EncodedEntry

CERTS = Path(__file__).parent / "data" / "ctdata" / "certs"
OPENSSL = shutil.which("openssl")
DAY_MS = 86_400_000
pytestmark = pytest.mark.timeout(120)


# --- the local log and fresh certificates -------------------------------------------------------


@pytest.fixture(scope="module")
def testlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestLogServer]:
    d = tmp_path_factory.mktemp("check-log") / "log"
    generate_corpus(d, 8, seed=5)
    with TestLogServer(d) as server:
        yield server


@dataclass(frozen=True)
class Issued:
    """A fresh certificate: files for a TLS server and the facts the assertions need."""

    cert_der: bytes
    chain_pem: Path  # leaf, then the intermediate
    intermediate_pem: Path
    key_pem: Path
    index: int | None  # precert entry index in the logs, None if not logged
    timestamp: int


def _spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _sync(server: TestLogServer) -> None:
    """Make both views sign a head over entries appended to the store (on the server's loop)."""

    def sync() -> None:
        server.server.rfc6962.sync()
        server.server.static.sync()

    server._on_loop(sync)


def issue(server: TestLogServer, tmp: Path, names: list[str], *, impostor: bool = False, logged: bool = True,
          signer: LogSigner | None = None, age_ms: int = 60_000) -> Issued:
    """Issue a certificate valid now, embedding an SCT from ``signer`` (default: the RFC 6962 test log).

    ``logged`` appends the precertificate and the certificate to both test logs.
    """
    keys = server.store.keys
    issuer: Issuer = keys.unexpected_ca if impostor else keys.test_ca
    key = ec.generate_private_key(ec.SECP256R1())
    ts = int(time.time() * 1000) - age_ms
    now = dt.datetime.now(dt.UTC)
    pair = LeafFactory(issuer).issue(names, SubjectKey.of(key), int.from_bytes(os.urandom(15), "big"),
                                     now - dt.timedelta(hours=1), dt.timedelta(days=30),
                                     signer or keys.rfc6962, ts)
    assert pair.final is not None
    index = None
    if logged:
        index = server.store.size
        pre = TimestampedEntry(ts, PRECERT_ENTRY, pair.tbs, issuer.issuer_key_hash)
        final = TimestampedEntry(ts + 1, X509_ENTRY, pair.final)
        server.store.append([EncodedEntry.of(index, pre, pair.precert, issuer.chain),
                             EncodedEntry.of(index + 1, final, None, issuer.chain)], persist=False)
        _sync(server)
    return _write(tmp, pair.final, issuer, key, index, ts)


def _write(tmp: Path, cert_der: bytes, issuer: Issuer, key: ec.EllipticCurvePrivateKey, index: int | None,
           ts: int) -> Issued:
    stem = hashlib.sha256(cert_der).hexdigest()[:12]
    chain = tmp / f"{stem}.chain.pem"
    chain.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM)
                               for d in (cert_der, issuer.chain[0])))
    intermediate = tmp / f"{stem}.intermediate.pem"
    intermediate.write_bytes(issuer.cert.public_bytes(serialization.Encoding.PEM))
    key_path = tmp / f"{stem}.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert_der, chain, intermediate, key_path, index, ts)


def issue_without_scts(server: TestLogServer, tmp: Path, names: list[str]) -> Issued:
    """A certificate from the test CA with no SCT at all."""
    issuer = server.store.keys.test_ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(issuer.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                           critical=False)
            .sign(issuer.key, issuer.hash_alg))
    return _write(tmp, cert.public_bytes(serialization.Encoding.DER), issuer, key, None, 0)


def bad_signer(server: TestLogServer) -> LogSigner:
    """Signs with a stranger's key but names the RFC 6962 test log: every signature is broken."""
    signer = LogSigner(ec.generate_private_key(ec.SECP256R1()))
    signer.log_id = server.store.keys.rfc6962.log_id
    return signer


# --- TLS servers ---------------------------------------------------------------------------------


@contextmanager
def python_tls_server(issued: Issued) -> Iterator[int]:
    """A TLS 1.3 server (Python ssl) presenting ``issued``; yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(issued.chain_pem, issued.key_pem)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass  # check closes after the server's Finished
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def openssl_server(issued: Issued, tmp: Path, *, tls: str, sct_list: bytes | None = None,
                   ocsp: Path | None = None, extra: list[str] | None = None) -> Iterator[int]:
    """``openssl s_server`` presenting ``issued``, with an SCT TLS extension and a stapled OCSP response."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    args = [OPENSSL, "s_server", "-quiet", "-cert", str(issued.chain_pem), "-cert_chain",
            str(issued.intermediate_pem), "-key", str(issued.key_pem), tls, *(extra or [])]
    if sct_list is not None:
        # SERVERINFOV2: context (ClientHello | TLS 1.2 ServerHello | TLS 1.3 Certificate), then the extension.
        context = (0x80 | 0x100 | 0x1000).to_bytes(4, "big")
        ext = context + (18).to_bytes(2, "big") + len(sct_list).to_bytes(2, "big")
        info = tmp / "serverinfo.pem"
        info.write_text("-----BEGIN SERVERINFOV2 FOR CT-----\n" + base64.encodebytes(ext + sct_list).decode()
                        + "-----END SERVERINFOV2 FOR CT-----\n")
        args += ["-serverinfo", str(info)]
    if ocsp is not None:
        args += ["-status_file", str(ocsp)]
    for _ in range(5):  # another process may take the free port first
        port = _free_port()
        proc = subprocess.Popen([*args, "-accept", str(port)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("openssl s_server did not start")
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


# --- running the command -------------------------------------------------------------------------


def run_check(*args: str | Path, data_dir: Path, logs: Path | None = None, ca: Path | None = None
              ) -> tuple[int, dict[str, Any]]:
    argv = ["check", "--json", "--timeout", "5", "--data-dir", str(data_dir)]
    if logs is not None:
        argv += ["--logs", str(logs)]
    if ca is not None:
        argv += ["--ca-file", str(ca)]
    result = CliRunner().invoke(main, [*argv, *map(str, args)], catch_exceptions=False)
    out = json.loads(result.stdout) if result.stdout.startswith("{") else {"out": result.output}
    return result.exit_code, out


def policy_file(tmp: Path, server: TestLogServer) -> Path:
    """A config authorising only the test CA's intermediate for .example.com."""
    test_ca = _spki_sha256(server.store.keys.test_ca.cert)
    p = tmp / "ctwatch.toml"
    p.write_text(f'[[watch]]\nname = ".example.com"\nauthorised_issuers = ["{test_ca}"]\n')
    return p


def index_with(data_dir: Path, *certs: tuple[str, list[str]]) -> None:
    """A monitor state DB whose events know these (tbs_sha256, names) certificates."""
    db = StateDB(data_dir / "state.sqlite")
    for n, (tbs, names) in enumerate(certs):
        db.add_event({"event": "discovered_cert", "id": f"discovered_cert:{tbs}", "tbs_sha256": tbs,
                      "cert_sha256": None, "names": names, "watch_item": ".example.com"},
                     ("dGVzdA==", n, "precert"))
    db.close()


def tbs_of(issued: Issued) -> str:
    from ctwatch.entries import tbs_without_sct

    return hashlib.sha256(tbs_without_sct(issued.cert_der)).hexdigest()


@pytest.fixture
def ca_root(testlog: TestLogServer) -> Path:
    return testlog.store.directory / "certs" / "test-ca-root.pem"


# --- servers on loopback: the four verdicts --------------------------------------------------------


def test_logged_included_authorised_known_is_ok(testlog: TestLogServer, tmp_path: Path,
                                                ca_root: Path) -> None:
    issued = issue(testlog, tmp_path, ["www.example.com"])
    index_with(tmp_path, (tbs_of(issued), ["www.example.com"]))
    with python_tls_server(issued) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "www.example.com", "--config",
                              policy_file(tmp_path, testlog), data_dir=tmp_path, logs=testlog.loglist_path,
                              ca=ca_root)
    assert (code, out["verdict"]) == (0, "ok"), out
    assert out["chain_valid"] is True and out["key_proven"] is True and out["tls_version"] == "TLS 1.3"
    [sct] = out["scts"]
    assert sct["origin"] == "embedded" and sct["signature_valid"] and sct["included"]
    assert sct["leaf_index"] == issued.index and sct["log"] == "ctwatch test log (RFC 6962)"
    assert sct["mmd_elapsed"] is False
    assert out["policy"]["authorised"] is True and out["index"]["known"] is True
    assert any("included in" in r for r in out["reasons"])


def test_ok_but_untrusted_chain_exits_13(testlog: TestLogServer, tmp_path: Path) -> None:
    issued = issue(testlog, tmp_path, ["plain.test"])
    with python_tls_server(issued) as port:
        # The system trust store does not hold the test CA.
        code, out = run_check(f"127.0.0.1:{port}", "--name", "plain.test", data_dir=tmp_path,
                              logs=testlog.loglist_path)
    assert (code, out["verdict"], out["chain_valid"]) == (EXIT_CHAIN_INVALID, "ok", False), out
    assert out["chain_error"]


def test_broken_sct_signature_is_unlogged(testlog: TestLogServer, tmp_path: Path, ca_root: Path) -> None:
    issued = issue(testlog, tmp_path, ["broken.test"], signer=bad_signer(testlog))
    with python_tls_server(issued) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "broken.test", data_dir=tmp_path,
                              logs=testlog.loglist_path, ca=ca_root)
    assert (code, out["verdict"]) == (EXIT_CODES["unlogged"], "unlogged"), out
    [sct] = out["scts"]
    assert sct["signature_valid"] is False and "does not verify" in sct["error"]
    assert sct["log"] == "ctwatch test log (RFC 6962)" and sct["included"] is False
    assert out["chain_valid"] is True


def test_no_scts_is_unlogged(testlog: TestLogServer, tmp_path: Path, ca_root: Path) -> None:
    issued = issue_without_scts(testlog, tmp_path, ["nosct.test"])
    with python_tls_server(issued) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "nosct.test", data_dir=tmp_path,
                              logs=testlog.loglist_path, ca=ca_root)
    assert (code, out["verdict"], out["scts"], out["chain_valid"]) == (10, "unlogged", [], True), out
    assert any("no SCT" in r for r in out["reasons"])


def test_unexpected_ca_for_watched_name_unknown_to_index_is_impostor(testlog: TestLogServer, tmp_path: Path,
                                                                      ca_root: Path) -> None:
    legit = issue(testlog, tmp_path, ["login.example.com"])
    index_with(tmp_path, (tbs_of(legit), ["login.example.com"]))  # the monitor watches the name
    rogue = issue(testlog, tmp_path, ["login.example.com"], impostor=True)
    with python_tls_server(rogue) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "login.example.com", "--config",
                              policy_file(tmp_path, testlog), data_dir=tmp_path, logs=testlog.loglist_path,
                              ca=ca_root)
    assert (code, out["verdict"]) == (12, "impostor-suspect"), out
    assert out["policy"] == {"watched": ".example.com", "authorised": False, "rule": None,
                             "severity": "critical", "has_rules": True, "report": True}
    assert out["index"]["known"] is False and out["index"]["others"][0]["tbs_sha256"] == tbs_of(legit)
    assert out["scts"][0]["included"] is True  # logged, and still an impostor for this owner


def test_unexpected_ca_known_to_index_is_unexpected(testlog: TestLogServer, tmp_path: Path) -> None:
    rogue = issue(testlog, tmp_path, ["shop.example.com"], impostor=True)
    index_with(tmp_path, (tbs_of(rogue), ["shop.example.com"]))  # the monitor saw it in CT
    with python_tls_server(rogue) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "shop.example.com", "--config",
                              policy_file(tmp_path, testlog), data_dir=tmp_path, logs=testlog.loglist_path)
    assert (code, out["verdict"]) == (11, "unexpected"), out
    assert out["index"]["known"] is True and out["index"]["sightings"][0]["index"] == 0


def test_unlogged_unauthorised_without_index_is_impostor(testlog: TestLogServer, tmp_path: Path) -> None:
    rogue = issue(testlog, tmp_path, ["pay.example.com"], impostor=True, logged=False)
    with python_tls_server(rogue) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "pay.example.com", "--config",
                              policy_file(tmp_path, testlog), data_dir=tmp_path, logs=testlog.loglist_path)
    assert (code, out["verdict"], out["index"]["available"]) == (12, "impostor-suspect", False), out
    assert out["scts"][0]["inclusion"] == "pending"


def test_mmd_decides_between_pending_and_missed(testlog: TestLogServer, tmp_path: Path,
                                                ca_root: Path) -> None:
    fresh = issue(testlog, tmp_path, ["fresh.test"], logged=False)
    stale = issue(testlog, tmp_path, ["stale.test"], logged=False, age_ms=2 * DAY_MS)
    _sync(testlog)  # the log signs a head now: after the stale SCT's MMD, within the fresh one's
    with python_tls_server(fresh) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "fresh.test", data_dir=tmp_path,
                              logs=testlog.loglist_path, ca=ca_root)
    assert (code, out["verdict"], out["scts"][0]["inclusion"]) == (14, "inconclusive", "pending"), out
    with python_tls_server(stale) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "stale.test", data_dir=tmp_path,
                              logs=testlog.loglist_path, ca=ca_root)
    assert (code, out["verdict"], out["scts"][0]["inclusion"]) == (10, "unlogged", "missed"), out
    assert out["scts"][0]["mmd_elapsed"] is True


def test_tls12_extension_and_stapled_ocsp_scts_static_log(testlog: TestLogServer, tmp_path: Path,
                                                          ca_root: Path) -> None:
    """TLS 1.2 and 1.3: an SCT from the static-ct log in the TLS extension, proven from tiles."""
    issued = issue(testlog, tmp_path, ["both.test"])
    assert issued.index is not None
    keys = testlog.store.keys
    cert_index = issued.index + 1  # the final certificate's x509 entry, logged at timestamp + 1
    ext = leaf_index_extension(cert_index)
    signed = sct_signature_input(issued.timestamp + 1, X509_ENTRY, issued.cert_der, None, ext)
    ds = keys.static.digitally_signed(signed)
    static_sct = SCT(0, keys.static.log_id, issued.timestamp + 1, ext, ds).encode()
    real_ocsp = CERTS / "cryptography_vectors/x509/ocsp/resp-sct-extension.der"
    for tls in ("-tls1_2", "-tls1_3"):
        sct_list = encode_sct_list([static_sct])
        # Small records: every message after the ServerHello spans several of them.
        with openssl_server(issued, tmp_path, tls=tls, sct_list=sct_list, ocsp=real_ocsp,
                            extra=["-max_send_frag", "512"]) as port:
            code, out = run_check(f"127.0.0.1:{port}", "--name", "both.test", data_dir=tmp_path,
                                  logs=testlog.loglist_path, ca=ca_root)
        assert (code, out["verdict"]) == (0, "ok"), out
        assert out["tls_version"] == ("TLS 1.2" if tls == "-tls1_2" else "TLS 1.3") and out["key_proven"]
        by_origin: dict[str, list[dict[str, Any]]] = {}
        for s in out["scts"]:
            by_origin.setdefault(str(s["origin"]), []).append(s)
        [emb] = by_origin["embedded"]
        [tls_sct] = by_origin["tls-extension"]
        assert emb["included"] and emb["leaf_index"] == issued.index
        assert tls_sct["log"] == "ctwatch test log (static-ct-api)" and tls_sct["included"]
        assert tls_sct["leaf_index"] == cert_index
        # The real stapled response's four SCTs are for another certificate, from logs not in this list.
        assert len(by_origin["ocsp"]) == 4
        assert all(s["error"] == "the log that signed it is not in the log list" for s in by_origin["ocsp"])


def test_unreachable_log_is_reported_not_hung(testlog: TestLogServer, tmp_path: Path, ca_root: Path) -> None:
    issued = issue(testlog, tmp_path, ["down.test"])
    doc = json.loads(testlog.loglist_path.read_text())
    closed = f"http://127.0.0.1:{_free_port()}/"
    for op in doc["operators"]:
        for log in op["logs"]:
            log["url"] = closed
    dead = tmp_path / "dead-loglist.json"
    dead.write_text(json.dumps(doc))
    start = time.monotonic()
    with python_tls_server(issued) as port:
        code, out = run_check(f"127.0.0.1:{port}", "--name", "down.test", data_dir=tmp_path, logs=dead,
                              ca=ca_root)
    assert time.monotonic() - start < 20
    assert (code, out["verdict"], out["scts"][0]["inclusion"]) == (14, "inconclusive", "unreachable"), out
    want = "inclusion in ctwatch test log (RFC 6962) unknown (log unreachable"
    assert any(want in r for r in out["reasons"])


def test_text_output_and_errors(testlog: TestLogServer, tmp_path: Path, ca_root: Path) -> None:
    issued = issue(testlog, tmp_path, ["text.test"])
    with python_tls_server(issued) as port:
        result = CliRunner().invoke(main, ["check", f"127.0.0.1:{port}", "--name", "text.test",
                                           "--timeout", "5", "--logs", str(testlog.loglist_path),
                                           "--ca-file", str(ca_root), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "verdict: ok (exit 0)" in result.output and "inclusion: included at index" in result.output
    usage = CliRunner().invoke(main, ["check", "--data-dir", str(tmp_path)])
    assert usage.exit_code == 2 and "HOST[:PORT] or --cert" in usage.output
    refused = CliRunner().invoke(main, ["check", f"127.0.0.1:{_free_port()}", "--timeout", "2"])
    assert refused.exit_code == 1 and "ctwatch: error:" in refused.output


# --- hostile servers -------------------------------------------------------------------------------


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[int]:
    """Accepts one connection, reads the ClientHello, sends ``reply`` and closes (None: stays silent)."""
    sock = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(4096)
            if reply is None:
                done.wait(10)
            else:
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        done.set()
        thread.join()
        sock.close()


@pytest.mark.parametrize(("reply", "error"), [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", DecodeError),  # not TLS
    (b"\x16\x03\x03\xff\xff", DecodeError),  # a record longer than TLS allows
    (b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", DecodeError),  # a truncated ServerHello
    (b"\x15\x03\x03\x00\x02\x02\x28", FetchError),  # alert handshake_failure
    (b"\x16\x03\x03\x00\x10" + b"\x02\x00\x00", FetchError),  # closes mid-record
    (None, FetchError),  # silence: the deadline ends it
])
def test_hostile_servers_fail_cleanly(reply: bytes | None, error: type[Exception]) -> None:
    with raw_server(reply) as port:
        start = time.monotonic()
        with pytest.raises(error):
            asyncio.run(fetch_presented("127.0.0.1", port, "x.test", 1.0))
        assert time.monotonic() - start < 5


def _self_signed(tmp: Path, key: PrivateKey) -> Issued:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "variant.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    chain, key_path = tmp / "variant.pem", tmp / "variant.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert.public_bytes(serialization.Encoding.DER), chain, chain, key_path, None, 0)


@pytest.mark.parametrize(("key_kind", "args", "version"), [
    ("p384", ["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"], "TLS 1.3"),
    ("rsa", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], "TLS 1.3"),  # RSA-PSS
    ("p256", ["-tls1_3", "-groups", "P-384"], "TLS 1.3"),  # HelloRetryRequest for a P-384 share
    ("rsa", ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"], "TLS 1.2"),
    ("p256", ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"], "TLS 1.2"),
])
def test_handshake_variants_prove_the_key(tmp_path: Path, key_kind: str, args: list[str],
                                          version: str) -> None:
    key: PrivateKey = (rsa.generate_private_key(65537, 2048) if key_kind == "rsa"
                       else ec.generate_private_key(ec.SECP384R1() if key_kind == "p384" else ec.SECP256R1()))
    issued = _self_signed(tmp_path, key)
    with openssl_server(issued, tmp_path, tls=args[0], extra=args[1:]) as port:
        presented = asyncio.run(fetch_presented("127.0.0.1", port, "variant.test", 5))
    assert (presented.version, presented.key_proven, presented.key_error) == (version, True, None)
    assert presented.chain[0] == issued.cert_der
    assert presented.sct_list is None and presented.ocsp_response is None


def test_verify_signature_rejects_other_keys() -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    msg = b"transcript"
    verify_signature(cert, 0x0403, key.sign(msg, ec.ECDSA(hashes.SHA256())), msg, tls13=True)
    with pytest.raises(InvalidSignature):
        verify_signature(cert, 0x0403, other.sign(msg, ec.ECDSA(hashes.SHA256())), msg, tls13=True)
    with pytest.raises(InvalidSignature):  # P-256 key, P-384 scheme: TLS 1.3 ties them
        verify_signature(cert, 0x0503, key.sign(msg, ec.ECDSA(hashes.SHA384())), msg, tls13=True)
    with pytest.raises(InvalidSignature):  # RSA scheme for an EC key
        verify_signature(cert, 0x0804, key.sign(msg, ec.ECDSA(hashes.SHA256())), msg, tls13=True)


@pytest.mark.parametrize(("target", "want"), [
    ("example.com", ("example.com", 443)), ("example.com:8443", ("example.com", 8443)),
    ("[::1]:444", ("::1", 444)), ("::1", ("::1", 443)), ("127.0.0.1:1", ("127.0.0.1", 1)),
])
def test_parse_target(target: str, want: tuple[str, int]) -> None:
    assert parse_target(target) == want


@pytest.mark.parametrize("target", ["example.com:0", "example.com:x", "[::1", ":443", "[::1]x", "a:b:c"])
def test_parse_target_rejects(target: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(target)


# --- the real chains of ctdata, offline -------------------------------------------------------------


def _load(ref: str) -> bytes:
    """``file#index`` of sct_vectors.json as DER (some real chains hold a root with a negative serial)."""
    path, _, idx = ref.partition("#")
    data = (CERTS / path).read_bytes()
    return load_pem(data)[int(idx or 0)].public_bytes(serialization.Encoding.DER)


BUNDLED = {log.log_id: log for name in ("chrome", "apple") for log in parse_log_list(read_bundled(name))}
VECTORS = json.loads((CERTS / "sct_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['cert']}:{v['log_description']}")
def test_real_sct_vectors_verify_with_bundled_keys_where_the_readme_says(vector: dict[str, object]) -> None:
    raw = bytes.fromhex(str(vector["sct_tls_hex"]))
    now_ms = int(time.time() * 1000)
    if str(vector["expected"]).startswith("invalid"):  # the Symantec SCT: an x509 entry with a bad signature
        leaf = _load(str(vector["cert"]))
        result = check_signature(FoundSct(TLS_EXTENSION, raw), BUNDLED, leaf, None, now_ms)
        assert result.log is not None and not result.valid and "does not verify" in str(result.error)
        return
    leaf = _load(str(vector["cert"]))
    assert raw in [f.raw for f in embedded_scts(leaf)]  # extracted from the certificate itself
    issuer = x509.load_der_x509_certificate(_load(str(vector["issuer"])))
    ikh = bytes.fromhex(_spki_sha256(issuer))
    assert ikh.hex() == vector["issuer_key_hash"]
    result = check_signature(FoundSct(EMBEDDED, raw), BUNDLED, leaf, ikh, now_ms)
    assert result.valid, result.error
    assert result.log is not None and base64.b64encode(result.log.log_id).decode() == vector["log_id"]
    assert result.mmd_elapsed is True
    # The same SCT over another issuer's key (a wrong precertificate entry) must fail.
    assert not check_signature(FoundSct(EMBEDDED, raw), BUNDLED, leaf, bytes(32), now_ms).valid


def test_symantec_bad_sct_from_its_file_fails() -> None:
    case = CERTS / "real-sct-cases"
    leaf = x509.load_pem_x509_certificate((case / "symantec-bad-sct_www.google.com_2015.pem").read_bytes())
    raw = (case / "symantec-bad-sct_www.google.com_2015.sct.bin").read_bytes()
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    result = check_signature(FoundSct(TLS_EXTENSION, raw), BUNDLED, leaf_der, None, int(time.time() * 1000))
    assert result.log is not None and result.log.description == "Symantec log"
    assert result.signature_valid is False and "does not verify" in str(result.error)


def test_real_ocsp_response_scts_are_found() -> None:
    found = ocsp_scts((CERTS / "cryptography_vectors/x509/ocsp/resp-sct-extension.der").read_bytes())
    assert len(found) == 4 and all(f.origin == OCSP and f.error is None for f in found)
    logs = {BUNDLED[SCT.decode(f.raw).log_id].description for f in found}
    assert len(logs) == 4 and any("Mammoth" in d for d in logs)


@pytest.mark.parametrize("name", ["invalid-sct-length.der", "invalid-sct-version.der"])
def test_malformed_embedded_sct_lists_are_reported(name: str) -> None:
    found = embedded_scts((CERTS / "cryptography_vectors/x509/custom" / name).read_bytes())
    assert found and all(f.origin == EMBEDDED for f in found)
    checks = [check_signature(f, BUNDLED, b"", None, 0) for f in found]
    assert all(not c.valid and c.error for c in checks)


@pytest.mark.parametrize("chain", sorted(p.name for p in (CERTS / "x509-limbo-online").glob("*.pem")))
def test_real_chains_offline(chain: str, tmp_path: Path) -> None:
    path = CERTS / "x509-limbo-online" / chain
    certs = load_pem(path.read_bytes())
    root = tmp_path / "root.pem"
    root.write_bytes(certs[-1].public_bytes(serialization.Encoding.PEM))
    opts = CheckOptions(data_dir=tmp_path, ca_file=root, offline=True,
                        now=certs[0].not_valid_before_utc + dt.timedelta(days=3))
    report = asyncio.run(check_file(path, opts))
    out: dict[str, Any] = report.to_json()
    assert out["chain_valid"] is True, out["chain_error"]
    assert out["scts"] and all(s["signature_valid"] and s["inclusion"] == "not-checked" for s in out["scts"])
    assert (out["verdict"], report.exit_code) == ("inconclusive", 14)
    assert "not checked (--offline)" in render_text(out)


def test_cli_cert_offline_and_leaf_without_issuer(tmp_path: Path) -> None:
    geomys = CERTS / "luct/geomys-org.pem"
    code, out = run_check("--cert", geomys, "--offline", data_dir=tmp_path)
    assert (code, out["verdict"]) == (10, "unlogged")  # no issuer: the precert entry cannot be rebuilt
    assert all("issuer certificate is not available" in str(s["error"]) for s in out["scts"])
    chain = tmp_path / "geomys-chain.pem"
    chain.write_bytes(geomys.read_bytes() + (CERTS / "letsencrypt-website/e7.pem").read_bytes())
    code, out = run_check("--cert", chain, "--offline", data_dir=tmp_path)
    assert (code, out["verdict"]) == (14, "inconclusive")
    assert [s["signature_valid"] for s in out["scts"]] == [True, True]
    gouda = [s for s in out["scts"] if "Gouda" in str(s["log"])]
    assert gouda and gouda[0]["sct"].startswith("00")  # the static-ct SCT with its leaf_index extension


# --- policy --------------------------------------------------------------------------------------------


A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_policy_rules() -> None:
    policy = Policy.from_config({"watch": [
        {"name": ".example.com", "authorised_issuers": [A.upper()], "authorised_keys": [B]},
        {"name": "shop.example.com", "authorised_tbs": [C]},
        {"name": "open.test"},
    ]})
    assert policy.watch_items == [".example.com", "shop.example.com", "open.test"]
    assert policy.evaluate(["other.test"], A, B, C).severity == NONE
    assert policy.evaluate(["open.test"], None, B, C) == policy.evaluate(["open.test"], A, B, C)
    assert policy.evaluate(["open.test"], None, B, C).severity == INFO
    ok = policy.evaluate(["www.example.com"], A, "0" * 64, "0" * 64)
    assert (ok.watched, ok.authorised, ok.rule, ok.severity) == (".example.com", True,
                                                                 "authorised_issuers[.example.com]", INFO)
    assert policy.evaluate(["www.example.com"], None, B, "0" * 64).rule == "authorised_keys[.example.com]"
    bad = policy.evaluate(["www.example.com"], C, C, A)
    assert (bad.authorised, bad.severity) == (False, CRITICAL)
    # shop.example.com is under both entries: each must authorise it.
    assert policy.evaluate(["shop.example.com"], A, "0" * 64, "0" * 64).severity == CRITICAL
    both = policy.evaluate(["shop.example.com"], A, "0" * 64, C)
    assert both.authorised
    assert both.rule == "authorised_issuers[.example.com], authorised_tbs[shop.example.com]"


@pytest.mark.parametrize(("watch", "message"), [
    ({"name": ".example.com", "authorized_issuers": [A]}, "unknown key"),
    ({"name": ".example.com", "authorised_issuers": ["abc"]}, "not a hex SHA-256"),
    ({"name": ".example.com", "authorised_keys": A}, "expected a list"),
    ({"name": "*.example.com"}, "wildcards"),
    ({"authorised_tbs": [A]}, "needs name"),
])
def test_policy_config_errors(watch: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_config({"watch": [watch]})
