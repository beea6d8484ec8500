"""Issue 5 end to end: the real ``ctwatch run`` CLI against the local test log, with real sinks.

A webhook receiver (aiohttp, checking the HMAC), an SMTP server (aiosmtpd), a hook script that
records its argv and environment, and an apprise ``json://`` receiver all run on loopback. Every
test counts what each of them received by event id: every alert once, none twice.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ctwatch.testlog import Plant, TestLogServer
from ctwatch.testlog.ca import Issuer, issuer_from, spki_der

from .conftest import WATCHED
from .helpers import CTWATCH, ctwatch, only_protocol, planted, read_events, spawn
from .sinks_support import (
    HttpReceiver,
    Inbox,
    free_port,
    recording_script,
    script_runs,
    smtp_server,
    write_script,
)

pytestmark = pytest.mark.timeout(120)

SECRET = "hmac-s3cret"
OPS = "ops@example.com"
LONG_LABEL = "a" * 4000


# --- the receivers -------------------------------------------------------------------------------


def parse_mail(envelope: Any) -> email.message.EmailMessage:
    msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def chat_event_id(note: dict[str, Any]) -> str:
    """The event id in an apprise notification (its body is the rendered event)."""
    (event_id,) = re.findall(r"^ *Event ID = (\S+)$", note["message"], re.MULTILINE)
    return event_id


@dataclass
class Receivers:
    """Every kind of sink, receiving on loopback; ``config`` points ctwatch at all of them."""

    webhook: HttpReceiver
    chat: HttpReceiver
    smtp: Controller | None
    smtp_port: int
    inbox: Inbox
    script: Path
    script_out: Path
    jsonl: Path

    def config(self, path: Path) -> Path:
        path.write_text(f"""
[alerts]
[[alerts.webhook]]
url = "{self.webhook.url}/hook"
secret = "{SECRET}"
attempts = 1
timeout = 10

[alerts.email]
to = ["{OPS}"]
smtp_host = "127.0.0.1"
smtp_port = {self.smtp_port}
smtp_security = "plain"
smtp_from = "ctwatch@example.org"
smtp_timeout = 5

[[alerts.script]]
path = "{self.script}"

[[alerts.apprise]]
url = "{self.chat.url.replace("http://", "json://")}/notify"
""")
        return path

    def smtp_down(self) -> None:
        assert self.smtp is not None
        self.smtp.stop()
        self.smtp = None

    def smtp_up(self) -> None:
        self.smtp, _ = smtp_server(self.smtp_port, self.inbox)

    def ids(self) -> dict[str, Counter[str]]:
        """Event ids each sink received, with how often."""
        return {
            "jsonl": Counter(e["id"] for e in read_events(self.jsonl)),
            "webhook": Counter(b["id"] for b in self.webhook.bodies()),
            "email": Counter(parse_mail(m)["X-Ctwatch-Event-Id"] for m in self.inbox.envelopes),
            "script": Counter(r["env"]["CTWATCH_EVENT_ID"] for r in script_runs(self.script_out)),
            "apprise": Counter(chat_event_id(n) for n in self.chat.bodies()),
        }

    def assert_each_once(self, ids: set[str]) -> None:
        """Every sink received exactly the events ``ids``, each exactly once."""
        for sink, got in self.ids().items():
            assert got == Counter(ids), f"{sink}: {got}"
        assert self.webhook.bad_signatures == 0


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Receivers]:
    with HttpReceiver(SECRET) as hook, HttpReceiver() as chat:
        smtp, inbox = smtp_server()
        runs = tmp_path / "runs"
        script = recording_script(tmp_path / "hook.py", runs)
        r = Receivers(hook, chat, smtp, smtp.port, inbox, script, runs, tmp_path / "alerts.jsonl")
        try:
            yield r
        finally:
            if r.smtp is not None:
                r.smtp.stop()


# --- running ctwatch -----------------------------------------------------------------------------


def run_args(loglist: Path, data: Path, jsonl: Path, *extra: str | Path) -> tuple[str | Path, ...]:
    return ("run", "--once", "--logs", loglist, "--data-dir", data, "--alerts-jsonl", jsonl, *extra)


def status(data: Path) -> dict[str, Any]:
    r = ctwatch("status", "--data-dir", data, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sinks_status(data: Path) -> dict[str, dict[str, Any]]:
    """``ctwatch status`` per sink kind (each test has one sink of each kind)."""
    return {s["sink"].split(":")[0]: s for s in status(data)["sinks"]}


def wait_for(
    condition: Callable[[], object], what: str, proc: subprocess.Popen[str] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert proc is None or proc.poll() is None, f"ctwatch exited ({proc.returncode}) waiting for {what}"
        time.sleep(0.05)


def kill_9(p: subprocess.Popen[str]) -> None:
    """SIGKILL ``ctwatch`` and its scan workers, as a service manager kills a service's process group."""
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()


