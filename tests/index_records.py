"""Index records built the way the monitor builds them (``entries.cert_info``) from real log entries,
real certificates in tests/data/ctdata, the local test log, and one fresh certificate.

Shared by the index, web and certstream tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctwatch.cttypes import (
    X509_ENTRY,
    TimestampedEntry,
    merkle_tree_leaf,
    parse_extra_data,
    parse_merkle_tree_leaf,
)
from ctwatch.entries import cert_info

CTDATA = Path(__file__).parent / "data" / "ctdata"
HOSTILE = "<img src=x onerror=alert(1)>.example.com"


def _log(name: str) -> tuple[str, str]:
    info = orjson.loads((CTDATA / "rfc6962" / name / "log.json").read_bytes())
    return info["url"], info["log_id"]


ARGON2025H2 = _log("argon2025h2")
ICARUS = _log("icarus")
TEST_LOG = ("https://ct.example.net/2025/", "7s3QZNXbGs7FXLedtM0TojKHRny87N7DUUhZRnEftZs=")
OTHER_LOG = ("https://ct.example.org/2025/", "u9+3kF3ldRBIqsUTaoqGRv23g1PtR8P0UdeE1e8XoHg=")


def record(
    leaf_input: bytes, extra_data: bytes, log: tuple[str, str], index: int, watch_item: str | None = None
) -> dict[str, Any]:
    """A monitor record: ``cert_info`` of a log entry plus the sighting, the DER and the chain."""
    entry = parse_merkle_tree_leaf(leaf_input)
    precert, chain = parse_extra_data(entry.entry_type, extra_data)
    info = cert_info(leaf_input, precert, chain).to_json()
    der = entry.body if entry.entry_type == X509_ENTRY else precert
    return {
        **info,
        "log_url": log[0],
        "log_id": log[1],
        "index": index,
        "watch_item": watch_item,
        "der": base64.b64encode(der).decode() if der else None,
        "chain": [base64.b64encode(c).decode() for c in chain],
    }


def x509_entry(cert_der: bytes, chain: list[bytes], timestamp: int) -> tuple[bytes, bytes]:
    """(leaf_input, extra_data) of an x509 entry for a certificate, as a log would serve it."""
    leaf = merkle_tree_leaf(TimestampedEntry(timestamp, X509_ENTRY, cert_der))
    blob = b"".join(len(c).to_bytes(3, "big") + c for c in chain)
    return leaf, len(blob).to_bytes(3, "big") + blob


def _pem_chain(path: Path) -> list[bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a real chain certificate has a non-positive serial
        return [
            c.public_bytes(serialization.Encoding.DER)
            for c in x509.load_pem_x509_certificates(path.read_bytes())
        ]


def real_records() -> list[dict[str, Any]]:
    """Records from real CT data: a precert and its final certificate (one TBS, two logs), an
    x509 entry of Icarus, four more real log entries, and the real server chains of x509-limbo."""
    out = []
    rfc = CTDATA / "rfc6962"
    e = orjson.loads((rfc / "argon2025h2" / "get-entries_912557348.json").read_bytes())["entries"][0]
    out.append(
        record(
            base64.b64decode(e["leaf_input"]),
            base64.b64decode(e["extra_data"]),
            ARGON2025H2,
            912557348,
            ".google.com",
        )
    )
    final = _pem_chain(CTDATA / "certs" / "luct" / "google-chain.pem")
    out.append(record(*x509_entry(final[0], final[1:], 1748857000000), TEST_LOG, 5, ".google.com"))
    e = orjson.loads((rfc / "icarus" / "get-entry-and-proof_120000000_129721434.json").read_bytes())
    out.append(
        record(base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"]), ICARUS, 120000000)
    )
    for i, e in enumerate(
        orjson.loads((rfc / "ctgo-scanner-test" / "get-entries_0_3.json").read_bytes())["entries"]
    ):
        out.append(record(base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"]), OTHER_LOG, i))
    for i, path in enumerate(sorted((CTDATA / "certs" / "x509-limbo-online").glob("*.chain.pem"))):
        chain = _pem_chain(path)
        out.append(record(*x509_entry(chain[0], chain[1:], 1748736000000 + i), TEST_LOG, 100 + i))
    return out


def fresh_record(
    names: list[str],
    index: int,
    log: tuple[str, str] = TEST_LOG,
    days: int = 365,
    watch_item: str | None = None,
    extensions: list[x509.ExtensionType] | None = None,
) -> dict[str, Any]:
    """A record of a certificate issued now (valid for ``days``) by a throw-away CA, names verbatim,
    with ``extensions`` added."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ctwatch test CA")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    )
    for ext in extensions or []:
        builder = builder.add_extension(ext, critical=False)
    der = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    ca_der = ca.public_bytes(serialization.Encoding.DER)
    return record(*x509_entry(der, [ca_der], int(now.timestamp() * 1000)), log, index, watch_item)


def log_records(directory: Path, count: int, plants: list[list[str]]) -> list[dict[str, Any]]:
    """Every entry of a fresh local test log (precerts and final certificates, names planted)."""
    from ctwatch.testlog import Plant, generate_corpus

    store = generate_corpus(directory, count, seed=7, plants=[Plant(tuple(p)) for p in plants])
    return [record(store.leaf_inputs[i], store.extras[i], TEST_LOG, 1000 + i) for i in range(store.size)]


def local_log_list(directory: Path) -> bytes:
    """The log list (JSON) of the local test log in ``directory``, as its server would write it."""
    from ctwatch.testlog.store import KeyRing, log_list_json

    url = TEST_LOG[0]
    return log_list_json(KeyRing.load(directory), url, url + "tiles/", url + "submit/")


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields its URL, removes it after.

    As root the server runs as the ``postgres`` user (it refuses to run as root). Skips the test
    when the Debian package is missing (``.ci/run`` installs it).
    """
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="ctwatch-pg-"))
    data = base / "data"
    if as_user:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "ctwatch", "--no-sync")
        run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        try:
            yield f"postgresql://ctwatch@127.0.0.1:{port}/postgres"
        finally:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with :func:`ctwatch.web.serve_app` (real uvicorn) in a thread; yields its base URL."""
    import asyncio
    import threading

    from ctwatch.web import serve_app

    port = free_port()
    listen = f"127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failed: list[BaseException] = []

    def main() -> None:
        try:
            loop.run_until_complete(serve_app(app, listen, stop))
        except BaseException as e:  # surfaced to the test below
            failed.append(e)
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            thread.join(0.05)
    try:
        yield f"http://{listen}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        assert not thread.is_alive(), "server did not stop"
        assert not failed, failed
