"""The watchlist: certspotter's file format and matching rules, including wildcards and IDNs."""

from __future__ import annotations

import pytest

from ctwatch.errors import ConfigError
from ctwatch.identities import UNPARSABLE_LABEL, cert_identities
from ctwatch.match import Watchlist

from .conftest import CTDATA
from .test_entries_conformance import load_ders


def test_parse_format() -> None:
    wl = Watchlist.parse(
        "# my domains\n"
        "\n"
        "   .Example.COM.   \n"
        "exact.example.org valid_at:2024-01-01  # ignored like certspotter does\n"
        ".bücher.example\n"
        "192.0.2.1\n"
        "2001:DB8::1\n"
        "::ffff:198.51.100.1\n"  # written as identities write it
        ".example.com\n"  # duplicate
        ".\n"
    )
    assert wl.items == (".example.com", "exact.example.org", ".xn--bcher-kva.example", "192.0.2.1",
                        "2001:db8::1", "198.51.100.1", ".")
    assert len(wl) == 7
    assert Watchlist(wl.items).items == wl.items
    assert len(Watchlist.parse("# nothing\n\n")) == 0


@pytest.mark.parametrize(("line", "reason"), [
    ("exa mple.com", "unknown parameter"),
    ("*.example.com", "wildcards"),
    ("foo..com", "invalid domain"),
    ("exam/ple.com", "invalid domain"),
    ("a" * 64 + ".com", "invalid domain"),
    ("a\x00b.com", "invalid domain"),
    ("..", "invalid domain"),
    (".192.0.2.1", "cannot have subdomains"),
    ("xn--a.\u0378.com", "internationalised"),
])
def test_bad_lines_name_source_and_line(line: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=rf"^watch\.txt, line 3: .*{reason}"):
        Watchlist.parse(f"# header\nok.example\n{line}\n", "watch.txt")
    with pytest.raises(ConfigError):
        Watchlist([line])


@pytest.mark.parametrize(("item", "identity", "matches"), [
    (".example.com", "example.com", True),
    (".example.com", "www.example.com", True),
    (".example.com", "a.b.example.com", True),
    (".example.com", "notexample.com", False),
    (".example.com", "example.com.evil.net", False),
    (".example.com", "*.example.com", True),
    (".example.com", "*.com", True),  # a wildcard could be a name under the watched domain
    (".example.com", "*.*.com", True),
    (".example.com", "*", False),
    (".example.com", "?.example.com", True),  # a redacted label
    (".example.com", f"{UNPARSABLE_LABEL}.com", True),  # fail-safe
    (".example.com", f"www.{UNPARSABLE_LABEL}", False),  # www is not example
    (".example.com", "ex*.com", True),  # a partial-label wildcard matches the labels it globs
    (".example.com", "*ample.com", True),
    (".example.com", "x*.com", False),
    ("example.com", "example.com", True),
    ("example.com", "www.example.com", False),
    ("example.com", "*.example.com", False),  # covers the subdomains only
    ("example.com", "*.com", True),
    ("example.com", "EXAMPLE.com", False),  # identities are already lower-case
    (".", "anything.at.all", True),
    (".", "192.0.2.1", True),
    ("192.0.2.1", "192.0.2.1", True),
    ("192.0.2.1", "192.0.2.10", False),
    ("2001:db8::1", "2001:db8::1", True),
])
def test_match_semantics(item: str, identity: str, matches: bool) -> None:
    assert Watchlist([item]).match([identity]) == (item if matches else None)


def test_partial_wildcards_cannot_make_matching_slow() -> None:
    wl = Watchlist(["." + "a" * 63 + ".example"])
    label = "*a" * 40 + "*b"  # catastrophic for a backtracking regular expression
    assert wl.match([f"{label}.example"]) is None
    assert wl.match(["*a*a*.example"]) == "." + "a" * 63 + ".example"


def test_first_item_in_file_order_wins() -> None:
    identities = ["a.example.com", "www.example.com"]
    assert Watchlist(["www.example.com", ".example.com"]).match(identities) == "www.example.com"
    assert Watchlist([".example.com", "www.example.com"]).match(identities) == ".example.com"
    assert Watchlist(["other.net", ".com", "."]).match(["x.org", "y.com"]) == ".com"
    assert Watchlist([]).match(identities) is None
    assert Watchlist([".example.com"]).match([]) is None


def test_idn_watch_item_matches_a_real_idn_certificate() -> None:
    (der,) = load_ders(CTDATA / "certs" / "cryptography_vectors" / "x509" / "custom" / "san_idna_names.pem")
    wl = Watchlist.parse(".Пыка.cryptography\n")
    assert wl.items == (".xn--80ato2c.cryptography",)
    assert wl.match(cert_identities(der)) == ".xn--80ato2c.cryptography"


def test_large_watchlist_uses_the_trie() -> None:
    wl = Watchlist([f".domain{i}.example" for i in range(20_000)] + ["exact.test"])
    assert wl.match(["www.domain19999.example"]) == ".domain19999.example"
    assert wl.match(["*.example"]) == ".domain0.example"  # every item is a candidate: the first wins
    assert wl.match(["exact.test", "nothing.example"]) == "exact.test"
    assert wl.match(["domain5.example.evil"]) is None