def kill_9_when_holding(hook: HttpReceiver, *args: str | Path) -> None:
    """Start ``ctwatch``, SIGKILL it while the webhook holds a delivery: detected, not yet delivered."""
    hook.holding.clear()
    p = spawn(*args, start_new_session=True)
    try:
        wait_for(hook.holding.is_set, "a webhook delivery", p)
    finally:
        kill_9(p)


def discovered_ids(corpus: Path) -> set[str]:
    return {f"discovered_cert:{tbs}" for tbs in planted(corpus, watched_suffix=WATCHED)}


# --- 1. every sink, exactly once -----------------------------------------------------------------


def test_every_planted_certificate_reaches_every_sink_once(
    small_corpus: Path, tmp_path: Path, watchlist: Path, receivers: Receivers
) -> None:
    cfg = receivers.config(tmp_path / "config.toml")
    want = discovered_ids(small_corpus)
    with TestLogServer(small_corpus) as log:
        args = run_args(
            log.loglist_path, tmp_path / "d", receivers.jsonl, "--watch", watchlist, "--config", cfg
        )
        r = ctwatch(*args)
        assert r.returncode == 0, r.stderr
        receivers.assert_each_once(want)
        r = ctwatch(*args)
        assert r.returncode == 0, r.stderr
    receivers.assert_each_once(want)  # the second run repeated nothing

    events = {e["id"]: e for e in read_events(receivers.jsonl)}
    for headers, body in receivers.webhook.accepted:
        event = json.loads(body)
        assert event == events[event["id"]]  # the webhook body is the JSONL event
        assert (headers["X-Ctwatch-Event-Id"], headers["X-Ctwatch-Event"]) == (event["id"], "discovered_cert")
    for run in script_runs(receivers.script_out):
        env, event = run["env"], run["event"]
        assert run["argv"] == [str(receivers.script)]
        assert event == events[env["CTWATCH_EVENT_ID"]]
        assert env["EVENT"] == "discovered_cert" and env["WATCH_ITEM"] == WATCHED
        assert env["DNS_NAMES"] == ",".join(event["names"])
        assert (env["TBS_SHA256"], env["CERT_SHA256"], env["PUBKEY_SHA256"]) == (
            event["tbs_sha256"],
            event["cert_sha256"],
            event["pubkey_sha256"],
        )
        assert (env["LOG_URI"], env["ENTRY_INDEX"], env["ISSUER_DN"]) == (
            event["log_url"],
            str(event["index"]),
            event["issuer"],
        )
    for envelope in receivers.inbox.envelopes:
        msg = parse_mail(envelope)
        event = events[msg["X-Ctwatch-Event-Id"]]
        assert envelope.rcpt_tos == [OPS]
        subject = str(msg["Subject"]).lstrip()  # the folded header may start its value on a new line
        assert subject.startswith(f"[ctwatch] Unexpected certificate for {WATCHED}: {event['names'][0]}")
        assert event["cert_sha256"] in msg.get_body(("html",)).get_content()
    for note in receivers.chat.bodies():
        assert note["title"].startswith("[ctwatch] Unexpected certificate for .example.com: ")


# --- 2. exactly once across kill -9 and sink outages ---------------------------------------------


