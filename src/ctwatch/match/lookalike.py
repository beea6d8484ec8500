"""Brand lookalike detection: names that imitate a brand's domain without belonging to it.

Impostors rarely get a certificate for a brand's exact name; they get one for a name that
*looks* like it. For every configured :class:`Brand` this module flags names whose registrable
label (Public Suffix List, private section included) or subdomain labels imitate the brand by

* ``homoglyph``: look-alike characters, by Unicode TS#39 confusable skeletons (``pаypal`` with a
  Cyrillic ``а``, fullwidth letters, every label decoded, not only a leading ``xn--``) and the
  ASCII tricks ``paypa1``, ``faceb00k``, ``rnicrosoft``, ``lnterac``; ``mixed_script`` is added
  when one label mixes scripts;
* ``typo``: optimal-string-alignment distance 1 (2 for brands of 9+ letters): omission,
  repetition, transposition, keyboard-adjacent or other replacement, vowel swap, bit flip, and
  hyphen insertion (``pay-pal``);
* ``combosquat``: the brand joined with other words (``paypal-login-secure``, ``checkapple``);
* ``brand_in_subdomain``: the brand left of an unrelated registrable domain
  (``facebook.com.evil.net``, ``login.paypal.com-verify.top``), on a hosting platform
  (``paypal.github.io``), or split across labels (``air.bnb-id8301.com``);
* ``tld_swap``: the exact brand label under a suffix that is not the brand's (``paypal.co``).

The cost per name does not grow with the number of brands beyond a small constant (more brands
mean more near matches to score): every lookup goes through an index built once (dicts of exact
strings and confusable skeletons, SymSpell deletion indexes for edit distance, one Aho-Corasick
automaton for brands and lure words inside longer labels, another for English words that
contain a brand), never through a loop over brands.

Data: the Public Suffix List shipped with ``publicsuffixlist``; Unicode's ``confusables.txt``
(``ctwatch/data``); script properties from ``confusable-homoglyphs``; English words from
``english-words``, so that "pineapple" does not imitate Apple nor "goggle" Google.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import NamedTuple

import ahocorasick
from confusable_homoglyphs import categories
from english_words import get_english_words_set
from publicsuffixlist import PublicSuffixList

from ..errors import ConfigError

__all__ = ["TECHNIQUES", "Brand", "Finding", "LookalikeDetector", "brands_from_config"]

#: Every technique a :class:`Finding` can name, in the order findings list them.
TECHNIQUES = ("homoglyph", "mixed_script", "typo", "combosquat", "brand_in_subdomain", "tld_swap")


@dataclass(frozen=True)
class Brand:
    """A brand to protect: names imitating its label are flagged, its own domains never are.

    ``domains`` are the brand's registrable domains; the first gives the brand label (``paypal``
    for ``paypal.com``). ``keywords`` are further strings that identify the brand; ``allow``
    lists names or domain suffixes that are never flagged for this brand.
    """

    name: str
    domains: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One flagged name: the brand it imitates, how, how surely (0 to 1), and why in plain words."""

    name: str
    brand: str
    techniques: tuple[str, ...]
    score: float
    explanation: str


# --- Tuning ------------------------------------------------------------------------------------
# Tuned on one half of the evaluation set (bench/lookalike_eval.py); general rules only.

_MAX_NAME = 253  # longer names cannot be resolved, so they phish no one
_MAX_LABEL = 63
_MIN_SUBSTRING = 3  # shorter brand strings match whole labels only
_MIN_FUZZY = 5  # shorter brand strings get no typo and no ASCII-substitution matches
_MIN_INNER = 6  # shorter brand strings count inside a longer token only at its start
_DISTINCTIVE = 8  # brand strings this long rarely occur by chance inside other strings
_LONG = 9  # brand strings this long tolerate two edits
_MAX_WORD = 24  # longest English word tried when splitting a token into words

