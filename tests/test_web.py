"""The HTTP side: crt.sh-compatible JSON, the native API, pages that show hostile certificates as
text, token-guarded editing, log health and alerts from a real state database, and ``ctwatch
serve`` as a process."""

from __future__ import annotations

import base64
import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from ctwatch.cttypes import STH
from ctwatch.loglist import parse_log_list
from ctwatch.merkle import CompactRange
from ctwatch.state import LogState, StateDB
from ctwatch.store import open_index
from ctwatch.store.index import SqlIndex
from ctwatch.web import app as web_app
from ctwatch.web import create_app
from ctwatch.web.certstream import FULL, certstream_message

from .index_records import (
    ARGON2025H2,
    CTDATA,
    HOSTILE,
    OTHER_LOG,
    TEST_LOG,
    free_port,
    fresh_record,
    local_log_list,
    log_records,
    postgres_cluster,
    real_records,
    record,
    serving,
    x509_entry,
)

TOKEN = "s3cret-token"
LIMBO = CTDATA / "certs" / "x509-limbo-online"
ARGON_DIR = CTDATA / "rfc6962" / "argon2025h2"
CTWATCH = [sys.executable, "-c", "from ctwatch.cli import main; main()"]
CRTSH_FIELDS = {
    "issuer_ca_id",
    "issuer_name",
    "common_name",
    "name_value",
    "id",
    "entry_timestamp",
    "not_before",
    "not_after",
    "serial_number",
    "result_count",
}


@pytest.fixture(scope="module")
def testlog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("testlog") / "log"


def _copied_scts() -> x509.UnrecognizedExtension:
    """docs.python.org's real SCT list, to be embedded in another certificate (where it must fail)."""
    leaf = x509.load_pem_x509_certificates((LIMBO / "docs.python.org.chain.pem").read_bytes())[0]
    scts = leaf.extensions.get_extension_for_oid(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS).value
    return x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, scts.public_bytes())


@pytest.fixture(scope="module")
def records(testlog_dir: Path) -> list[dict[str, Any]]:
    recs = real_records()
    recs += log_records(testlog_dir, 30, [[HOSTILE, "www.example.com"]])
    recs.append(fresh_record(["fresh.example.net"], 60))
    recs.append(fresh_record(["copied-scts.example.org"], 61, extensions=[_copied_scts()]))
    return recs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Path:
    d = tmp_path_factory.mktemp("data")
    ix = open_index(d)
    ix.add(records)
    ix.close()
    state = StateDB(d / "state.sqlite")
    hostile = next(r for r in records if HOSTILE in r["names"])
    with state.transaction():
        state.add_event(
            {
                **hostile,
                "event": "discovered_cert",
                "id": "discovered_cert:" + hostile["tbs_sha256"],
                "time": "2025-06-01T00:00:05Z",
                "watch_item": ".example.com",
                "unexpected": True,
            }
        )
    state.record_error(
        "7s3QZNXbGs7FXLedtM0TojKHRny87N7DUUhZRnEftZs=",
        "https://ct.example.net/2025/",
        "<b>connection refused</b>",
    )
    # Argon2025h2 followed up to entry 5, its last verified tree head the real one of 2025-07-05
    sth = STH.from_json(orjson.loads((ARGON_DIR / "get-sth_1329315675.json").read_bytes()))
    tree = CompactRange()
    tree.extend(bytes([i]) * 32 for i in range(5))
    with state.transaction():
        state.save_log(LogState(ARGON2025H2[1], ARGON2025H2[0], tree, tree, sth))
    state.close()
    return d


