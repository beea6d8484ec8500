"""Alert sinks against real servers on loopback: SMTP (aiosmtpd), HTTP (aiohttp), a real script.

Every delivery carries hostile certificate text (CRLF header injection, ``<script>``, shell
command substitution, quotes, NUL, a 4 KB label) and each test checks it arrived inert.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import ssl
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctwatch.alerts import render_html, render_text, sinks_from_config
from ctwatch.alerts.chat import AppriseSink
from ctwatch.alerts.mail import EmailSink, SmtpSettings
from ctwatch.alerts.script import ScriptSink, script_environment
from ctwatch.alerts.webhook import WebhookSink
from ctwatch.errors import ConfigError, SinkError

from .sinks_support import free_port, http_server, smtp_server, write_script

CERT = Path(__file__).parent / "data/ctdata/certs/cryptography_vectors/x509/utf8-dnsname.pem"
LONG_LABEL = "a" * 4096


def hostile_event(marker_dir: Path) -> dict[str, Any]:
    """A discovered_cert event for a real certificate, with attacker-chosen names added.

    The shell payloads would create files in ``marker_dir`` if anything ever interpreted them.
    """
    pem = CERT.read_text()
    cert = x509.load_pem_x509_certificate(pem.encode())
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    real = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    hostile = [
        "evil.example.com\r\nBcc: victim@x",
        "<script>alert(1)</script>.example.com",
        f"$(touch {marker_dir}/dollar).example.com",
        f"`touch {marker_dir}/backtick`.example.com",
        f"x; touch {marker_dir}/semicolon; .example.com",
        "quote'\"\\.example.com",
        "nul\x00byte.example.com",
        "@everyone.example.com",
        f"{LONG_LABEL}.example.com",
    ]
    names = real + hostile
    return {
        "event": "discovered_cert",
        "id": "discovered_cert:" + hashlib.sha256(der).hexdigest(),
        "time": "2024-05-01T12:00:00Z",
        "log_url": "https://ct.example.net/2024h1/",
        "log_id": "7s3QZNXbGs7FXLedtM0TojKHRny87N7DUUhZRnEftZs=",
        "index": 123456789,
        "timestamp": 1714564800123,
        "entry_type": "x509",
        "names": names,
        "names_unicode": names,
        "watch_item": ".example.com",
        "subject": "CN=evil.example.com\r\nBcc: victim@x",
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tbs_sha256": hashlib.sha256(cert.tbs_certificate_bytes).hexdigest(),
        "cert_sha256": hashlib.sha256(der).hexdigest(),
        "pubkey_sha256": hashlib.sha256(spki).hexdigest(),
        "issuer_spki_sha256": "00" * 32,
        "unexpected": True,
        "severity": "high",
        "pem": pem,
    }


def assert_not_interpreted(marker_dir: Path) -> None:
    assert sorted(p.name for p in marker_dir.iterdir()) == []


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    d = tmp_path / "markers"
    d.mkdir()
    return d


# ---------------------------------------------------------------- rendering


def test_render_text_and_html_are_inert(markers: Path) -> None:
    ev = hostile_event(markers)
    text = render_text(ev)
    page = render_html(ev)
    first = f"Unexpected certificate for .example.com: {ev['names'][0]} (+{len(ev['names']) - 1} more)"
    assert text.startswith(first + "\n")
    assert "\r" not in text and "\x00" not in text
    assert "evil.example.com\\r\\nBcc: victim@x" in text
    assert "nul\\x00byte.example.com" in text
    assert "characters in all]" in text  # the 4 KB label is cut
    assert max(len(line) for line in text.splitlines()) < 1200
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'href="https://crt.sh/?sha256={ev["cert_sha256"]}"' in page
    assert page.count("<a ") == 1  # only the crt.sh link is a link


# ---------------------------------------------------------------- email


def issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
    extension: x509.ExtensionType,
) -> x509.Certificate:
    """A one-hour certificate; self-signed when ``issuer`` is None."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    return builder.sign(signer, hashes.SHA256())


def make_tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A CA-signed certificate for 127.0.0.1: (server context, CA file for the client)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("ctwatch test CA", ca_key, None, ca_key, x509.BasicConstraints(ca=True, path_length=None))
    ip = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf = issue("127.0.0.1", key, ca, ca_key, ip)
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, str(ca_file)