def test_exactly_once_across_kill_9_and_sink_outages(
    small_corpus: Path, tmp_path: Path, watchlist: Path, receivers: Receivers
) -> None:
    hook, data = receivers.webhook, tmp_path / "d"
    cfg = receivers.config(tmp_path / "config.toml")
    want = discovered_ids(small_corpus)
    with TestLogServer(small_corpus) as log:
        args = run_args(log.loglist_path, data, receivers.jsonl, "--watch", watchlist, "--config", cfg)

        # Killed while the first delivery is in flight: every alert detected, none out but to the file.
        hook.hold = 30
        kill_9_when_holding(hook, *args)
        assert status(data)["events"] == len(want)
        assert {k: sum(v.values()) for k, v in receivers.ids().items() if k != "jsonl"} == {
            "webhook": 0,
            "email": 0,
            "script": 0,
            "apprise": 0,
        }
        # Killed after two webhook deliveries: those two are acknowledged and must not repeat.
        hook.hold_from = 2
        kill_9_when_holding(hook, *args)
        assert len(hook.accepted) == 2

        # The webhook answers 503 and the mail relay is down; a new certificate arrives meanwhile.
        hook.hold, hook.status = 0, 503
        receivers.smtp_down()
        (new,) = {r["tbs_sha256"] for r in log.grow(200, [Plant(("outage.example.com",))])}
        want.add(f"discovered_cert:{new}")
        r = ctwatch(*args)
        assert r.returncode == 0, r.stderr  # a sink that is down does not stop monitoring
        assert "not yet delivered" in r.stderr
        sinks = sinks_status(data)
        assert {k: s["backlog"] for k, s in sinks.items()} == {
            "jsonl": 0,
            "webhook": len(want) - 2,
            "email": len(want),
            "script": 0,
            "apprise": 0,
        }
        assert "HTTP 503" in sinks["webhook"]["last_error"] and "refused" in sinks["email"]["last_error"]
        ids = receivers.ids()
        assert ids["script"] == ids["apprise"] == ids["jsonl"] == Counter(want)

        # Killed again while mail is still down and the webhook is back but slow.
        hook.status, hook.hold, hook.hold_from = 200, 30, 3
        kill_9_when_holding(hook, *args)

        # Everything back: each alert reaches each sink, and nothing arrives twice.
        hook.hold = 0
        receivers.smtp_up()
        r = ctwatch(*args)
        assert r.returncode == 0, r.stderr
    receivers.assert_each_once(want)
    assert {s["backlog"] for s in sinks_status(data).values()} == {0}


# --- 3. hostile certificates arrive inert --------------------------------------------------------


HOSTILE = "hostile.example.com"


def hostile_names(markers: Path) -> dict[str, list[str]]:
    """Names as planted in certificates -> the identities the monitor must make of them.

    Identities are lower-cased, IDNs punycoded, split at NUL and at the first ``/`` (as certspotter
    does), and a label with control characters becomes ``<unparsable>`` (matching any label).
    """
    h = HOSTILE
    return {
        f"crlf.{h}\r\nBcc: victim@x": ["crlf.hostile.example.<unparsable>"],
        f"<script>alert(1)</script>.{h}": ["<script>alert(1)<", f"<script>alert(1)</script>.{h}"],
        f"$(touch {markers}/dollar).{h}": ["$(touch", f"$(touch {markers}/dollar).{h}"],
        f"`touch {markers}/tick`;touch {markers}/semi;.{h}": [
            "`touch",
            f"`touch {markers}/tick`;touch {markers}/semi;.{h}",
        ],
        f"quote'\"q.{h}": [f"quote'\"q.{h}"],
        f"nul\x00byte.{h}": ["nul", f"<unparsable>.{h}"],
        f"{LONG_LABEL}.{h}": [f"{LONG_LABEL}.{h}"],
        # non-ASCII bytes are read as UTF-8 and as Latin-1 ("bã¼cher"): CAs use both
        "Bücher.HOSTILE.example.COM": [f"xn--bcher-kva.{h}", f"xn--bcher-lka6y.{h}"],
    }