# Score of each kind of match; the default threshold, 0.5, cuts below.
_S_SKELETON_IDN = 0.95  # the whole label is the brand in look-alike Unicode characters
_S_SKELETON_ASCII = 0.9  # the whole label is the brand with 0, 1, 3, 4, 5, 7, 8, rn, vv or l for i
_S_HYPHENATED = 0.85  # pay-pal
_S_TYPO = 0.8  # one classic typo: omission, repetition, transposition, adjacent key, vowel, bit
_S_TYPO_OTHER = 0.7  # one replacement or insertion of an unrelated character
_S_TYPO2 = 0.65  # two edits of a long brand
_S_TLD_SWAP = 0.75
_S_HOSTED = 0.7  # paypal.github.io: the brand as a site name on a hosting platform
_S_SUB_EXACT = 0.75  # paypal.evil.net
_S_SUB_DOTTED = 0.95  # paypal.com.evil.net, paypal.com-verify.top
_S_SPLIT = 0.6  # air.bnb-id8301.com
_S_TOKEN = 0.85  # paypal-login: the brand as a whole token (tokens end at hyphens and digits)
_S_PREFIX = 0.75  # paypallogin
_S_SHORT_PREFIX = 0.55  # uspsdelivery: a brand of 3-4 letters starting a longer token
_S_SUFFIX = 0.6  # securecoinbase
_S_SHORT_SUFFIX = 0.45  # securepaypal: needs more evidence (japanpost is not An Post)
_S_INNER = 0.55  # mycoinbasehelp
_S_SHORT_INNER = 0.4  # mypaypalhelp: needs more evidence (hicloudcam is not iCloud)
_LURE_BONUS = 0.1  # a lure word in the same label
_WORDS_BONUS = 0.1  # the rest of the token is English words: brand + words
_LOOKALIKE_BONUS = 0.1  # look-alike characters inside a longer label are deliberate
_SUBDOMAIN_MALUS = 0.05  # a fuzzy match left of an unrelated domain is weaker evidence
_COMBO_MALUS = 0.05  # so is a typo in one part of a longer label
_FIRST_LETTER_MALUS = 0.2  # typosquatters keep the first letter; other near-misses are often words

# Words phishing names put next to a brand: corroborating evidence, never enough on their own.
_LURES = (
    "login", "logon", "signin", "secure", "security", "verify", "verification", "account",
    "update", "support", "helpdesk", "service", "billing", "payment", "invoice", "confirm",
    "unlock", "recover", "restore", "refund", "wallet", "auth", "validate", "password",
    "webmail", "customer", "claim", "airdrop", "bonus", "reward", "giveaway", "delivery",
    "parcel", "tracking", "suspend", "alert", "notice", "official", "online",
)  # fmt: skip

_KEYBOARD = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_VOWELS = frozenset("aeiouy")
# Substitutions beyond TS#39 (which maps only 0, 1 and m among lower-case ASCII) that phishing
# names use to write a brand; applied before the confusables table.
_ASCII_LOOKALIKES = {"3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "i": "l", "w": "vv"}
# Scripts that legitimately share a label (UTS #39 "highly restrictive").
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # IDNA label separators


# --- Reference data ----------------------------------------------------------------------------


@functools.cache
def _psl() -> tuple[PublicSuffixList, PublicSuffixList]:
    """The Public Suffix List shipped with ``publicsuffixlist`` (offline): the full list, and
    the ICANN section without the implicit ``*`` rule, which tells real TLDs."""
    return PublicSuffixList(), PublicSuffixList(only_icann=True, accept_unknown=False)


@functools.cache
def _confusables() -> dict[str, str]:
    """Unicode TS#39 ``confusables.txt``: each source character's prototype string."""
    text = resources.files("ctwatch.data").joinpath("confusables.txt").read_text("utf-8-sig")
    table = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) >= 2:
            table[chr(int(fields[0], 16))] = "".join(chr(int(h, 16)) for h in fields[1].split())
    return table


@functools.cache
def _english_words() -> frozenset[str]:
    """Lower-case English words: Webster's 2nd (common words only) and GCIDE.

    Proper nouns and multi-word entries are left out, so that "Amazona" or "open sea" cannot
    hide a brand.
    """
    web2 = (w for w in get_english_words_set(["web2"]) if w.islower())
    gcide = (w.lower() for w in get_english_words_set(["gcide"]))
    return frozenset(w for w in (*web2, *gcide) if w.isascii() and w.isalpha())


def _word_automaton(brands: Iterable[str]) -> ahocorasick.Automaton:
    """An automaton finding English words that contain a brand string and are longer than it."""
    probe = ahocorasick.Automaton()
    for text in brands:
        probe.add_word(text, len(text))
    words = ahocorasick.Automaton()
    if len(probe):
        probe.make_automaton()
        for word in _english_words():
            if any(length < len(word) for _, length in probe.iter(word)):
                words.add_word(word, len(word))
    if len(words):
        words.make_automaton()
    return words


# --- Strings -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """Visual skeleton of one character: ASCII tricks, TS#39 prototype, lower case, no marks."""
    confusables = _confusables()
    text = char
    for _ in range(4):  # prototypes may be upper case or decompose: settle to a fixed point
        out = []
        for part in unicodedata.normalize("NFD", text):
            if unicodedata.category(part) not in ("Mn", "Me", "Cf"):  # accents, invisibles
                part = _ASCII_LOOKALIKES.get(part, part)
                out.append(confusables.get(part, part).lower())
        folded = "".join(out)
        if folded == text:
            break
        text = folded
    return text