def test_email_plain_delivers_text_html_and_pem_without_header_injection(markers: Path) -> None:
    controller, inbox = smtp_server()
    try:
        settings = SmtpSettings(
            host="127.0.0.1", port=controller.port, sender="ctwatch@example.org", security="plain"
        )
        sink = EmailSink(["ops@example.com", "sec@example.com"], settings)
        ev = hostile_event(markers)
        ev["names"] = ev["names_unicode"] = [
            "evil.example.com\r\nBcc: victim@x",
            *ev["names"],
        ]  # into the subject
        asyncio.run(sink.deliver(ev))
    finally:
        controller.stop()
    assert sink.name == "email:ops@example.com,sec@example.com"
    (env,) = inbox.envelopes  # one message for the recipient list
    assert env.mail_from == "ctwatch@example.org"
    assert env.rcpt_tos == ["ops@example.com", "sec@example.com"]  # victim@x got nothing
    raw: bytes = env.original_content
    assert b"\x00" not in raw
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    header_lines = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert "Bcc" not in msg and not [h for h in header_lines if h.lower().startswith(b"bcc")]
    assert not msg.defects
    subject = str(msg["Subject"])
    assert subject.startswith(
        "[ctwatch] Unexpected certificate for .example.com: evil.example.com\\r\\nBcc: victim@x (+"
    )
    assert msg["Message-ID"].endswith("@example.org>") and msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    page = msg.get_body(("html",)).get_content()
    assert "evil.example.com\\r\\nBcc: victim@x" in text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "$(touch" in text and "nul\\x00byte" in text
    (pem,) = [p for p in msg.iter_attachments()]
    assert pem.get_filename() == f"{ev['cert_sha256']}.pem"
    assert pem.get_content().decode() == ev["pem"]
    assert_not_interpreted(markers)


def test_email_starttls_with_auth_from_environment(
    tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_ctx, cafile = make_tls(tmp_path)
    logins: list[LoginPassword] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append(data)
        return AuthResult(success=data == LoginPassword(b"alerts", b"s3cret"))

    controller, inbox = smtp_server(
        tls_context=server_ctx, require_starttls=True, authenticator=authenticator
    )
    smtp_env = {"HOST": "127.0.0.1", "PORT": str(controller.port), "USER": "alerts", "PASSWORD": "s3cret"}
    smtp_env |= {"FROM": "ctwatch@example.org", "SECURITY": "starttls", "CAFILE": cafile}
    for key, value in smtp_env.items():
        monkeypatch.setenv(f"CTWATCH_SMTP_{key}", value)
    try:
        (sink,) = sinks_from_config({}, {"email": ["ops@example.com"]})
        asyncio.run(sink.deliver(hostile_event(markers)))
    finally:
        controller.stop()
    assert logins == [LoginPassword(b"alerts", b"s3cret")]
    (env,) = inbox.envelopes
    assert env.rcpt_tos == ["ops@example.com"]
    assert "s3cret" not in repr(sink.settings)  # type: ignore[attr-defined]


def test_email_implicit_tls_from_config(tmp_path: Path, markers: Path) -> None:
    server_ctx, cafile = make_tls(tmp_path)
    controller, inbox = smtp_server(ssl_context=server_ctx)
    table = {"to": ["ops@example.com"], "smtp_host": "127.0.0.1", "smtp_port": controller.port}
    table |= {"smtp_security": "tls", "smtp_from": "ctwatch@example.org", "smtp_cafile": cafile}
    try:
        (sink,) = sinks_from_config({"email": table}, {})
        asyncio.run(sink.deliver({"event": "test", "id": "test:1"}))
    finally:
        controller.stop()
    (env,) = inbox.envelopes
    msg = email.message_from_bytes(env.original_content, policy=email.policy.default)
    assert msg["Subject"] == "[ctwatch] Test alert: this sink works"


def test_email_starttls_never_downgrades_and_failures_are_sink_errors(tmp_path: Path) -> None:
    _, cafile = make_tls(tmp_path)
    controller, inbox = smtp_server()  # offers no STARTTLS
    try:
        settings = SmtpSettings(host="127.0.0.1", port=controller.port, sender="c@example.org", cafile=cafile)
        with pytest.raises(SinkError, match="STARTTLS"):
            asyncio.run(EmailSink(["ops@example.com"], settings).deliver({"event": "test", "id": "t"}))
    finally:
        controller.stop()
    assert inbox.envelopes == []
    closed = SmtpSettings(
        host="127.0.0.1", port=free_port(), sender="c@example.org", security="plain", timeout=2
    )
    with pytest.raises(SinkError, match="refused"):
        asyncio.run(EmailSink(["ops@example.com"], closed).deliver({"event": "test", "id": "t"}))


# ---------------------------------------------------------------- webhook


def test_webhook_signs_body_and_retries_after_503(markers: Path) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=503 if len(seen) == 1 else 200)

    async def run() -> WebhookSink:
        async with http_server(handler) as base:
            sink = WebhookSink(f"{base}/hook/T0K3N?key=abc", secret="k3y", backoff=0.01)
            await sink.deliver(ev)
            return sink

    ev = hostile_event(markers)
    sink = asyncio.run(run())
    assert len(seen) == 2  # 503, then delivered
    for headers, body in seen:
        assert headers["Content-Type"] == "application/json"
        expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Ctwatch-Signature"], f"sha256={expected}")
        assert headers["X-Ctwatch-Event-Id"] == ev["id"]
        assert json.loads(body) == ev  # every byte of the event, NUL and CRLF as JSON escapes
    assert b"\x00" not in seen[0][1] and b"\r" not in seen[0][1]
    assert (
        "T0K3N" not in sink.name
        and "abc" not in sink.name
        and sink.name.startswith("webhook:http://127.0.0.1:")
    )
    assert_not_interpreted(markers)


