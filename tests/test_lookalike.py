"""Lookalike detection: every technique on names built by hand, what must never be flagged,
config parsing, hostile input, and the ``ctwatch lookalike`` command."""

from __future__ import annotations

import random
import subprocess
import sys

import orjson
import pytest

from ctwatch.errors import ConfigError
from ctwatch.match.lookalike import TECHNIQUES, Brand, Finding, LookalikeDetector, brands_from_config

BRANDS = [
    Brand("paypal", ("paypal.com", "paypal.me"), keywords=("venmo",), allow=("paypal-community.com",)),
    Brand("apple", ("apple.com", "icloud.com")),
    Brand("facebook", ("facebook.com", "fb.com")),
    Brand("microsoft", ("microsoft.com", "live.com")),
    Brand("google", ("google.com", "googleapis.com", "blogspot.com")),
]


@pytest.fixture(scope="module")
def detector() -> LookalikeDetector:
    return LookalikeDetector(BRANDS)


def flagged(detector: LookalikeDetector, name: str, brand: str, technique: str) -> Finding:
    """Assert that ``name`` is flagged for ``brand`` with ``technique``; return the finding."""
    finding = detector.check(name)
    assert finding is not None, f"{name} not flagged"
    assert (finding.brand, finding.name) == (brand, name)
    assert technique in finding.techniques, f"{name}: {finding}"
    assert set(finding.techniques) <= set(TECHNIQUES)
    assert 0.5 <= finding.score <= 1.0
    assert finding.explanation and "\n" not in finding.explanation
    return finding


@pytest.mark.parametrize(
    ("name", "brand"),
    [
        ("xn--pypal-4ve.com", "paypal"),  # Cyrillic а, as the certificate holds it
        ("pаypal.com", "paypal"),  # the same, in Unicode
        ("рaypal.com", "paypal"),  # Cyrillic р
        ("facebооk.com", "facebook"),  # Cyrillic о
        ("microsоft.net", "microsoft"),  # Cyrillic о under another suffix
        ("gοοgle.com", "google"),  # Greek ο
        ("αpple.com", "apple"),  # Greek α
        ("ｐａｙｐａｌ.com", "paypal"),  # fullwidth letters
        ("pay\u200dpal.com", "paypal"),  # an invisible joiner
        ("páypal.com", "paypal"),  # an accent
        ("paypa1.com", "paypal"),  # digit one for l
        ("faceb00k.com", "facebook"),  # zeros for o
        ("rnicrosoft.com", "microsoft"),  # rn for m
        ("app1e-support.com", "apple"),  # inside a longer label
        ("login.xn--pypal-4ve.evil.net", "paypal"),  # every label is decoded, not only the first
    ],
)
def test_homoglyphs(detector: LookalikeDetector, name: str, brand: str) -> None:
    flagged(detector, name, brand, "homoglyph")


def test_mixed_script(detector: LookalikeDetector) -> None:
    assert "mixed_script" in flagged(detector, "pаypal.com", "paypal", "homoglyph").techniques
    whole_cyrillic = flagged(detector, "аррӏе.com", "apple", "homoglyph")  # а р р ӏ е, all Cyrillic
    assert "mixed_script" not in whole_cyrillic.techniques
    assert "xn--" in whole_cyrillic.explanation  # shows what the certificate holds


def test_skeleton_plus_typo(detector: LookalikeDetector) -> None:
    flagged(detector, "faceʙook.com", "facebook", "homoglyph")  # small capital B, outside TS#39's map


@pytest.mark.parametrize(
    ("name", "brand", "words"),
    [
        ("paypl.com", "paypal", "'a' omitted"),
        ("paypall.com", "paypal", "'l' repeated"),
        ("faceboook.com", "facebook", "'o' repeated"),
        ("payapl.com", "paypal", "swapped"),
        ("paypak.com", "paypal", "adjacent key 'k'"),
        ("paypel.com", "paypal", "vowel 'a' replaced by 'e'"),
        ("mibrosoft.com", "microsoft", "bit flipped"),
        ("paypan.com", "paypal", "bit flipped"),
        ("pay-pal.com", "paypal", "hyphens inserted"),
        ("micrsft.com", "microsoft", "two edits"),  # long brands tolerate two edits
        ("paypai-login.com", "paypal", "paypai"),  # a typo joined with a word
    ],
)
def test_typos(detector: LookalikeDetector, name: str, brand: str, words: str) -> None:
    finding = flagged(detector, name, brand, "typo")
    assert words in finding.explanation


@pytest.mark.parametrize(
    "name",
    [
        "paypal-login-secure.com",
        "paypallogin.net",
        "secure-paypal.xyz",
        "mypaypalhelp.com",
        "checkpaypal.org",
        "paypal-account-update.web.app",
        "www.paypal-login.blogspot.com",
        "venmo-refund.com",
    ],
)
def test_combosquats(detector: LookalikeDetector, name: str) -> None:
    flagged(detector, name, "paypal", "combosquat")