@functools.cache
def _ascii_fold_table() -> dict[int, str]:
    """``str.translate`` table for ASCII labels, the fast path for most names."""
    return {ord(c): _fold_char(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789_"} | {ord("-"): ""}


def _fold(text: str) -> str:
    """Confusable skeleton of a label, hyphens removed: strings with equal skeletons look alike."""
    if text.isascii():
        return text.translate(_ascii_fold_table())
    return "".join(_fold_char(c) for c in text if c != "-")


def _fold_origins(text: str) -> list[int]:
    """For each character of ``_fold(text)``, the index in ``text`` it came from; then the end."""
    return [*(i for i, c in enumerate(text) if c != "-" for _ in _fold_char(c)), len(text)]


def _is_mixed_script(text: str) -> bool:
    """Whether a label mixes scripts as no ordinary word does (UTS #39 "highly restrictive")."""
    scripts = {categories.alias(c) for c in text} - {"COMMON", "INHERITED", "Unknown"}
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS)


def _osa(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance of ``a`` and ``b``, or ``limit + 1`` when above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                row[j] = min(row[j], before[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        before, previous = previous, row
    return previous[-1]


def _deletes(text: str, depth: int) -> set[str]:
    """``text`` and every string made from it by deleting up to ``depth`` characters (SymSpell)."""
    out = frontier = {text}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out = out | frontier
    return out


def _max_edits(text: str) -> int:
    """How many edits from a brand string still count as a typo of it."""
    return 2 if len(text) >= _LONG else 1


@functools.cache
def _key_neighbours() -> dict[str, frozenset[str]]:
    """Keys touching each key on a QWERTY keyboard (each row is offset half a key to the right)."""
    near: dict[str, set[str]] = {c: set() for row in _KEYBOARD for c in row}
    for r, row in enumerate(_KEYBOARD):
        for i, c in enumerate(row):
            for r2, cols in ((r, (i + 1,)), (r + 1, (i - 1, i))):
                for i2 in cols:
                    if r2 < len(_KEYBOARD) and 0 <= i2 < len(_KEYBOARD[r2]):
                        near[c].add(_KEYBOARD[r2][i2])
                        near[_KEYBOARD[r2][i2]].add(c)
    return {c: frozenset(n) for c, n in near.items()}


def _describe_edit(got: str, want: str) -> tuple[str, bool]:
    """The one edit that turns ``want`` into ``got``, in words, and whether it is a classic typo."""
    at = next(
        (i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y), min(len(got), len(want))
    )
    if len(got) < len(want):
        return f"{want[at]!r} omitted", True
    if len(got) > len(want):
        extra, neighbours = got[at], {*got[at - 1 : at], *got[at + 1 : at + 2]}
        if extra in neighbours:
            return f"{extra!r} repeated", True
        adjacent = bool(neighbours & _key_neighbours().get(extra, frozenset()))
        return f"{extra!r} inserted", adjacent
    if got[at + 1 :] != want[at + 1 :]:
        return f"{want[at]!r} and {want[at + 1]!r} swapped", True
    old, new = want[at], got[at]
    if new in _key_neighbours().get(old, ()):
        return f"{old!r} replaced by the adjacent key {new!r}", True
    if old in _VOWELS and new in _VOWELS:
        return f"vowel {old!r} replaced by {new!r}", True
    if (ord(old) ^ ord(new)).bit_count() == 1:
        return f"{old!r} replaced by {new!r}, one bit flipped", True
    return f"{old!r} replaced by {new!r}", False


@functools.lru_cache(maxsize=4096)
def _is_words(text: str) -> bool:
    """Whether ``text`` splits into English words of two letters or more."""
    words = _english_words()
    ends = [True] + [False] * len(text)
    for end in range(2, len(text) + 1):
        ends[end] = any(
            ends[start] and text[start:end] in words for start in range(max(0, end - _MAX_WORD), end - 1)
        )
    return ends[-1]


def _words_around(text: str, first: int, last: int) -> bool:
    """Whether the rest of the token holding ``text[first:last]`` is English words.

    ``checkapple`` joins a brand and a word; ``japanpost`` and ``hicloud`` cut through words
    (jap|anpost, h|icloud).
    """
    start, end = first, last
    while start and text[start - 1].isalpha():
        start -= 1
    while end < len(text) and text[end].isalpha():
        end += 1
    return all(not rest or _is_words(rest) for rest in (text[start:first], text[last:end]))


def _token_edges(text: str, first: int, last: int) -> tuple[bool, bool]:
    """Whether ``text[first:last]`` starts and ends a token (tokens end at hyphens and digits)."""
    return (first == 0 or not text[first - 1].isalpha(), last == len(text) or not text[last].isalpha())


def _substring_score(length: int, at_start: bool, at_end: bool) -> float | None:
    """Score of a brand string of ``length`` inside a longer label, by where in its token it sits.

    Short strings occur by chance inside other strings, so they count less, and only at the start
    of a token when very short.
    """
    if at_start and at_end:
        return _S_TOKEN
    if at_start:
        return _S_PREFIX if length >= _MIN_FUZZY else _S_SHORT_PREFIX
    if length < _MIN_FUZZY or (not at_end and length < _MIN_INNER):
        return None
    if at_end:
        return _S_SUFFIX if length >= _DISTINCTIVE else _S_SHORT_SUFFIX
    return _S_INNER if length >= _DISTINCTIVE else _S_SHORT_INNER


def _plausible_lookalike(text: str, first: int, last: int, length: int, at_start: bool) -> bool:
    """Whether ``text[first:last]``, whose skeleton is a brand's, is written to look like it.

    Unicode look-alikes always are. ASCII substitutions need a brand of 5+ letters; a digit
    standing for a letter must not be part of a number (``e911cloud`` does not spell "icloud");
    inside a token, only a digit is deliberate enough (``mint0pensea``, not ``shellcloud``).
    """
    span = text[first:last]
    if not span.isascii():
        return True
    if length < _MIN_FUZZY:
        return False
    if (span[0].isdigit() and text[first - 1 : first].isdigit()) or (
        span[-1].isdigit() and text[last : last + 1].isdigit()
    ):
        return False
    return at_start or length >= _DISTINCTIVE or any(c.isdigit() for c in span)


# --- Names -------------------------------------------------------------------------------------


class _Label(NamedTuple):
    """One DNS label in the forms the matchers need."""

    ascii: str  # as in a certificate (punycode for IDN)
    text: str  # Unicode, lower case
    flat: str  # ``text`` without hyphens
    folded: str  # skeleton of ``text``, hyphens removed

    def shown(self) -> str:
        """The label for an explanation: Unicode, with the punycode a certificate holds."""
        return repr(self.text) if self.text.isascii() else f"{self.text!r} ({self.ascii})"


class _Name(NamedTuple):
    """A parsed name: its labels and which one is the registrable label."""

    ascii: str
    labels: tuple[_Label, ...]
    reg: int  # index of the registrable label; the labels after it are the public suffix
    suffix: str
    hosted: bool  # the suffix is in the PSL's private section (hosting platforms)

    def registrable(self) -> str:
        """The registrable domain (or the whole name, if it is a public suffix)."""
        return ".".join(label.ascii for label in self.labels[max(self.reg, 0) :])


def _decode_label(label: str) -> str | None:
    """Unicode form of one lower-case label, or None when no DNS name holds such a label."""
    if label.isascii():
        if not label.replace("-", "").replace("_", "").isalnum():
            return None
        if label.startswith("xn--"):
            try:
                return label[4:].encode("ascii").decode("punycode").lower()
            except (UnicodeError, ValueError):
                return label  # invalid punycode: compare it as the ASCII it is
        return label
    if all(c == "-" or c.isalnum() or unicodedata.category(c) in ("Mn", "Mc", "Cf") for c in label):
        return label
    return None


def _parse(name: str, public_ok: bool = False) -> _Name | None:
    """Split a certificate name into labels and find its public suffix; None if not a DNS name.

    A name that is a public suffix has nothing registrable to imitate: None, unless
    ``public_ok`` (a brand may own a suffix, e.g. ``azureedge.net``), with ``reg`` -1.
    """
    if not isinstance(name, str) or len(name) > 4 * _MAX_NAME:
        return None
    name = name.strip().lower().translate(_DOTS).removeprefix("*.").removesuffix(".")
    labels = []
    for label in name.split("."):
        text = _decode_label(label) if 0 < len(label) <= _MAX_LABEL else None
        if text is None:
            return None
        if not label.isascii():
            label = "xn--" + label.encode("punycode").decode("ascii")
        labels.append(_Label(label, text, text.replace("-", ""), _fold(text)))
    ascii_name = ".".join(label.ascii for label in labels)
    if len(labels) < 2 or len(ascii_name) > _MAX_NAME:
        return None
    full, icann = _psl()
    suffix = full.publicsuffix(ascii_name)
    if suffix is None or (suffix == ascii_name and not public_ok):
        return None
    hosted = icann.publicsuffix(ascii_name) not in (None, suffix)
    return _Name(ascii_name, tuple(labels), len(labels) - suffix.count(".") - 2, suffix, hosted)


def _suffixes(name: str) -> Iterable[str]:
    """``name`` and every domain above it: ``a.b.c``, ``b.c``, ``c``."""
    yield name
    dot = name.find(".")
    while dot >= 0:
        yield name[dot + 1 :]
        dot = name.find(".", dot + 1)


# --- Matching ----------------------------------------------------------------------------------


class _BrandSpec(NamedTuple):
    """A brand's configuration, checked and normalised."""

    own: tuple[str, ...]  # registrable domains (or owned public suffixes), ASCII
    strings: tuple[str, ...]  # the brand label, then the keywords
    allow: tuple[str, ...]  # ASCII names and suffixes


def _brand_spec(brand: Brand) -> _BrandSpec:
    """Check a brand's domains, keywords and allow-list; a ConfigError says what is wrong."""
    if isinstance(brand.domains, str) or not brand.domains:
        raise ConfigError(f"brand {brand.name!r} needs a tuple of one or more domains")
    own, labels = [], []
    for domain in brand.domains:
        parsed = _parse(domain, public_ok=True) if isinstance(domain, str) else None
        if parsed is None or (parsed.reg < 0 and not own):  # the first must give a brand label
            raise ConfigError(f"brand {brand.name!r}: {domain!r} is not a registrable domain name")
        own.append(parsed.registrable())
        labels.append(parsed.labels[max(parsed.reg, 0)].text)
    strings = [labels[0]]
    for keyword in brand.keywords:
        text = (
            _decode_label(keyword.strip().lower()) if isinstance(keyword, str) and keyword.strip() else None
        )
        if text is None:
            raise ConfigError(f"brand {brand.name!r}: keyword {keyword!r} is not a DNS label")
        strings.append(text)
    allow = []
    for entry in brand.allow:
        parsed = _parse(entry.strip().removeprefix("*."), public_ok=True) if isinstance(entry, str) else None
        if parsed is None:
            raise ConfigError(f"brand {brand.name!r}: allow entry {entry!r} is not a domain name")
        allow.append(parsed.ascii)
    return _BrandSpec(tuple(own), tuple(dict.fromkeys(strings)), tuple(allow))


class _Pattern(NamedTuple):
    """One string that identifies a brand: its label or a keyword."""

    brand: int
    text: str
    folded: str


class _Hit(NamedTuple):
    """Evidence that a name imitates one brand pattern."""

    score: float
    techniques: tuple[str, ...]
    explanation: str


@dataclass
class _Key:
    """What one key of the label automaton stands for: brand patterns, a lure word, or both."""

    length: int
    pids: list[int] = field(default_factory=list)
    lure: bool = False


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """Both technique lists in the order of :data:`TECHNIQUES`."""
    present = {*first, *second}
    return tuple(t for t in TECHNIQUES if t in present)


def _hit(score: float, techniques: tuple[str, ...], sub: bool, explanation: str) -> _Hit:
    """A hit; one found left of the registrable label is also ``brand_in_subdomain``, weaker."""
    if sub:
        return _Hit(score - _SUBDOMAIN_MALUS, (*techniques, "brand_in_subdomain"), explanation)
    return _Hit(score, techniques, explanation)


class _Evidence(dict[int, _Hit]):
    """The strongest hit per brand pattern; the techniques of weaker hits are kept too."""

    def add(self, pid: int, hit: _Hit) -> None:
        """Record a hit for a pattern."""
        old = self.get(pid)
        if old is None:
            self[pid] = hit
        else:
            best = hit if hit.score > old.score else old
            self[pid] = best._replace(techniques=_merge(old.techniques, hit.techniques))

    def merge(self, other: _Evidence) -> None:
        """Record every hit of ``other``."""
        for pid, hit in other.items():
            self.add(pid, hit)

    def boost(self, bonus: float, cap: float) -> None:
        """Raise every score by ``bonus`` (corroborating evidence), to at most ``cap``."""
        for pid, hit in self.items():
            if hit.score < cap:
                self[pid] = hit._replace(score=min(cap, hit.score + bonus))


class LookalikeDetector:
    """Finds names that imitate any of many brands, at a cost per name independent of their count.

    Build one per configuration (the indexes are computed once, in about half a second, mostly
    spent on the English word list); :meth:`check` then never raises on hostile input: what is
    not a DNS name is no lookalike.
    """

    def __init__(self, brands: Sequence[Brand], threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"lookalike threshold must be between 0 and 1, not {threshold!r}")
        self.threshold = threshold
        self._brands = tuple(brands)
        self._own: set[str] = set()  # registrable domains the brands own (any brand)
        self._allow: dict[str, set[int]] = {}  # allowed name or suffix -> brands
        self._patterns: list[_Pattern] = []
        for index, brand in enumerate(self._brands):
            spec = _brand_spec(brand)
            self._own.update(spec.own)
            self._patterns += (_Pattern(index, text, _fold(text)) for text in spec.strings)
            for allowed in spec.allow:
                self._allow.setdefault(allowed, set()).add(index)

        self._exact: dict[str, list[int]] = {}  # brand string without hyphens -> patterns
        self._skeletons: dict[str, list[int]] = {}  # brand skeleton -> patterns
        self._typos: dict[str, list[int]] = {}  # SymSpell: deletions of brand strings -> patterns
        self._skeleton_typos: dict[str, list[int]] = {}  # the same for skeletons (Unicode labels)
        keys: dict[str, _Key] = {}
        for pid, pattern in enumerate(self._patterns):
            self._exact.setdefault(pattern.text.replace("-", ""), []).append(pid)
            self._skeletons.setdefault(pattern.folded, []).append(pid)
            if len(pattern.text) >= _MIN_FUZZY:
                for key in _deletes(pattern.text, _max_edits(pattern.text)):
                    self._typos.setdefault(key, []).append(pid)
                for key in _deletes(pattern.folded, _max_edits(pattern.text)):
                    self._skeleton_typos.setdefault(key, []).append(pid)
            if len(pattern.text) >= _MIN_SUBSTRING:
                keys.setdefault(pattern.folded, _Key(len(pattern.folded))).pids.append(pid)
        for lure in _LURES:
            keys.setdefault(_fold(lure), _Key(len(_fold(lure)))).lure = True
        self._automaton = ahocorasick.Automaton()
        for key, value in keys.items():
            self._automaton.add_word(key, (value.length, tuple(value.pids), value.lure))
        self._automaton.make_automaton()
        self._words = _word_automaton({p.text for p in self._patterns if len(p.text) >= _MIN_SUBSTRING})
        # lengths of the strings in the typo indexes: a part far from all of them needs no lookup
        fuzzy = [p for p in self._patterns if len(p.text) >= _MIN_FUZZY]
        self._typo_lengths = {len(s) for p in fuzzy for s in (p.text, p.folded)}
        self._long_lengths = {len(s) for p in fuzzy if len(p.text) >= _LONG for s in (p.text, p.folded)}

    def check(self, name: str) -> Finding | None:
        """The strongest imitation of a brand in one name (ASCII, punycode or Unicode), if any."""
        parsed = _parse(name)
        if parsed is None or parsed.ascii in self._own or parsed.registrable() in self._own:
            return None  # not a DNS name, or a brand's own (names *under* an owned suffix are not)
        allowed = {brand for suffix in _suffixes(parsed.ascii) for brand in self._allow.get(suffix, ())}
        hits = self._hits(parsed)
        best: tuple[float, int, int] | None = None
        for pid, hit in hits.items():
            pattern = self._patterns[pid]
            rank = (hit.score, len(pattern.text), -pid)
            if pattern.brand not in allowed and hit.score >= self.threshold and (best is None or rank > best):
                best = rank
        if best is None:
            return None
        pid = -best[2]
        hit = hits[pid]
        brand = self._brands[self._patterns[pid].brand].name
        return Finding(name, brand, hit.techniques, round(min(hit.score, 1.0), 3), hit.explanation)

    def check_names(self, names: Iterable[str]) -> list[Finding]:
        """Findings for a certificate's names: the strongest per brand, strongest first."""
        best: dict[str, Finding] = {}
        for name in names:
            finding = self.check(name)
            if finding is not None and (
                finding.brand not in best or finding.score > best[finding.brand].score
            ):
                best[finding.brand] = finding
        return sorted(best.values(), key=lambda f: -f.score)

    # --- matching ---

    def _hits(self, name: _Name) -> _Evidence:
        """The best evidence per brand pattern, from every label left of the public suffix."""
        hits = _Evidence()
        for index in range(name.reg + 1):
            hits.merge(self._label_hits(name, index))
        if name.reg >= 1:
            self._split_hits(name, hits)
        return hits

    def _label_hits(self, name: _Name, index: int) -> _Evidence:
        """Evidence from one label; a lure word in it (``paypal-login``) corroborates."""
        label = name.labels[index]
        sub = index < name.reg
        where = f" in a subdomain of {name.registrable()}" if sub else ""
        mixed = not label.text.isascii() and _is_mixed_script(label.text)
        hits = _Evidence()
        exact = self._exact.get(label.flat, [])
        for pid in exact:
            self._exact_hit(name, index, self._patterns[pid].text, pid, hits)
        skeleton = [pid for pid in self._skeletons.get(label.folded, ()) if pid not in exact]
        for pid in skeleton:
            text = self._patterns[pid].text
            if label.text.isascii() and len(text) < _MIN_FUZZY:
                continue
            kind = "letters or digits" if label.text.isascii() else "Unicode characters"
            score = _S_SKELETON_ASCII if label.text.isascii() else _S_SKELETON_IDN
            techniques = ("homoglyph", "mixed_script") if mixed else ("homoglyph",)
            hits.add(
                pid,
                _hit(
                    score, techniques, sub, f"{label.shown()} writes {text!r} with look-alike {kind}{where}"
                ),
            )
        if not exact and not skeleton:
            self._typo_hits(label, sub, mixed, where, hits)
        if self._substring_hits(label, sub, mixed, where, hits):
            hits.boost(_LURE_BONUS, cap=_S_TOKEN)
        return hits

    def _exact_hit(self, name: _Name, index: int, text: str, pid: int, hits: _Evidence) -> None:
        """A label that is a brand string (perhaps with hyphens inserted)."""
        label = name.labels[index]
        registrable = name.registrable()
        if label.text != text:
            where = f" in a subdomain of {registrable}" if index < name.reg else ""
            explanation = f"{label.shown()} is {text!r} with hyphens inserted{where}"
            hits.add(pid, _hit(_S_HYPHENATED, ("typo",), index < name.reg, explanation))
        elif index < name.reg:
            if len(text) < _MIN_SUBSTRING:
                return
            after = name.labels[index + 1].text.split("-", 1)[0]
            if _psl()[1].is_public(after):
                explanation = (
                    f"'{text}.{after}' is spelled out in front of the unrelated domain {registrable}"
                )
                hits.add(pid, _Hit(_S_SUB_DOTTED, ("brand_in_subdomain",), explanation))
            else:
                explanation = f"{text!r} is a subdomain label of the unrelated domain {registrable}"
                hits.add(pid, _Hit(_S_SUB_EXACT, ("brand_in_subdomain",), explanation))
        elif name.hosted:
            explanation = f"{text!r} is a site on the hosting platform {name.suffix}"
            hits.add(pid, _Hit(_S_HOSTED, ("brand_in_subdomain",), explanation))
        else:
            explanation = (
                f"{text!r} is registered under .{name.suffix}, which is not one of the brand's domains"
            )
            hits.add(pid, _Hit(_S_TLD_SWAP, ("tld_swap",), explanation))

    def _typo_hits(self, label: _Label, sub: bool, mixed: bool, where: str, hits: _Evidence) -> None:
        """Typos of a brand: the whole label, or one hyphen-separated part of it (a combo).

        Unicode labels are compared by skeleton, which catches a look-alike character plus a
        typo (``faceʙook``, ``dícsord``).
        """
        idn = not label.text.isascii()
        index = self._skeleton_typos if idn else self._typos
        parts = [(label.folded if idn else label.flat, False)]
        if "-" in label.text:
            parts += [
                (_fold(part) if idn else part, True) for part in label.text.split("-") if len(part) >= 4
            ]
        for part, combo in parts:
            if not any(len(part) + d in self._typo_lengths for d in range(-2, 3)):
                continue
            if not idn and part in _english_words():
                continue  # a word is no typo: "goggle", "chose"
            depth = 2 if any(len(part) + d in self._long_lengths for d in range(-2, 3)) else 1
            candidates = {pid for key in _deletes(part, depth) for pid in index.get(key, ())}
            for pid in candidates:
                pattern = self._patterns[pid]
                text = pattern.folded if idn else pattern.text
                distance = _osa(part, text, _max_edits(pattern.text))
                if not 0 < distance <= _max_edits(pattern.text):
                    continue
                if part[0] != text[0] and len(text) < _DISTINCTIVE:
                    continue  # near-misses of short brands with another first letter are mostly words
                edits = "one edit" if distance == 1 else "two edits"
                techniques: tuple[str, ...] = ("typo",)
                if idn:
                    techniques = ("homoglyph", "mixed_script", "typo") if mixed else ("homoglyph", "typo")
                    how, score = f"{pattern.text!r} in look-alike characters with {edits}", _S_TYPO
                elif distance == 1:
                    edit, classic = _describe_edit(part, text)
                    how, score = f"a typo of {text!r} ({edit})", _S_TYPO if classic else _S_TYPO_OTHER
                else:
                    how, score = f"a typo of {text!r} ({edits})", _S_TYPO2
                if part[0] != text[0]:
                    score -= _FIRST_LETTER_MALUS
                if combo:
                    techniques, score = (*techniques, "combosquat"), score - _COMBO_MALUS
                    how = f"contains {part!r}, {how}"
                else:
                    how = f"is {how}"
                hits.add(pid, _hit(score, techniques, sub, f"{label.shown()} {how}{where}"))

    def _substring_hits(self, label: _Label, sub: bool, mixed: bool, where: str, hits: _Evidence) -> bool:
        """Brands inside a longer label, in one automaton pass; returns whether a lure word occurs."""
        text = label.text
        found = list(self._automaton.iter(label.folded))
        origins: list[int] | None = None
        words: list[tuple[int, int]] | None = None
        for end, (length, pids, _) in found:
            start = end - length + 1
            if not pids or (start == 0 and end + 1 == len(label.folded)):
                continue  # a lure word, or the whole label (the exact matchers' business)
            if origins is None:
                origins = _fold_origins(text)
            if (start and origins[start - 1] == origins[start]) or origins[end] == origins[end + 1]:
                continue  # starts or ends inside the expansion of one character (m -> rn)
            first, last = origins[start], origins[end] + 1
            if words is None:
                words = [(e + 1 - n, e + 1) for e, n in self._words.iter(text)] if len(self._words) else []
            if any(w_first <= first and last <= w_last for w_first, w_last in words):
                continue  # inside a longer English word: "pineapple" does not imitate Apple
            at_start, at_end = _token_edges(text, first, last)
            span = text[first:last]
            for pid in pids:
                pattern = self._patterns[pid]
                score = _substring_score(len(pattern.text), at_start, at_end)
                typo = hits.get(pid)
                if (
                    typo
                    and score
                    and typo.score >= score
                    and len(label.folded) - length <= _max_edits(pattern.text)
                ):
                    continue  # "paypall" is a typo, not a combination with other words
                lookalike = span.replace("-", "") != pattern.text
                if score is None or (
                    "-" in span
                    and (lookalike or len(pattern.text) < _MIN_FUZZY)
                    and not (at_start and at_end)
                ):
                    continue  # hyphens may split a brand only into whole tokens (pay-pal-login)
                if lookalike:
                    if not _plausible_lookalike(text, first, last, len(pattern.text), at_start):
                        continue
                    techniques: tuple[str, ...] = ("homoglyph", "combosquat")
                    if mixed:
                        techniques = ("homoglyph", "mixed_script", "combosquat")
                    score += _LOOKALIKE_BONUS
                    how = f"contains {span!r}, {pattern.text!r} in look-alike characters"
                else:
                    techniques, how = ("combosquat",), f"joins {pattern.text!r} with other words"
                if not (at_start and at_end) and _words_around(text, first, last):
                    score += _WORDS_BONUS
                hits.add(pid, _hit(score, techniques, sub, f"{label.shown()} {how}{where}"))
        return any(lure for _, (_, _, lure) in found)

    def _split_hits(self, name: _Name, hits: _Evidence) -> None:
        """A brand split across labels (``air.bnb-id8301.com``), spelled plainly from a token start."""
        labels = name.labels[: name.reg + 1]
        joined = "".join(label.flat for label in labels)
        bounds, starts, position = set(), set(), 0
        for label in labels:
            for token in label.text.split("-"):
                starts.add(position)
                position += len(token)
            bounds.add(position)
        origins: list[int] | None = None
        for end, (length, pids, _) in self._automaton.iter(_fold(joined)):
            if not pids or length < _MIN_INNER:
                continue
            if origins is None:
                origins = _fold_origins(joined)
            first, last = origins[end - length + 1], origins[end] + 1
            if first not in starts or not any(first < bound < last for bound in bounds):
                continue
            for pid in pids:
                text = self._patterns[pid].text
                if joined[first:last] == text:
                    explanation = f"{text!r} is split across the labels of {name.ascii}"
                    hits.add(pid, _Hit(_S_SPLIT, ("brand_in_subdomain",), explanation))


# --- Configuration -----------------------------------------------------------------------------


def brands_from_config(items: list[dict[str, object]]) -> list[Brand]:
    """Brands from the TOML ``[[brand]]`` tables: ``domain`` or ``domains``, ``keywords``, ``allow``.

    ``name`` is optional (default: the first domain's label). Anything malformed raises a
    ConfigError naming the table and key, so a slip in the config never silently drops a brand.
    """
    if not isinstance(items, list):
        raise ConfigError("[[brand]] must be an array of tables")
    brands = []
    for number, item in enumerate(items, 1):
        where = f"[[brand]] #{number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(item) - {"name", "domain", "domains", "keywords", "allow"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        if ("domain" in item) == ("domains" in item):
            raise ConfigError(f"{where}: give either 'domain' (a string) or 'domains' (a list), not both")
        domains = (
            _strings(where, "domain", [item["domain"]])
            if "domain" in item
            else _strings(where, "domains", item["domains"])
        )
        if not domains:
            raise ConfigError(f"{where}: 'domains' is empty")
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        first = _parse(domains[0])
        if first is None:
            raise ConfigError(f"{where}: {domains[0]!r} is not a registrable domain name")
        brand = Brand(
            name=name.strip() if name else first.labels[first.reg].text,
            domains=domains,
            keywords=_strings(where, "keywords", item.get("keywords", [])),
            allow=_strings(where, "allow", item.get("allow", [])),
        )
        try:
            _brand_spec(brand)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        brands.append(brand)
    return brands


def _strings(where: str, key: str, value: object) -> tuple[str, ...]:
    """A config value that must be a list of non-empty strings, as a tuple (lower case)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(v.strip().lower() for v in value)