@pytest.mark.parametrize(
    ("status", "attempts_seen", "message"),
    [(500, 3, "giving up after 3 attempts: HTTP 500"), (400, 1, "HTTP 400"), (302, 1, "HTTP 302")],
)
def test_webhook_failures(status: int, attempts_seen: int, message: str) -> None:
    paths: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.Response(status=status, headers={"Location": "/elsewhere"} if status == 302 else {})

    async def run() -> None:
        async with http_server(handler) as base:
            await WebhookSink(f"{base}/hook", attempts=3, backoff=0.01).deliver({"event": "test", "id": "t"})

    with pytest.raises(SinkError, match=message):
        asyncio.run(run())
    assert paths == ["/hook"] * attempts_seen  # a redirect is never followed


def test_webhook_timeout_is_retried_then_fails() -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1)
        return web.Response()

    async def run() -> float:
        async with http_server(handler) as base:
            sink = WebhookSink(f"{base}/slow", timeout=0.2, attempts=2, backoff=0)
            start = time.monotonic()
            with pytest.raises(SinkError, match="giving up after 2 attempts"):
                await sink.deliver({"event": "test", "id": "t"})
            return time.monotonic() - start

    assert asyncio.run(run()) < 0.9
    assert calls == 2


# ---------------------------------------------------------------- script