def test_hostile_certificates_reach_every_sink_inert(
    small_corpus: Path, tmp_path: Path, receivers: Receivers
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    hostile = hostile_names(markers)
    watch = tmp_path / "watchlist"
    watch.write_text(f".{HOSTILE}\n")
    cfg = receivers.config(tmp_path / "config.toml")
    # A second hook echoes certificate text and fails: its output lands in ctwatch's log lines.
    failing = write_script(
        tmp_path / "fail.py", 'print(os.environ["SUBJECT_DN"], os.environ["DNS_NAMES"])\nsys.exit(3)'
    )
    cfg.write_text(cfg.read_text() + f'\n[[alerts.script]]\npath = "{failing}"\n')
    with TestLogServer(small_corpus) as log:
        records = log.grow(40, [Plant((name,)) for name in hostile])  # the CRLF one first
        r = ctwatch(
            *run_args(log.loglist_path, tmp_path / "d", receivers.jsonl, "--watch", watch, "--config", cfg)
        )
    assert r.returncode == 0, r.stderr
    assert "exit status 3: output: CN=crlf.hostile.example.com\\r\\nBcc: victim@x" in r.stderr
    assert "\r" not in r.stderr and "\nBcc" not in r.stderr  # log lines hold certificate text escaped
    by_tbs = {rec["tbs_sha256"]: rec["names"][0] for rec in records}
    receivers.assert_each_once({f"discovered_cert:{tbs}" for tbs in by_tbs})

    events = {e["id"]: e for e in read_events(receivers.jsonl)}  # every line parsed as JSON
    for tbs, planted_name in by_tbs.items():
        assert events[f"discovered_cert:{tbs}"]["names"] == hostile[planted_name], planted_name
    by_name = {e["names"][0]: e for e in events.values()}
    assert by_name[f"xn--bcher-kva.{HOSTILE}"]["names_unicode"][0] == f"bücher.{HOSTILE}"

    for headers, body in receivers.webhook.accepted:
        assert b"\r" not in body and b"\x00" not in body
        assert json.loads(body) == events[headers["X-Ctwatch-Event-Id"]]
    for envelope in receivers.inbox.envelopes:
        assert envelope.rcpt_tos == [OPS]  # nobody was added by a header in a certificate
        msg = parse_mail(envelope)
        head = envelope.original_content.split(b"\r\n\r\n")[0]
        assert b"victim" not in head and b"\x00" not in envelope.original_content
        assert "Bcc" not in msg and not msg.defects
        assert "<script>" not in msg.get_body(("html",)).get_content()
        assert "\r" not in msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # no lone CR
    tag = by_name["<script>alert(1)<"]["id"]
    (mail,) = [m for m in map(parse_mail, receivers.inbox.envelopes) if m["X-Ctwatch-Event-Id"] == tag]
    assert f"&lt;script&gt;alert(1)&lt;/script&gt;.{HOSTILE}" in mail.get_body(("html",)).get_content()
    for run in script_runs(receivers.script_out):
        env, event = run["env"], events[run["env"]["CTWATCH_EVENT_ID"]]
        assert run["argv"] == [str(receivers.script)]  # nothing split or expanded
        assert env["DNS_NAMES"] == ",".join(event["names"])
        assert env["SUBJECT_DN"] == event["subject"].replace("\x00", "")
    crlf = by_name[f"crlf.{HOSTILE[:-4]}.<unparsable>"]
    assert crlf["subject"] == f"CN=crlf.{HOSTILE}\r\nBcc: victim@x"  # data, verbatim
    for note in receivers.chat.bodies():
        assert "\r" not in note["message"] + note["title"] and "\x00" not in note["message"]
    assert list(markers.iterdir()) == []  # no shell ever ran certificate text


# --- 4. policy ----------------------------------------------------------------------------------


def forged_issuer(real: Issuer) -> Issuer:
    """A CA whose certificates copy the test CA's names (its DN and its root's) under new keys."""
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    real_root = x509.load_der_x509_certificate(real.root_der)

    def ca(subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(real_root.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(real.cert.not_valid_before_utc)
            .not_valid_after(real.cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )

    return issuer_from(
        real.name, key, ca(real.cert.subject, key.public_key()), ca(real_root.subject, root_key.public_key())
    )


def test_policy_silences_exactly_what_it_authorises(small_corpus: Path, tmp_path: Path) -> None:
    alerts, data = tmp_path / "alerts.jsonl", tmp_path / "d"
    with TestLogServer(small_corpus) as log:
        keys = log.store.keys
        test_ca = keys.test_ca.issuer_key_hash.hex()
        plants = log.grow(
            60,
            [
                Plant(("ok.issuer.example.com",)),
                Plant(("evil.issuer.example.com",), True),
                Plant(("t1.tbs.example.com",)),
                Plant(("t2.tbs.example.com",)),
                Plant(("ok.loud.example.com",)),
            ],
        )
        tbs = {p["names"][0]: p["tbs_sha256"] for p in plants}
        forged = forged_issuer(keys.test_ca)
        tbs["forged.issuer.example.com"] = log.log_certificate(["forged.issuer.example.com"], forged)[0][
            "tbs_sha256"
        ]
        owned = ec.generate_private_key(ec.SECP256R1())
        for name, key in (("k1.key.example.com", owned), ("k2.key.example.com", None)):
            tbs[name] = log.log_certificate([name], keys.test_ca, key)[0]["tbs_sha256"]

        cfg = tmp_path / "config.toml"
        cfg.write_text(f"""
[[watch]]
name = ".issuer.example.com"
authorised_issuers = ["{test_ca}"]
severity = "high"

[[watch]]
name = ".key.example.com"
authorised_keys = ["{hashlib.sha256(spki_der(owned)).hexdigest()}"]
severity = "medium"

[[watch]]
name = ".tbs.example.com"
authorised_tbs = ["{tbs["t1.tbs.example.com"]}"]

[[watch]]
name = ".loud.example.com"
authorised_issuers = ["{test_ca.upper()}"]
report_authorised = true
""")
        r = ctwatch(*run_args(log.loglist_path, data, alerts, "--config", cfg))
    assert r.returncode == 0, r.stderr
    events = [e for e in read_events(alerts) if e["event"] == "discovered_cert"]
    reported = {e["names"][0]: e for e in events}
    assert len(reported) == len(events)  # certificate and precertificate, in two logs: one alert
    silent = {"ok.issuer.example.com", "k1.key.example.com", "t1.tbs.example.com"}
    assert set(reported) == set(tbs) - silent
    expect = {
        "evil.issuer.example.com": (True, "high"),
        "forged.issuer.example.com": (True, "high"),
        "k2.key.example.com": (True, "medium"),
        "t2.tbs.example.com": (True, "critical"),
        "ok.loud.example.com": (False, "info"),
    }
    assert {n: (e["unexpected"], e["severity"]) for n, e in reported.items()} == expect
    assert reported["ok.loud.example.com"]["policy_rule"] == "authorised_issuers[.loud.example.com]"
    forged_event = reported["forged.issuer.example.com"]
    assert forged_event["issuer"] == reported["ok.loud.example.com"]["issuer"]  # the DN says test CA...
    assert forged_event["issuer_spki_sha256"] == forged.issuer_key_hash.hex() != test_ca  # ...the key not
    db = sqlite3.connect(data / "state.sqlite")
    rows = dict(db.execute("SELECT id, silent FROM events WHERE id LIKE 'discovered_cert:%'").fetchall())
    assert {i for i, s in rows.items() if s} == {f"discovered_cert:{tbs[n]}" for n in silent}
    assert set(rows) == {f"discovered_cert:{t}" for t in tbs.values()}
    db.close()


# --- 5. reload while running --------------------------------------------------------------------


def test_daemon_reloads_watchlist_and_refuses_a_broken_config(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    corpus = tmp_path / "log"
    shutil.copytree(small_corpus, corpus)  # persisted growth: a restarted log serves the same tree
    alerts, stderr_path, cfg = tmp_path / "alerts.jsonl", tmp_path / "stderr", tmp_path / "config.toml"
    good = "[logs]\npoll_interval = 0.5\nmax_retries = 1\ntimeout = 2\n"
    cfg.write_text(good)
    port = free_port()

    def reported(name: str) -> list[dict[str, Any]]:
        return [e for e in read_events(alerts) if e["event"] == "discovered_cert" and name in e["names"]]

    with TestLogServer(corpus, listen=f"127.0.0.1:{port}", persist=True) as log, stderr_path.open("w") as err:
        loglist = shutil.copy(log.loglist_path, tmp_path / "list.json")
        urls = (log.rfc6962_url, log.static_url)
        p = subprocess.Popen(
            [
                *CTWATCH,
                "run",
                "--logs",
                loglist,
                "--data-dir",
                tmp_path / "d",
                "--alerts-jsonl",
                alerts,
                "--watch",
                watchlist,
                "--config",
                cfg,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            first = len(discovered_ids(small_corpus))
            wait_for(lambda: len(read_events(alerts)) == first, "the first alerts", p)
            # SIGHUP with a broken config (same mtime: only the signal reloads it): refused, old rules stay.
            stamp = cfg.stat()
            cfg.write_text(good + "[monitor\n")
            os.utime(cfg, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: "config refused" in stderr_path.read_text(), "the refusal", p)
            assert "line 5" in stderr_path.read_text()
            log.grow(100, [Plant(("after-hup.example.com",))])
            wait_for(lambda: reported("after-hup.example.com"), "an alert under the old rules", p)

            cfg.write_text(good)
            log.close()  # the log is gone: whatever is reported now comes from the local index
            watchlist.write_text(f"{WATCHED}\nnotexample.com\n")
            wait_for(lambda: reported("notexample.com"), "the backfilled alert", p)
            (event,) = reported("notexample.com")
            assert event["backfill"] is True and event["watch_item"] == "notexample.com"
            assert event["log_url"] in urls

            # The log comes back where it was; the daemon catches up and stops cleanly on SIGTERM.
            with TestLogServer(corpus, listen=f"127.0.0.1:{port}", persist=True) as back:
                back.grow(100, [Plant(("back.example.com",))])
                wait_for(lambda: reported("back.example.com"), "an alert after the log came back", p)
                wait_for(
                    lambda: all(
                        row["lag"] == 0 and row["last_error"] is None
                        for row in status(tmp_path / "d")["logs"]
                    ),
                    "the catch-up",
                    p,
                )
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
        finally:
            if p.poll() is None:
                kill_9(p)
    assert p.returncode == 0, stderr_path.read_text()
    assert "Traceback" not in stderr_path.read_text()
    assert Counter(e["id"] for e in read_events(alerts)).most_common(1)[0][1] == 1


# --- 6. backfill after a restart ----------------------------------------------------------------


def test_newly_watched_name_is_backfilled_without_the_log(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    alerts, data = tmp_path / "alerts.jsonl", tmp_path / "d"
    with TestLogServer(small_corpus) as log:
        loglist = shutil.copy(log.loglist_path, tmp_path / "list.json")
        r = ctwatch(*run_args(loglist, data, alerts, "--watch", watchlist))
        assert r.returncode == 0, r.stderr
    before = read_events(alerts)
    assert not [e for e in before if "example.com.evil.test" in e["names"]]
    watchlist.write_text(f"{WATCHED}\n.evil.test\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logs]\nmax_retries = 1\ntimeout = 2\n")
    r = ctwatch(*run_args(loglist, data, alerts, "--watch", watchlist, "--config", cfg))
    assert r.returncode == 4, r.stderr  # the log is unreachable, yet the earlier certificate is reported
    after = read_events(alerts)
    assert after[: len(before)] == before
    (event,) = after[len(before) :]
    assert event["event"] == "discovered_cert" and event["backfill"] is True
    assert event["names"] == ["example.com.evil.test"] and event["watch_item"] == ".evil.test"
    want = {
        r["tbs_sha256"]
        for r in json.loads((small_corpus / "manifest.json").read_text())["planted"]
        if r["names"] == ["example.com.evil.test"]
    }
    assert {event["tbs_sha256"]} == want


# --- 7. health alerts ---------------------------------------------------------------------------


def test_stale_and_unreachable_logs_are_alerts(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        doc = json.loads(log.loglist_path.read_text())
        for op in doc["operators"]:
            for entry in op["logs"] + op["tiled_logs"]:
                entry["mmd"] = 1
        stale_list = tmp_path / "stale.json"
        stale_list.write_text(json.dumps(doc))
        time.sleep(1.2)  # the test log signed its head at start: it is now older than the MMD
        r = ctwatch(*run_args(stale_list, tmp_path / "d1", alerts, "--watch", watchlist))
        assert r.returncode == 0, r.stderr
        urls = {log.rfc6962_url, log.static_url}
        dead_list = only_protocol(log.loglist_path, "rfc6962", tmp_path / "dead.json")
    stale = [e for e in read_events(alerts) if e["event"] == "log_stale"]
    assert {e["log_url"] for e in stale} == urls and len(stale) == 2
    assert all("MMD" in e["message"] and e["sth"]["tree_size"] == 3000 for e in stale)

    cfg = tmp_path / "config.toml"
    cfg.write_text("[logs]\nmax_retries = 1\ntimeout = 2\n[monitor]\nunreachable_after = 1\n")
    args = run_args(dead_list, tmp_path / "d2", alerts, "--watch", watchlist, "--config", cfg)
    assert ctwatch(*args).returncode == 4
    assert not [e for e in read_events(alerts) if e["event"] == "log_unreachable"]  # not down long enough
    time.sleep(1.1)
    for _ in range(2):
        r = ctwatch(*args)
        assert r.returncode == 4, r.stderr
    (down,) = [e for e in read_events(alerts) if e["event"] == "log_unreachable"]  # once per outage
    assert down["log_url"] in urls and "unreachable since" in down["message"]


# --- 8. ctwatch test-alert ----------------------------------------------------------------------


def test_test_alert_says_which_sinks_work(tmp_path: Path, receivers: Receivers) -> None:
    smtp_env = {
        "CTWATCH_SMTP_HOST": "127.0.0.1",
        "CTWATCH_SMTP_PORT": str(receivers.smtp_port),
        "CTWATCH_SMTP_SECURITY": "plain",
        "CTWATCH_SMTP_FROM": "ctwatch@example.org",
    }
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[alerts.webhook]]\nurl = "{receivers.webhook.url}/hook"\nsecret = "{SECRET}"\n')
    r = ctwatch(
        "test-alert",
        "--config",
        cfg,
        "--alerts-jsonl",
        receivers.jsonl,
        "--email",
        OPS,
        "--script",
        receivers.script,
        "--apprise",
        receivers.chat.url.replace("http://", "json://"),
        env=smtp_env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 5
    kinds = {line.split()[1].split(":")[0] for line in lines}
    assert kinds == {"jsonl", "webhook", "email", "script", "apprise"}
    ids = receivers.ids()
    (event_id,) = ids["jsonl"]
    assert re.fullmatch(r"test:[0-9a-f-]{36}", event_id)
    for sink, got in ids.items():
        assert got == Counter([event_id]), sink
    assert parse_mail(receivers.inbox.envelopes[0])["Subject"] == "[ctwatch] Test alert: this sink works"
    assert script_runs(receivers.script_out)[0]["env"]["EVENT"] == "test"

    dead = f"http://127.0.0.1:{free_port()}/hook"
    cfg.write_text(f'[[alerts.webhook]]\nurl = "{dead}"\nattempts = 1\n')
    r = ctwatch("test-alert", "--config", cfg, "--alerts-jsonl", receivers.jsonl)
    assert r.returncode == 1
    ok, failed = sorted(r.stdout.splitlines(), key=lambda line: line.startswith("FAILED"))
    assert ok.startswith("ok      jsonl:")
    assert failed.startswith("FAILED  webhook:http://127.0.0.1:") and "giving up after 1 attempts" in failed
    assert "Cannot connect" in failed
    assert len(read_events(receivers.jsonl)) == 2