@pytest.mark.parametrize(
    ("name", "brand"),
    [
        ("facebook.com.evil.net", "facebook"),
        ("login.paypal.com-verify.top", "paypal"),
        ("paypal.evil.net", "paypal"),
        ("apple.github.io", "apple"),  # a site on a hosting platform (PSL private section)
        ("paypal.blogspot.com", "paypal"),  # under a hosting suffix another brand owns
        ("pay.pal-secure.net", "paypal"),  # split across labels
    ],
)
def test_brand_in_subdomain(detector: LookalikeDetector, name: str, brand: str) -> None:
    flagged(detector, name, brand, "brand_in_subdomain")


def test_brand_spelled_out_scores_highest(detector: LookalikeDetector) -> None:
    spelled = flagged(detector, "facebook.com.evil.net", "facebook", "brand_in_subdomain")
    plain = flagged(detector, "facebook.evil.net", "facebook", "brand_in_subdomain")
    assert spelled.score > plain.score
    assert "'facebook.com'" in spelled.explanation and "evil.net" in spelled.explanation


@pytest.mark.parametrize(
    ("name", "brand"), [("paypal.co", "paypal"), ("paypal.com.br", "paypal"), ("apple.de", "apple")]
)
def test_tld_swaps(detector: LookalikeDetector, name: str, brand: str) -> None:
    finding = flagged(detector, name, brand, "tld_swap")
    assert finding.techniques == ("tld_swap",)


@pytest.mark.parametrize(
    "name",
    [
        # the brands' own domains and their subdomains
        "paypal.com",
        "www.paypal.com",
        "api.sandbox.paypal.com",
        "paypal.me",
        "*.paypal.com",
        "PayPal.COM.",
        "icloud.com",
        "fb.com",
        "login.live.com",
        "fonts.googleapis.com",
        "blogspot.com",
        # allow-listed for the brand
        "paypal-community.com",
        "forum.paypal-community.com",
        # ordinary names, some holding a brand's letters inside English words
        "example.com",
        "wikipedia.org",
        "bbc.co.uk",
        "www.nytimes.com",
        "stackoverflow.com",
        "weather.gov",
        "mail.yahoo.co.jp",
        "pineapple.com",
        "dappled.net",
        "grappler.io",
        "goggle.com",
        "scrapple.org",
        "japanpost.jp",
        "hicloud.com",
        "myhuaweicloud.com",
        "e911cloud.com",
        "blueshellcloud.com",
        "unrelated-shop.de",
        "static.cdn-provider.net",
        "news.ycombinator.com",
    ],
)
def test_not_flagged(detector: LookalikeDetector, name: str) -> None:
    assert detector.check(name) is None


def test_allow_list_is_per_brand() -> None:
    detector = LookalikeDetector(
        [Brand("paypal", ("paypal.com",), allow=("paypal-login.com",)), Brand("apple", ("apple.com",))]
    )
    assert detector.check("paypal-login.com") is None
    assert detector.check("x.paypal-login.com") is None
    assert detector.check("apple.paypal-login.com") is not None  # still imitates Apple
    assert detector.check("paypal-verify.com") is not None


def test_threshold(detector: LookalikeDetector) -> None:
    weak = flagged(detector, "checkpaypal.org", "paypal", "combosquat")
    assert weak.score < 0.9
    assert LookalikeDetector(BRANDS, threshold=0.9).check("checkpaypal.org") is None
    assert LookalikeDetector(BRANDS, threshold=0.9).check("paypa1.com") is not None
    with pytest.raises(ConfigError):
        LookalikeDetector(BRANDS, threshold=1.5)


def test_check_names_keeps_the_strongest_per_brand(detector: LookalikeDetector) -> None:
    findings = detector.check_names(
        ["paypal-login.com", "paypa1.com", "example.com", "apple.de", "paypal.com"]
    )
    assert [(f.brand, f.name) for f in findings] == [("paypal", "paypa1.com"), ("apple", "apple.de")]


def test_thousands_of_brands_each_find_their_own() -> None:
    many = [
        Brand(f"brand{i}", (f"{''.join(random.Random(i).choices('bcdfgklmnprstvz', k=9))}.com",))
        for i in range(2000)
    ]
    detector = LookalikeDetector([*BRANDS, *many])
    flagged(detector, "paypa1.com", "paypal", "homoglyph")
    flagged(detector, f"{many[1234].domains[0].split('.')[0]}-login.com", "brand1234", "combosquat")