def test_script_gets_certspotter_variables_and_nothing_is_interpreted(
    tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "seen.json"
    script = write_script(
        tmp_path / "hook.py",
        f"""
env = dict(os.environ)
files = {{k: pathlib.Path(env[k]).read_text() for k in ("JSON_FILENAME", "TEXT_FILENAME", "CERT_FILENAME")}}
pathlib.Path({str(out)!r}).write_text(json.dumps({{"env": env, "files": files, "argv": sys.argv}}))
""",
    )
    ev = hostile_event(markers)
    sink = ScriptSink(str(script))
    monkeypatch.setenv("SERIAL", "stale value from ctwatch's own environment")
    monkeypatch.setenv("HOOK_SETTING", "inherited")
    asyncio.run(sink.deliver(ev))
    seen = json.loads(out.read_text())
    env, files = seen["env"], seen["files"]
    assert seen["argv"] == [str(script)]
    assert env["EVENT"] == "discovered_cert" and env["CTWATCH_EVENT"] == "discovered_cert"
    assert env["CTWATCH_EVENT_ID"] == ev["id"]
    assert env["WATCH_ITEM"] == ".example.com"
    assert env["DNS_NAMES"] == ",".join(n.replace("\x00", "") for n in ev["names"])  # verbatim but NUL
    assert f"$(touch {markers}/dollar)" in env["DNS_NAMES"] and "`touch" in env["DNS_NAMES"]
    assert env["SUBJECT_DN"] == "CN=evil.example.com\r\nBcc: victim@x"
    assert env["IP_ADDRESSES"] == "" and env["HOOK_SETTING"] == "inherited"
    passed_through = {
        "tbs_sha256": "TBS_SHA256",
        "cert_sha256": "CERT_SHA256",
        "pubkey_sha256": "PUBKEY_SHA256",
    }
    passed_through |= {"issuer": "ISSUER_DN", "serial": "SERIAL", "log_url": "LOG_URI"}
    assert {var: env[var] for var in passed_through.values()} == {v: ev[k] for k, v in passed_through.items()}
    assert env["ENTRY_INDEX"] == "123456789"
    assert env["NOT_BEFORE_RFC3339"] == ev["not_before"]
    assert env["NOT_AFTER_UNIXTIME"] == str(int(datetime.datetime.fromisoformat(ev["not_after"]).timestamp()))
    assert env["NOT_BEFORE"].endswith(" +0000 UTC")
    assert env["SUMMARY"].startswith("Unexpected certificate for .example.com")
    assert orjson.loads(files["JSON_FILENAME"]) == ev
    assert files["CERT_FILENAME"] == ev["pem"]
    assert files["TEXT_FILENAME"] == render_text(ev)
    assert not Path(env["JSON_FILENAME"]).parent.exists()  # removed after the script ended
    assert_not_interpreted(markers)


def test_script_failures_carry_output_and_timeouts_kill(tmp_path: Path) -> None:
    failing = write_script(tmp_path / "fail.py", "print('boom ' * 5000, file=sys.stderr); sys.exit(3)")
    with pytest.raises(SinkError, match=r"exit status 3: output: .*boom") as err:
        asyncio.run(ScriptSink(str(failing)).deliver({"event": "test", "id": "t"}))
    assert len(str(err.value)) < 2500  # output is bounded

    pid_file = tmp_path / "pid"
    slow = write_script(
        tmp_path / "slow.py", f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)"
    )
    start = time.monotonic()
    with pytest.raises(SinkError, match=r"killed after 0\.5s"):
        asyncio.run(ScriptSink(str(slow), timeout=0.5).deliver({"event": "test", "id": "t"}))
    assert time.monotonic() - start < 5
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text():
        assert time.monotonic() < deadline, "script still running after its timeout"
        time.sleep(0.05)


def test_script_environment_maps_other_events() -> None:
    misbehaviour = {"event": "log_misbehaviour", "id": "m:1", "log_url": "https://log.example/"}
    misbehaviour |= {"kind": "root_mismatch", "message": "x", "evidence": {"a": 1}}
    env = script_environment(misbehaviour, {})
    assert env["EVENT"] == "error" and env["CTWATCH_EVENT"] == "log_misbehaviour"
    assert env["LOG_URI"] == "https://log.example/" and "root_mismatch" in env["SUMMARY"]
    malformed = {"event": "malformed_cert", "id": "x", "log_url": "u", "index": 7, "error": "bad\x00 DER"}
    env = script_environment(malformed, {})
    assert (env["EVENT"], env["ENTRY_INDEX"], env["PARSE_ERROR"]) == ("malformed_cert", "7", "bad DER")
    lookalike = {
        "event": "lookalike",
        "id": "l",
        "brand": "paypal",
        "names": ["paypa1.com", "192.0.2.1", "::1"],
        "not_before": "garbage",
    }
    env = script_environment(lookalike, {})
    assert (env["EVENT"], env["WATCH_ITEM"], env["DNS_NAMES"]) == ("lookalike", "paypal", "paypa1.com")
    assert env["IP_ADDRESSES"] == "192.0.2.1,::1"  # split out of names, as certspotter reports them
    assert "NOT_BEFORE" not in env and "garbage" in env["VALIDITY_PARSE_ERROR"]


# ---------------------------------------------------------------- chat (apprise)


def test_apprise_json_delivers_inert_notification(markers: Path) -> None:
    received: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200 if len(received) == 1 else 500)

    async def run() -> AppriseSink:
        async with http_server(handler) as base:
            sink = AppriseSink(base.replace("http://", "json://") + "/notify")
            await sink.deliver(ev)
            with pytest.raises(SinkError, match="not delivered"):
                await sink.deliver(ev)
            return sink

    ev = hostile_event(markers)
    sink = asyncio.run(run())
    assert sink.name.startswith("apprise:json#")
    note = received[0]
    assert note["title"].startswith("[ctwatch] Unexpected certificate for .example.com")
    body = note["message"]
    assert "evil.example.com\\r\\nBcc: victim@\u2060x" in body and "\r" not in body and "\x00" not in body
    assert "@\u2060everyone" in body and "@everyone" not in body
    assert note["type"] == "warning"
    assert_not_interpreted(markers)