@pytest.fixture
def client(data_dir: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    ix = open_index(data_dir)
    watch = tmp_path / "watchlist"
    watch.write_text("# mine\n.example.com\n")
    config = tmp_path / "ctwatch.toml"
    config.write_text('# my settings\n[logs]\nconcurrency = 2 # polite\n\n[[watch]]\nname = "example.com"\n')
    app = create_app(ix, data_dir / "state.sqlite", TOKEN, watch_path=watch, config_path=config)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c
    ix.close()


def test_crtsh_json_has_crtsh_fields(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    r = client.get("/", params={"q": "%.google.com", "output": "json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rows = r.json()
    assert rows and all(set(row) == CRTSH_FIELDS for row in rows)
    argon_id = client.get("/api/search", params={"q": records[0]["tbs_sha256"]}).json()["results"][0]["id"]
    argon = next(row for row in rows if row["id"] == argon_id)
    assert argon["name_value"].split("\n") == records[0]["names"]
    assert argon["not_before"] == records[0]["not_before"].removesuffix("Z")
    assert argon["serial_number"] == records[0]["serial"]
    assert argon["entry_timestamp"].startswith("2025-06-02T09:35:33.195")
    assert isinstance(argon["issuer_ca_id"], int) and isinstance(argon["id"], int)
    # the same through crt.sh's other parameters
    one = client.get("/", params={"sha256": records[0]["tbs_sha256"], "output": "json"}).json()
    assert [row["id"] for row in one] == [argon["id"]]
    by_serial = client.get("/", params={"serial": records[0]["serial"], "output": "json"}).json()
    assert argon["id"] in [row["id"] for row in by_serial]


def test_crtsh_json_streams_every_result(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = client.get("/", params={"q": "%.test", "output": "json"}).json()
    monkeypatch.setattr(web_app, "JSON_PAGE", 3)  # force many pages: still one complete list
    paged = client.get("/", params={"q": "%.test", "output": "json"}).json()
    assert paged == everything and len(everything) > 6
    assert len(client.get("/", params={"q": "%.test", "output": "json", "limit": "4"}).json()) == 4


def test_crtsh_options(client: httpx.Client) -> None:
    dedup = client.get("/", params={"q": "google.com", "output": "json"}).json()
    apart = client.get("/", params={"q": "google.com", "output": "json", "deduplicate": "N"}).json()
    assert len(apart) > len(dedup)
    live = client.get("/", params={"q": "%.example.net", "output": "json", "exclude": "expired"}).json()
    assert [row["common_name"] for row in live] == ["fresh.example.net"]
    bad = client.get("/", params={"q": "%", "output": "json"})
    assert bad.status_code == 400 and "too broad" in bad.json()["error"]


def test_native_api_pages_and_details(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    page = client.get("/api/search", params={"q": "%.test", "limit": "5"}).json()
    assert len(page["results"]) == 5 and page["next_after"] == page["results"][-1]["id"]
    nxt = client.get("/api/search", params={"q": "%.test", "limit": "5", "after": page["next_after"]}).json()
    assert nxt["results"][0]["id"] < page["next_after"]
    cert = client.get(f"/api/cert/{page['results'][0]['id']}").json()
    assert cert["sightings"] and cert["tbs_sha256"] == page["results"][0]["tbs_sha256"]
    assert client.get("/api/cert/999999").status_code == 404
    assert client.get("/api/cert/" + "9" * 40).status_code == 404
    assert client.get("/api/search", params={"q": "x", "limit": "lots"}).status_code == 400


def test_search_pages_walk_to_the_end(client: httpx.Client) -> None:
    """The HTML result pages link on with ``after`` until every result was shown, none twice."""
    everything = [row["id"] for row in client.get("/", params={"q": "%.test", "output": "json"}).json()]
    seen: list[int] = []
    url: str | None = "/?q=%25.test&limit=3"
    while url is not None:
        page = client.get(url).text
        seen += [int(i) for i in re.findall(r'class="cert-link" href="/cert/(\d+)"', page)]
        m = re.search(r'<a id="next" href="([^"]+)"', page)
        url = html.unescape(m.group(1)) if m else None
    assert seen == everything and len(everything) > 6


def test_pem_download_is_the_logged_der_and_chain(
    client: httpx.Client, records: list[dict[str, Any]]
) -> None:
    cid = client.get("/api/search", params={"q": f"sha256:{records[0]['tbs_sha256']}"}).json()["results"][0][
        "id"
    ]
    for kind, rec in (("precert", records[0]), ("x509", records[1])):
        r = client.get(f"/cert/{cid}/pem", params={"type": kind})
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        certs = x509.load_pem_x509_certificates(r.content)
        assert certs[0].public_bytes(Encoding.DER) == base64.b64decode(rec["der"])
        assert [c.public_bytes(Encoding.DER) for c in certs[1:]] == [
            base64.b64decode(c) for c in rec["chain"]
        ]


def test_hostile_names_render_as_text(client: httpx.Client) -> None:
    for url in ("/?q=%25.example.com", "/alerts"):
        page = client.get(url).text
        assert "&lt;img src=x onerror=alert(1)&gt;.example.com" in page and "<img" not in page
    cid = client.get("/api/search", params={"q": HOSTILE}).json()["results"][0]["id"]
    detail = client.get(f"/cert/{cid}")
    assert detail.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail.text and "<img" not in detail.text
    assert "script-src 'self'" in detail.headers["content-security-policy"]
    assert detail.headers["x-content-type-options"] == "nosniff"
    err = client.get("/", params={"q": "<b%"})  # too broad: the error page quotes the query
    assert err.status_code == 400 and "<b%" not in err.text and "&lt;b%" in err.text


def test_detail_page_decodes_the_certificate(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    r = client.get("/", params={"sha256": records[0]["tbs_sha256"]}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    for text in (
        "Precertificate",
        "Certificate",
        "Embedded SCTs",
        "logs/us1/argon2025h2/",
        "CN=WR2",
        "912557348",
        "Log sightings",
        "subjectAltName",
        "critical CT poison",
        records[0]["tbs_sha256"],
    ):
        assert text in page, text


def _testlog_finals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final certificates of the local test log (its SCTs are signed by the test log's key)."""
    return [
        r for r in records if r["entry_type"] == "x509" and r["log_url"] == TEST_LOG[0] and r["index"] >= 1000
    ]


def _cert_id(client: httpx.Client, tbs_sha256: str) -> int:
    return int(client.get("/api/search", params={"q": f"sha256:{tbs_sha256}"}).json()["results"][0]["id"])


def test_embedded_scts_of_real_certificates_verify(
    client: httpx.Client, records: list[dict[str, Any]]
) -> None:
    """Real server certificates (x509-limbo) and Google's final certificate: every embedded SCT
    verifies over the precertificate entry rebuilt from the certificate and its issuer's key."""
    limbo = {r["tbs_sha256"] for r in real_records()[7:]}
    assert len(limbo) == len(list(LIMBO.glob("*.chain.pem")))
    for tbs in [records[1]["tbs_sha256"], *limbo]:
        scts = client.get(f"/api/cert/{_cert_id(client, tbs)}").json()["embedded_scts"]
        assert len(scts) >= 2 and all(s["verified"] and s["log"] and not s["error"] for s in scts), scts
    google = client.get(f"/api/cert/{_cert_id(client, records[1]['tbs_sha256'])}").json()
    assert {s["log"] for s in google["embedded_scts"]} >= {"Google 'Argon 2025H2' log"}
    page = client.get(f"/cert/{google['id']}").text
    assert page.count('<td class="ok">verified</td>') == len(google["embedded_scts"])
    assert "Google &#39;Argon 2025H2&#39; log" in page and "2025-06-02T09:35:33.195" in page


def test_copied_or_unknown_scts_do_not_verify(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    copied = next(r for r in records if r["names"] == ["copied-scts.example.org"])
    scts = client.get(f"/api/cert/{_cert_id(client, copied['tbs_sha256'])}").json()["embedded_scts"]
    assert len(scts) == 3 and all(s["log"] and not s["verified"] for s in scts)
    assert all("signature does not verify" in s["error"] for s in scts)
    page = client.get(f"/cert/{_cert_id(client, copied['tbs_sha256'])}").text
    assert page.count('<td class="error">signature does not verify') == 3
    # A certificate of the local test log: its log is in no bundled list...
    final = _testlog_finals(records)[0]
    scts = client.get(f"/api/cert/{_cert_id(client, final['tbs_sha256'])}").json()["embedded_scts"]
    assert scts and all(not s["verified"] and s["log"] is None for s in scts)
    assert all("not in the log list" in s["error"] for s in scts)
    # ... and a certificate of 2013 has none at all.
    old = next(r for r in records if r["log_url"] == OTHER_LOG[0])
    assert client.get(f"/api/cert/{_cert_id(client, old['tbs_sha256'])}").json()["embedded_scts"] == []


def test_scts_of_a_log_the_server_is_given(
    data_dir: Path, testlog_dir: Path, records: list[dict[str, Any]]
) -> None:
    """With the test log's list (``serve --logs``), its SCTs are named and verified."""
    ix = open_index(data_dir)
    finals = _testlog_finals(records)
    app = create_app(ix, None, None, logs=parse_log_list(local_log_list(testlog_dir)))
    with serving(app) as base, httpx.Client(base_url=base) as c:
        for rec in finals:
            scts = c.get(f"/api/cert/{_cert_id(c, rec['tbs_sha256'])}").json()["embedded_scts"]
            assert [(s["log"], s["verified"]) for s in scts] == [("ctwatch test log (RFC 6962)", True)]
        page = c.get(f"/cert/{_cert_id(c, finals[0]['tbs_sha256'])}").text
        assert "ctwatch test log (RFC 6962)" in page and '<td class="ok">verified</td>' in page
    ix.close()


def test_alerts_and_log_health_from_the_state_database(client: httpx.Client, data_dir: Path) -> None:
    alerts = client.get("/api/alerts").json()["alerts"]
    assert [a["event"]["watch_item"] for a in alerts] == [".example.com"]
    assert HOSTILE in alerts[0]["event"]["names"]
    logs = {row["url"]: row for row in client.get("/api/logs").json()["logs"]}
    assert set(logs) == {"https://ct.example.net/2025/", ARGON2025H2[0]}
    argon = logs[ARGON2025H2[0]]
    assert (argon["position"], argon["tree_size"], argon["lag"]) == (5, 1329315675, 1329315670)
    assert argon["sth_timestamp"] == 1751738269891 and argon["sth_age_seconds"] > 1e7
    page = client.get("/logs").text
    assert "&lt;b&gt;connection refused&lt;/b&gt;" in page and "<b>" not in page
    row = page[page.index(ARGON2025H2[0]) :].split("</tr>")[0]
    assert "<td>1329315670</td>" in row and "2025-07-05T17:57:49.891" in row
    assert re.search(r"<td>\d{8,} s</td>", row)  # the STH's age: over a year


def test_editing_needs_the_token(client: httpx.Client, tmp_path: Path) -> None:
    watch = tmp_path / "watchlist"
    before = watch.read_text()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.put("/api/watchlist", json={"text": "evil.com\n"}, headers=headers)
        assert r.status_code == 401
    assert watch.read_text() == before
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.put("/api/watchlist", json={"text": "# ops\n.example.org\nbücher.example\n"}, headers=auth)
    assert r.status_code == 200 and r.json()["items"] == [".example.org", "xn--bcher-kva.example"]
    assert watch.read_text() == "# ops\n.example.org\nbücher.example\n"
    bad = client.put("/api/watchlist", json={"text": "ok.com\nnot a name!\n"}, headers=auth)
    assert bad.status_code == 422 and "line 2" in bad.json()["error"]
    assert watch.read_text() == "# ops\n.example.org\nbücher.example\n"
    assert client.put("/api/watchlist", content=b"[1]", headers=auth).status_code == 400
    assert client.put("/api/watchlist", content=b"x" * (2 << 20), headers=auth).status_code == 413
    assert client.get("/api/watchlist").json()["text"] == watch.read_text()


def test_policy_editing_keeps_the_rest_of_the_config(client: httpx.Client, tmp_path: Path) -> None:
    config = tmp_path / "ctwatch.toml"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/policy").json()["text"] == '[[watch]]\nname = "example.com"\n'
    new = (
        f'[[watch]]\nname = "example.com"\nauthorised_issuers = ["{"ab" * 32}"]\n\n'
        '[[watch]]\nname = "example.org"\nseverity = "high"\n'
    )
    r = client.put("/api/policy", json={"text": new}, headers=auth)
    assert r.status_code == 200 and r.json()["entries"] == 2
    text = config.read_text()
    assert text.startswith("# my settings\n[logs]\nconcurrency = 2 # polite\n") and text.endswith(new)
    for bad in ("[logs]\nconcurrency = 9\n", "[[watch]\nname=", "[[watch]]\nname = 1\n[monitor.x]\ny=1\n"):
        r = client.put("/api/policy", json={"text": bad}, headers=auth)
        assert r.status_code == 422, bad
    assert config.read_text() == text


@pytest.mark.parametrize(
    ("table", "named"),
    [
        (
            f'name = "example.com"\nauthorized_issuers = ["{"ab" * 32}"]',
            "[[watch]] #2: unknown key(s) authorized_issuers",
        ),
        ('name = "example.com"\nauthorised_keys = ["not-a-hash"]', "[[watch]] #2.authorised_keys"),
        ('name = "example.com"\nseverity = "urgent"', "[[watch]] #2.severity"),
        ('name = "not a name!"', "[[watch]] #2"),
        ('severity = "low"', "[[watch]] #2: needs name"),
    ],
)
def test_policy_editing_refuses_what_the_monitor_would(
    client: httpx.Client, tmp_path: Path, table: str, named: str
) -> None:
    """A typo in a [[watch]] table is refused with the table and key named, the file untouched."""
    config = tmp_path / "ctwatch.toml"
    before = config.read_text()
    text = f'[[watch]]\nname = "example.org"\n\n[[watch]]\n{table}\n'
    r = client.put("/api/policy", json={"text": text}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422 and named in r.json()["error"], r.json()
    assert config.read_text() == before
    assert client.put("/api/policy", json={"text": '[[watch]]\nname = "a.com"\n'}).status_code == 401
    assert config.read_text() == before


def _patched(der: bytes, at: int, value: int) -> bytes:
    return der[:at] + bytes([value]) + der[at + 1 :]


def test_certificates_cryptography_refuses_still_render(tmp_path: Path) -> None:
    """Hostile DER that makes cryptography raise its rarer exceptions: the pages, the API and the
    certstream message still come out, the bad field shown as undecodable."""
    chain = [
        c.public_bytes(Encoding.DER)
        for c in x509.load_pem_x509_certificates((LIMBO / "google.com.chain.pem").read_bytes())
    ]
    leaf = chain[0]
    ec_oid = leaf.index(bytes.fromhex("06072a8648ce3d0201"))
    key_usage = leaf.index(bytes.fromhex("0603551d0f"))
    hostile = [
        _patched(leaf, ec_oid + 7, 0x66),  # key type 1.2.840.10045.102.1: UnsupportedAlgorithm
        _patched(leaf, key_usage + 4, 0x25),  # keyUsage made a second extKeyUsage: DuplicateExtension
        _patched(leaf, leaf.index(b"Google Trust Services") - 2, 0x15),  # string type 21: KeyError
    ]
    ix = open_index(tmp_path)
    # (the last without its chain: entries.cert_info cannot yet compare such an issuer name)
    chains = [chain[1:], chain[1:], []]
    ix.add(
        [
            record(*x509_entry(der, issuers, 1748736000000 + i), TEST_LOG, i)
            for i, (der, issuers) in enumerate(zip(hostile, chains, strict=True))
        ]
    )
    with serving(create_app(ix, None, None)) as base, httpx.Client(base_url=base) as c:
        for item in ix.since(0, 10):
            assert c.get(f"/cert/{item['id']}").status_code == 200
            scts = c.get(f"/api/cert/{item['id']}").json()["embedded_scts"]
            assert scts and not any(s["verified"] for s in scts)  # the TBS they signed changed
            assert certstream_message(item, FULL, "x")["data"]["leaf_cert"]["all_domains"]
    ix.close()


def test_writes_are_disabled_without_a_token(data_dir: Path, tmp_path: Path) -> None:
    ix = open_index(data_dir)
    watch = tmp_path / "w"
    app = create_app(ix, data_dir / "state.sqlite", None, watch_path=watch)
    with serving(app) as base, httpx.Client(base_url=base) as c:
        assert (
            c.put(
                "/api/watchlist", json={"text": "a.com\n"}, headers={"Authorization": "Bearer x"}
            ).status_code
            == 403
        )
        assert "Read-only" in c.get("/watchlist").text
    assert not watch.exists()
    ix.close()


def test_api_is_identical_on_postgres(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    with postgres_cluster() as url:
        pg: SqlIndex = open_index(None, url)
        pg.add(records)
        with serving(create_app(pg, None, None)) as base, httpx.Client(base_url=base, timeout=30) as pgc:
            for params in (
                {"q": "%.google.com"},
                {"q": "%oogle%"},
                {"q": "%.test", "deduplicate": "N"},
                {"q": HOSTILE},
                {"issuer": "%wr2%"},
                {"q": "%.net", "exclude": "expired"},
            ):
                want = client.get("/", params={**params, "output": "json"}).json()
                assert pgc.get("/", params={**params, "output": "json"}).json() == want and want, params
                assert (
                    pgc.get("/api/search", params=params).json()
                    == client.get("/api/search", params=params).json()
                )
        pg.close()


def test_serve_command(
    tmp_path: Path, data_dir: Path, testlog_dir: Path, records: list[dict[str, Any]]
) -> None:
    port = free_port()
    env = {**os.environ, "CTWATCH_TOKEN": TOKEN}
    loglist = tmp_path / "loglist.json"
    loglist.write_bytes(local_log_list(testlog_dir))
    proc = subprocess.Popen(
        [
            *CTWATCH,
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--watch",
            str(tmp_path / "w"),
            "--logs",
            str(loglist),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", params={"q": "%.google.com", "output": "json"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None, (
                    proc.stderr.read() if proc.stderr else ""
                )
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()) >= 2
        final = _testlog_finals(records)[0]
        found = httpx.get(
            f"http://127.0.0.1:{port}/api/search", params={"q": f"sha256:{final['tbs_sha256']}"}
        )
        cert = httpx.get(f"http://127.0.0.1:{port}/api/cert/{found.json()['results'][0]['id']}").json()
        assert [s["verified"] for s in cert["embedded_scts"]] == [True]  # the --logs list's test log
        put = httpx.put(
            f"http://127.0.0.1:{port}/api/watchlist",
            json={"text": "a.example\n"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert put.status_code == 200 and (tmp_path / "w").read_text() == "a.example\n"
        busy = subprocess.run(
            [*CTWATCH, "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert busy.returncode == 2 and "cannot listen" in busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_home_without_query_is_the_search_form(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and 'id="search"' in r.text
    assert orjson.loads(client.get("/api/search", params={"q": "nothing.invalid"}).content)["results"] == []
