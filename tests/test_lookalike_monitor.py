"""Issue 6 end to end: ``ctwatch run`` with a ``[[brand]]`` reports lookalike certificates.

The local test log holds a couple of thousand random certificates, the brand's own names, names
imitating it in each way the detector knows, and certificates for a watched name. Only the
imitations become ``lookalike`` events, only the watched names ``discovered_cert`` ones, and both
reach the sinks like any alert.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ctwatch.testlog import Plant, TestLogServer, generate_corpus

from .helpers import ctwatch, planted, read_events
from .sinks_support import HttpReceiver

pytestmark = pytest.mark.timeout(120)

# planted name -> (the identity flagged, its techniques)
LOOKALIKES = {
    "paypa1.com": ("paypa1.com", ["homoglyph"]),
    "xn--pypal-4ve.com": ("xn--pypal-4ve.com", ["homoglyph", "mixed_script"]),  # Cyrillic а
    "pаypal.com": ("xn--pypal-4ve.com", ["homoglyph", "mixed_script"]),  # the same, in UTF-8
    "paypol.com": ("paypol.com", ["typo"]),
    "paypal-login-secure.com": ("paypal-login-secure.com", ["combosquat"]),
    "paypal.com.evil.test": ("paypal.com.evil.test", ["brand_in_subdomain"]),
    "login.paypal.com-verify.top": ("login.paypal.com-verify.top", ["brand_in_subdomain"]),
    "paypal.co": ("paypal.co", ["tld_swap"]),
}
NOT_FLAGGED = (
    "www.paypal.com",  # the brand's own
    "www.paypal.de",  # the brand's own too (else a TLD swap)
    "paypal-partner.com",  # allow-listed (else a combosquat)
    "mypaypal.com",  # a combosquat, but scoring below the threshold
)
WATCHED = ("www.example.com", "shop.example.com")
CONFIG = """
[[brand]]
domains = ["paypal.com", "paypal.de"]
allow = ["paypal-partner.com"]

[lookalike]
threshold = 0.7
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lookalike") / "log"
    generate_corpus(d, 2000, seed=23, plants=[Plant((n,)) for n in (*LOOKALIKES, *NOT_FLAGGED, *WATCHED)])
    return d


def test_monitor_reports_lookalikes_and_only_watched_names(corpus: Path, tmp_path: Path) -> None:
    alerts, cfg, watch = tmp_path / "alerts.jsonl", tmp_path / "config.toml", tmp_path / "watchlist"
    watch.write_text(".example.com\n")
    with HttpReceiver() as hook, TestLogServer(corpus) as log:
        cfg.write_text(CONFIG + f'\n[[alerts.webhook]]\nurl = "{hook.url}/hook"\n')
        r = ctwatch(
            "run",
            "--once",
            "--logs",
            log.loglist_path,
            "--data-dir",
            tmp_path / "d",
            "--alerts-jsonl",
            alerts,
            "--watch",
            watch,
            "--config",
            cfg,
        )
        assert r.returncode == 0, r.stderr
    events = read_events(alerts)
    ids = Counter(e["id"] for e in events)
    assert ids == Counter(b["id"] for b in hook.bodies()) and max(ids.values()) == 1  # every sink, once

    manifest = json.loads((corpus / "manifest.json").read_text())["planted"]
    tbs = {r["names"][0]: r["tbs_sha256"] for r in manifest}
    looks = {e["tbs_sha256"]: e for e in events if e["event"] == "lookalike"}
    assert set(looks) == {tbs[name] for name in LOOKALIKES}, "every imitation, and nothing random or allowed"
    for name, (flagged, techniques) in LOOKALIKES.items():
        event = looks[tbs[name]]
        assert event["id"] == f"lookalike:{tbs[name]}"
        assert event["brand"] == "paypal" and event["lookalike_name"] == flagged, name
        assert event["techniques"] == techniques, name
        assert 0.7 <= event["score"] <= 1
        assert "paypal" in event["explanation"] and "\n" not in event["explanation"]
        assert flagged in event["names"] and event["cert_sha256"] and event["issuer"]

    found = {e["tbs_sha256"] for e in events if e["event"] == "discovered_cert"}
    assert found == set(planted(corpus, watched_suffix=".example.com"))
    assert {tbs[name] for name in WATCHED} == found
    assert {e["event"] for e in events} == {"lookalike", "discovered_cert"}