def test_brands_from_config() -> None:
    brands = brands_from_config(
        [
            {"domain": "paypal.com", "keywords": ["venmo"], "allow": ["paypal-community.com"]},
            {"name": "Apple", "domains": ["apple.com", "icloud.com"]},
        ]
    )
    assert brands == [
        Brand("paypal", ("paypal.com",), ("venmo",), ("paypal-community.com",)),
        Brand("Apple", ("apple.com", "icloud.com")),
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"keywords": ["x"]}], "either 'domain'"),
        ([{"domain": "a.com", "domains": ["b.com"]}], "either 'domain'"),
        ([{"domains": "paypal.com"}], "'domains' must be a list"),
        ([{"domains": []}], "empty"),
        ([{"domain": "com"}], "not a registrable domain"),
        ([{"domain": "not a domain"}], "not a registrable domain"),
        ([{"domain": "paypal.com", "keywords": ["pay pal"]}], "not a DNS label"),
        ([{"domain": "paypal.com", "allow": [""]}], "'allow' must be a list"),
        ([{"domain": "paypal.com", "colour": "blue"}], "unknown key"),
        ([{"domain": "paypal.com"}, "paypal.com"], "#2 must be a table"),
        ({"domain": "paypal.com"}, "array of tables"),
    ],
)
def test_brands_from_config_errors(items: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        brands_from_config(items)  # type: ignore[arg-type]


HOSTILE = [
    "",
    ".",
    "..",
    "*.",
    "x\x00y.com",
    "\x00",
    "a" * 4096 + ".com",
    ("a" * 63 + ".") * 5 + "com",
    "xn--.com",
    "xn---.com",
    "xn--a.com",
    "xn--99999999999999999999999999999999.com",
    "xn--zz-zzzzzzz.com",
    "xn--" + "a" * 59 + ".paypal.co",
    "paypal..com",
    "-.com",
    "\ud800.com",
    "[::1]",
    "1.2.3.4",
    "http://paypal.com/",
    "paypal.com:443",
    "\u202epaypal.com",
    "p\u0301\u0301\u0301aypal.com",
    "ǅ.com",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_never_crash(detector: LookalikeDetector, name: str) -> None:
    finding = detector.check(name)
    assert finding is None or 0 <= finding.score <= 1


def test_random_garbage_never_crashes(detector: LookalikeDetector) -> None:
    rng = random.Random(6)
    alphabet = "abpyl019-._*\x00\u0430\u03bf\uff41\u200d\u0301\ud800 "
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70))) for _ in range(2000)]
    names += [
        "xn--"
        + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 59)))
        + ".com"
        for _ in range(2000)
    ]
    names += [
        "".join(chr(rng.randint(0, 0x2FFFF)) for _ in range(rng.randint(1, 20))) + ".com" for _ in range(1000)
    ]
    findings = detector.check_names(names)
    assert all(f.brand in {b.name for b in BRANDS} for f in findings)


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from ctwatch.cli import main; main()", "lookalike", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_one_json_line_per_name() -> None:
    proc = run_cli(
        "--brand",
        "paypal.com",
        "--brand",
        "facebook.com",
        "paypa1.com",
        "facebook.com.evil.net",
        "example.com",
        "securepaypal.net",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["name"] for r in rows] == [
        "paypa1.com",
        "facebook.com.evil.net",
        "example.com",
        "securepaypal.net",
    ]
    assert all(set(r) == {"name", "lookalike", "brand", "techniques", "score", "explanation"} for r in rows)
    assert rows[0] | {"explanation": ""} == {
        "name": "paypa1.com",
        "lookalike": True,
        "brand": "paypal.com",
        "techniques": ["homoglyph"],
        "score": 0.9,
        "explanation": "",
    }
    assert (rows[1]["brand"], rows[1]["techniques"]) == ("facebook.com", ["brand_in_subdomain"])
    assert rows[2] == {
        "name": "example.com",
        "lookalike": False,
        "brand": None,
        "techniques": [],
        "score": 0.0,
        "explanation": "no configured brand is imitated",
    }
    assert rows[3]["lookalike"] and rows[3]["score"] < 0.9


def test_cli_reads_stdin_and_applies_the_threshold() -> None:
    proc = run_cli(
        "--brand", "paypal.com", "--threshold", "0.9", stdin="securepaypal.net\n\npaypa1.com\n\x00garbage\n"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["name"], r["lookalike"]) for r in rows] == [
        ("securepaypal.net", False),
        ("paypa1.com", True),
        ("\x00garbage", False),
    ]
    assert rows[0]["brand"] == "paypal.com"  # below the threshold, yet shown for tuning


def test_cli_rejects_a_bad_brand() -> None:
    proc = run_cli("--brand", "com", "paypal.com")
    assert proc.returncode == 2
    assert "not a registrable domain" in proc.stderr and "Traceback" not in proc.stderr