# ---------------------------------------------------------------- configuration


def test_sinks_from_config_builds_and_dedups(tmp_path: Path) -> None:
    script = write_script(tmp_path / "hook.py", "")
    cfg = {
        "webhook": [
            {
                "url": "https://hooks.example.com/services/T/B/SECRET",
                "secret": "k",
                "timeout": 5,
                "attempts": 2,
            }
        ],
        "email": {"to": ["ops@example.com"], "smtp_host": "smtp.example.com", "smtp_from": "ct@example.com"},
        "script": [{"path": str(script), "timeout": 30}],
        "apprise": [{"url": "ntfys://ntfy.example.com/topic"}],
        "jsonl": "/var/log/ctwatch.jsonl",  # another sink's setting: left alone
    }
    cli = {
        "webhook": ["https://hooks.example.com/services/T/B/SECRET", "https://other.example.com/h"],
        "email": ["sec@example.com"],
        "script": str(script),
        "apprise": ["ntfys://ntfy.example.com/topic"],
    }
    sinks = sinks_from_config(cfg, cli)
    names = [s.name for s in sinks]
    assert len(names) == len(set(names)) == 6
    assert [n.split(":")[0] for n in names] == ["webhook", "webhook", "email", "email", "script", "apprise"]
    assert names[2:4] == ["email:ops@example.com", "email:sec@example.com"]
    assert all("SECRET" not in n and "topic" not in n for n in names)
    assert sinks[3].settings.host == "smtp.example.com"  # type: ignore[attr-defined]  # --email uses [alerts.email]
    assert sinks_from_config({}, {}) == []


MAIL = {"to": ["a@example.com"], "smtp_host": "smtp.example.com", "smtp_from": "c@example.com"}
HOOK = "https://x.example/"


@pytest.mark.parametrize(
    ("cfg", "cli", "message"),
    [
        (
            {"webhook": [{"url": HOOK, "secert": "k"}]},
            {},
            r"alerts.webhook\[0\]: unknown setting\(s\) secert",
        ),
        ({"webhook": [{"secret": "k"}]}, {}, r"alerts.webhook\[0\]: url is required"),
        ({"webhook": [{"url": "ftp://x.example/"}]}, {}, "must be http:// or https://"),
        ({"webhook": [{"url": HOOK, "timeout": -1}]}, {}, "timeout must be a positive number"),
        ({"webhook": {"url": HOOK, "attempts": 1.5}}, {}, "attempts must be a whole number"),
        ({"webhook": HOOK}, {}, "must be a table or an array of tables"),
        ({"email": {**MAIL, "to": []}}, {}, "to must be a non-empty list"),
        ({"email": {"to": ["ops@example.com"]}}, {}, "need an SMTP host"),
        ({"email": {**MAIL, "to": ["a@example.com\r\nBcc: victim@x"]}}, {}, "not an email address"),
        ({"email": {**MAIL, "smtp_security": "ssl"}}, {}, "security must be one of"),
        ({"email": {**MAIL, "smtp_security": "plain", "smtp_password": "p"}}, {}, "without TLS"),
        ({"email": {**MAIL, "smtp_port": "25"}}, {}, "smtp_port must be a whole number"),
        ({"email": {**MAIL, "smtp_from": None}}, {}, "need a sender"),
        ({"script": [{"path": "/nonexistent/hook"}]}, {}, "not an executable file"),
        ({}, {"script": __file__}, "not an executable file"),
        ({"apprise": [{"url": "nosuchscheme://x"}]}, {}, "not a usable apprise URL"),
    ],
)
def test_sinks_from_config_rejects_bad_settings(
    cfg: dict[str, Any], cli: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "SECURITY", "TIMEOUT", "CAFILE"):
        monkeypatch.delenv(f"CTWATCH_SMTP_{key}", raising=False)
    with pytest.raises(ConfigError, match=message):
        sinks_from_config(cfg, cli)


def test_smtp_environment_numbers_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTWATCH_SMTP_PORT", "twenty-five")
    with pytest.raises(ConfigError, match="CTWATCH_SMTP_PORT must be a number"):
        sinks_from_config({}, {"email": ["ops@example.com"]})
