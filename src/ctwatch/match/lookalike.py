"""Brand lookalike detection: names that imitate a brand's domain without belonging to it.

Impostors rarely get a certificate for a brand's exact name; they get one for a name that
*looks* like it. For every configured :class:`Brand` this module flags names whose registrable
label or subdomain labels imitate the brand label by

* ``homoglyph`` -- look-alike characters: Unicode TS#39 confusables (``pаypal`` with a Cyrillic
  ``а``, fullwidth letters) and the ASCII tricks ``paypa1``, ``faceb00k``, ``rnicrosoft``,
  ``lnterac``; ``mixed_script`` is added when one label mixes scripts;
* ``typo`` -- optimal-string-alignment distance 1 (2 for labels of 9+ characters): omission,
  repetition, transposition, keyboard-adjacent or other replacement, vowel swap, bit flip,
  and hyphen insertion (``pay-pal``);
* ``combosquat`` -- the brand joined with other words (``paypal-login-secure``, ``securepaypal``);
* ``brand_in_subdomain`` -- the brand left of an unrelated registrable domain
  (``facebook.com.evil.net``, ``login.paypal.com-verify.top``), or split across labels;
* ``tld_swap`` -- the exact brand label under a suffix that is not the brand's (``paypal.co``).

Speed does not depend on the number of brands: every lookup goes through an index built once
(a dict of confusable skeletons, a SymSpell deletion index for edit distance, and one
Aho-Corasick automaton for brands inside longer labels), never through a loop over brands.
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

#: Every technique name a :class:`Finding` can carry, in the order findings list them.
TECHNIQUES = ("homoglyph", "mixed_script", "typo", "combosquat", "brand_in_subdomain", "tld_swap")

_MAX_NAME = 253  # longer names cannot be resolved, so they cannot phish anyone
_MAX_LABEL = 63
_MIN_FUZZY = 5  # brand strings shorter than this get no typo and no ASCII-substitution matches
_MIN_INNER = 6  # ... and must start a token to count inside a longer label
_DISTINCTIVE = 8  # brand strings this long rarely occur by chance inside other words
_LONG = 9  # brand strings this long tolerate two edits

# Words phishing names put next to a brand. Their presence raises the score of a weak match;
# they are never enough on their own.
_LURES = (
    "login", "logon", "signin", "sign-in", "secure", "security", "verify", "verification",
    "account", "update", "support", "helpdesk", "service", "billing", "payment", "invoice",
    "confirm", "unlock", "recover", "restore", "refund", "wallet", "auth", "validate",
    "password", "webmail", "customer", "claim", "airdrop", "bonus", "reward", "giveaway",
    "delivery", "parcel", "tracking", "suspend", "alert", "notice", "official", "online",
)

# Score of the strongest match of each kind; the threshold (default 0.5) cuts below.
_S_SKELETON_IDN = 0.95  # whole label is the brand written with look-alike Unicode characters
_S_SKELETON_ASCII = 0.9  # whole label is the brand with 0/1/3/4/5/7/8, rn, vv or l for i
_S_HYPHENATED = 0.85  # pay-pal
_S_TYPO = 0.8  # one classic typo (omission, repetition, transposition, adjacent key, ...)
_S_TYPO_REPLACE = 0.7  # one replacement by an arbitrary character
_S_TYPO2 = 0.65  # two edits of a long brand
_S_TLD_SWAP = 0.75
_S_PRIVATE_SITE = 0.7  # paypal.github.io: the brand as a site name on a hosting platform
_S_TOKEN = 0.85  # paypal-login: the brand as a whole hyphen/digit-separated token
_S_PREFIX = 0.75  # paypallogin
_S_SHORT_PREFIX = 0.55  # uspsdelivery: a brand of 3-4 letters starting a longer token
_S_SUFFIX = 0.6  # securecoinbase
_S_SHORT_SUFFIX = 0.45  # securepaypal: needs a lure word too (japanpost is not An Post)
_S_INNER = 0.55  # mycoinbasehelp
_S_SHORT_INNER = 0.4  # mypaypalhelp: needs a lure word too (hicloudcam is not iCloud)
_S_SUB_EXACT = 0.75  # paypal.evil.net
_S_SUB_DOTTED = 0.95  # paypal.com.evil.net, paypal.com-verify.top
_S_SPLIT = 0.6  # pay.pal-secure.net: the brand split across labels
_LURE_BONUS = 0.1
_SUBDOMAIN_MALUS = 0.05  # a fuzzy match left of an unrelated domain is slightly weaker evidence
_FIRST_LETTER_MALUS = 0.2  # typosquatters keep the first letter; other near-misses are often words
_HOMOGLYPH_BONUS = 0.05  # look-alike characters inside a longer label are deliberate

_KEYBOARD = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_VOWELS = frozenset("aeiouy")
# Digit and letter substitutions beyond TS#39 (which maps only 0, 1 and m among ASCII) that
# phishing names use to write a brand; applied before the confusables table.
_ASCII_LOOKALIKES = {"3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "i": "l", "w": "vv"}
# Script sets that legitimately share a label (UTS #39 "highly restrictive" profile).
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


@dataclass(frozen=True)
class Brand:
    """A brand to protect: names imitating its label are flagged, its own domains never are.

    ``domains`` are the brand's registrable domains (the first one gives the brand label, e.g.
    ``paypal`` for ``paypal.com``); ``keywords`` are further strings that identify the brand;
    ``allow`` lists names or domain suffixes that are never flagged for this brand.
    """

    name: str
    domains: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One flagged name: which brand it imitates, how, how surely, and why in plain words."""

    name: str
    brand: str
    techniques: tuple[str, ...]
    score: float
    explanation: str


class _Pattern(NamedTuple):
    """One string that identifies a brand (its label or a keyword)."""

    brand: int
    text: str
    folded: str


class _Label(NamedTuple):
    """One DNS label in the forms the matchers need."""

    ascii: str  # as in the certificate (punycode for IDN)
    text: str  # Unicode, lower-case
    flat: str  # ``text`` without hyphens
    folded: str  # confusable skeleton of ``flat``


class _Name(NamedTuple):
    """A parsed name: its labels and where the registrable label sits."""

    ascii: str
    labels: tuple[_Label, ...]
    reg: int  # index of the registrable label; labels after it form the public suffix
    suffix: str
    private: bool  # the suffix comes from the PSL's private section (hosting platforms)


class _Hit(NamedTuple):
    """Evidence that a name imitates one brand."""

    score: float
    techniques: tuple[str, ...]
    explanation: str


@dataclass
class _Entry:
    """What one Aho-Corasick key stands for: brand patterns, a lure word, an ordinary word."""

    length: int
    pids: list[int] = field(default_factory=list)
    lure: bool = False
    mask: bool = False


class _Evidence(dict[int, _Hit]):
    """The strongest hit per brand pattern; the techniques of weaker hits are kept too."""

    def add(self, pid: int, hit: _Hit) -> None:
        """Record a hit for a pattern."""
        old = self.get(pid)
        if old is None:
            self[pid] = hit
        elif hit.score > old.score:
            self[pid] = hit._replace(techniques=_merge(hit.techniques, old.techniques))
        else:
            self[pid] = old._replace(techniques=_merge(old.techniques, hit.techniques))

    def merge(self, other: _Evidence) -> None:
        """Record all hits of another collection."""
        for pid, hit in other.items():
            self.add(pid, hit)

    def boost(self, bonus: float, below: float) -> None:
        """Raise every score under ``below`` by ``bonus`` (corroborating evidence)."""
        for pid, hit in self.items():
            if hit.score < below:
                self[pid] = hit._replace(score=min(below, hit.score + bonus))


@functools.cache
def _psl() -> tuple[PublicSuffixList, PublicSuffixList]:
    """The Public Suffix List shipped with ``publicsuffixlist``: full, and ICANN-only without
    the implicit ``*`` rule (so that it answers "is this a real TLD")."""
    return PublicSuffixList(), PublicSuffixList(only_icann=True, accept_unknown=False)


@functools.cache
def _confusables() -> dict[str, str]:
    """Unicode TS#39 confusables.txt (shipped in ``ctwatch/data``): source char -> prototype."""
    text = resources.files("ctwatch.data").joinpath("confusables.txt").read_text("utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) >= 2:
            table[chr(int(fields[0], 16))] = "".join(chr(int(h, 16)) for h in fields[1].split())
    return table


@functools.cache
def _english_words() -> frozenset[str]:
    """Lower-case English words (Webster's 2nd and GCIDE, via ``english-words``).

    A brand string inside a longer word is no imitation ("pineapple", "interactive",
    "purchase"), and a near-miss that is itself a word ("goggle") is no typo.
    """
    return frozenset(get_english_words_set(["web2", "gcide"], alpha=True, lower=True))


def _masking_words(keys: frozenset[str]) -> set[str]:
    """Skeletons of the English words that contain a brand skeleton and are longer than it."""
    if not keys:
        return set()
    probe = ahocorasick.Automaton()
    for key in keys:
        probe.add_word(key, len(key))
    probe.make_automaton()
    shortest = min(map(len, keys))
    out = set()
    for word in _english_words():
        if len(word) > shortest:
            folded = _fold(word)
            if any(length < len(folded) for _, length in probe.iter(folded)):
                out.add(folded)
    return out


@functools.lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """Visual skeleton of one character: ASCII tricks, TS#39 prototype, lower case, no marks."""
    conf = _confusables()
    text = char
    for _ in range(4):  # prototypes can be upper case or decompose; settle to a fixed point
        out = []
        for part in unicodedata.normalize("NFD", text):
            if unicodedata.category(part) in ("Mn", "Me", "Cf"):
                continue  # accents and invisible characters do not change the look
            part = _ASCII_LOOKALIKES.get(part, part)
            out.append(conf.get(part, part).lower())
        folded = "".join(out)
        if folded == text:
            break
        text = folded
    return text


@functools.cache
def _ascii_fold_table() -> dict[int, str]:
    """``str.translate`` table folding ASCII label characters (the fast path for most names)."""
    table = {ord(c): _fold_char(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789_"}
    table[ord("-")] = ""
    return table


def _fold(text: str) -> str:
    """Confusable skeleton of a label, hyphens removed: equal skeletons look alike."""
    if text.isascii():
        return text.translate(_ascii_fold_table())
    return "".join(_fold_char(c) for c in text if c != "-")


def _fold_origins(text: str) -> list[int]:
    """For each character of ``_fold(text)``, the index in ``text`` it came from."""
    return [i for i, c in enumerate(text) if c != "-" for _ in _fold_char(c)]


def _scripts(text: str) -> frozenset[str]:
    """The Unicode scripts of the letters in ``text`` (COMMON and INHERITED left out)."""
    return frozenset(categories.alias(c) for c in text) - {"COMMON", "INHERITED", "Unknown"}


def _is_mixed_script(text: str) -> bool:
    """Whether a label mixes scripts in a way no ordinary word does (UTS #39, restrictive)."""
    scripts = _scripts(text)
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS)


def _decode_label(label: str) -> str | None:
    """Unicode form of one lower-case label, or None for a label no DNS name can hold."""
    if label.isascii():
        if not label.replace("-", "").replace("_", "").isalnum():
            return None
        if label.startswith("xn--"):
            try:
                return label[4:].encode("ascii").decode("punycode").lower()
            except (UnicodeError, ValueError):
                return label  # invalid punycode: compare it as the ASCII it is
        return label
    if not all(c == "-" or c.isalnum() or unicodedata.category(c) in ("Mn", "Mc", "Cf") for c in label):
        return None
    return label


def _parse(name: str, public_ok: bool = False) -> _Name | None:
    """Split a certificate name into labels and find its public suffix; None if not a DNS name.

    A name that is itself a public suffix has nothing registrable to imitate and gives None,
    unless ``public_ok`` (brands may own a suffix such as ``azureedge.net``); then ``reg`` is -1.
    """
    if not isinstance(name, str) or len(name) > 4 * _MAX_NAME:
        return None
    name = name.strip().lower().translate(_DOTS).removeprefix("*.").removesuffix(".")
    raw = name.split(".")
    if not name or len(raw) < 2:
        return None
    labels = []
    for label in raw:
        text = _decode_label(label) if 0 < len(label) <= _MAX_LABEL else None
        if text is None:
            return None
        if not label.isascii():
            try:
                label = "xn--" + label.encode("punycode").decode("ascii")
            except UnicodeError:
                return None
        flat = text.replace("-", "")
        labels.append(_Label(label, text, flat, _fold(text)))
    ascii_name = ".".join(label.ascii for label in labels)
    if len(ascii_name) > _MAX_NAME:
        return None
    full, icann = _psl()
    suffix = full.publicsuffix(ascii_name)
    if suffix is None or (suffix == ascii_name and not public_ok):
        return None
    reg = len(labels) - suffix.count(".") - 2
    return _Name(ascii_name, tuple(labels), reg, suffix, icann.publicsuffix(ascii_name) not in (None, suffix))


def _osa(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance of ``a`` and ``b``, or ``limit + 1`` when above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(text: str, depth: int) -> set[str]:
    """``text`` and every string made from it by deleting up to ``depth`` characters."""
    out = {text}
    frontier = {text}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@functools.cache
def _key_neighbours() -> dict[str, frozenset[str]]:
    """Keys touching each key on a QWERTY keyboard (rows are staggered half a key to the right)."""
    pos = {c: (r, i) for r, row in enumerate(_KEYBOARD) for i, c in enumerate(row)}
    near: dict[str, set[str]] = {c: set() for c in pos}
    for c, (r, i) in pos.items():
        for r2, cols in ((r, (i - 1, i + 1)), (r + 1, (i - 1, i))):
            for i2 in cols:
                if 0 <= r2 < len(_KEYBOARD) and 0 <= i2 < len(_KEYBOARD[r2]):
                    near[c].add(_KEYBOARD[r2][i2])
                    near[_KEYBOARD[r2][i2]].add(c)
    return {c: frozenset(n) for c, n in near.items()}


def _describe_edit(got: str, want: str) -> tuple[str, bool]:
    """The one edit that turns ``want`` into ``got``, and whether it is a classic typo."""
    common = next((i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y), min(len(got), len(want)))
    if len(got) + 1 == len(want):
        return f"{want[common]!r} omitted", True
    if len(got) == len(want) + 1:
        extra = got[common]
        if got[common - 1 : common] == extra or got[common + 1 : common + 2] == extra:
            return f"{extra!r} repeated", True
        return f"{extra!r} inserted", False
    if got[common + 1 :] != want[common + 1 :]:
        return f"{want[common]!r} and {want[common + 1]!r} swapped", True
    old, new = want[common], got[common]
    if new in _key_neighbours().get(old, ()):
        return f"{old!r} replaced by the adjacent key {new!r}", True
    if old in _VOWELS and new in _VOWELS:
        return f"vowel {old!r} replaced by {new!r}", True
    if (ord(old) ^ ord(new)).bit_count() == 1:
        return f"{old!r} replaced by {new!r} (one bit flipped)", True
    return f"{old!r} replaced by {new!r}", False


def _max_edits(text: str) -> int:
    """Edits a brand string tolerates: one, two for long strings."""
    return 2 if len(text) >= _LONG else 1


def _substring_score(length: int, at_start: bool, at_end: bool) -> float | None:
    """Score of a brand string of ``length`` found inside a longer label, by where it sits.

    Short strings occur by chance inside ordinary words, so they count only at the start of a
    token; long ones count anywhere.
    """
    if at_start and at_end:
        return _S_TOKEN if length >= 3 else None
    if at_start:
        return _S_PREFIX if length >= _MIN_FUZZY else _S_SHORT_PREFIX if length >= 3 else None
    if at_end:
        return _S_SUFFIX if length >= _DISTINCTIVE else _S_SHORT_SUFFIX if length >= _MIN_FUZZY else None
    return _S_INNER if length >= _DISTINCTIVE else _S_SHORT_INNER if length >= _MIN_INNER else None


def _suffixes(name: str) -> Iterable[str]:
    """``name`` and every domain above it: ``a.b.c``, ``b.c``, ``c``."""
    yield name
    dot = name.find(".")
    while dot >= 0:
        yield name[dot + 1 :]
        dot = name.find(".", dot + 1)


def _registrable_of(name: _Name) -> str:
    """The registrable domain of a parsed name."""
    return ".".join(label.ascii for label in name.labels[name.reg :])


def _own_domain(domain: object, brand: str) -> _Name:
    """A configured brand domain, parsed, or a ConfigError saying why it is not a domain name."""
    parsed = _parse(domain, public_ok=True) if isinstance(domain, str) else None
    if parsed is None:
        raise ConfigError(f"brand {brand!r}: {domain!r} is not a domain name")
    return parsed


def _hit(score: float, techniques: tuple[str, ...], sub: bool, explanation: str) -> _Hit:
    """A hit, marked ``brand_in_subdomain`` when found left of the registrable label."""
    return _Hit(score, (*techniques, "brand_in_subdomain") if sub else techniques, explanation)


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """Union of two technique lists in the canonical order of :data:`TECHNIQUES`."""
    present = {*first, *second}
    return tuple(t for t in TECHNIQUES if t in present)


def _plausible_lookalike(text: str, first: int, last: int, length: int, at_start: bool) -> bool:
    """Whether ``text[first:last]``, which folds to a brand string, is written to look like it.

    Unicode look-alikes always are. ASCII substitutions need a brand of 5+ letters, short ones
    must start a token, and a digit standing for a letter must not be part of a number
    (``e911cloud`` does not spell "icloud").
    """
    if not text[first:last].isascii():
        return True
    if length < _MIN_FUZZY or (length < _DISTINCTIVE and not at_start):
        return False
    return not ((text[first].isdigit() and first and text[first - 1].isdigit())
                or (text[last - 1].isdigit() and last < len(text) and text[last].isdigit()))


def _token_span(text: str, start: int, end: int) -> tuple[bool, bool]:
    """Whether ``text[start:end]`` begins and ends at a token boundary (edge, hyphen, digit)."""
    return (start == 0 or not text[start - 1].isalpha(), end == len(text) or not text[end].isalpha())


class LookalikeDetector:
    """Finds names that imitate any of many brands, at a cost per name independent of their count.

    Build it once per configuration (indexes are precomputed); :meth:`check` is then cheap and
    never raises on hostile input: what is not a DNS name is simply not a lookalike.
    """

    def __init__(self, brands: Sequence[Brand], threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"lookalike threshold must be between 0 and 1, not {threshold!r}")
        self.threshold = threshold
        self._brands = tuple(brands)
        self._labels: list[str] = []
        self._own: set[str] = set()
        self._allow: dict[str, set[int]] = {}
        self._patterns: list[_Pattern] = []
        for index, brand in enumerate(self._brands):
            if not brand.domains:
                raise ConfigError(f"brand {brand.name!r} has no domain")
            domains = [_own_domain(d, brand.name) for d in brand.domains]
            self._own.update(_registrable_of(d) if d.reg >= 0 else d.ascii for d in domains)
            if domains[0].reg < 0:
                raise ConfigError(f"brand {brand.name!r}: {brand.domains[0]!r} is a public suffix, not a domain")
            label = domains[0].labels[domains[0].reg].text
            self._labels.append(label)
            for text in dict.fromkeys((label, *(k.strip().lower() for k in brand.keywords))):
                if text:
                    self._patterns.append(_Pattern(index, text, _fold(text)))
            for entry in brand.allow:
                key = entry.strip().lower().removeprefix("*.").removeprefix(".").removesuffix(".")
                self._allow.setdefault(key, set()).add(index)
        self._exact: dict[str, list[int]] = {}
        self._skeleton: dict[str, list[int]] = {}
        self._typos: dict[str, list[int]] = {}
        entries: dict[str, _Entry] = {}
        for pid, pattern in enumerate(self._patterns):
            self._exact.setdefault(pattern.text.replace("-", ""), []).append(pid)
            self._skeleton.setdefault(pattern.folded, []).append(pid)
            if len(pattern.text) >= _MIN_FUZZY:
                for key in _deletes(pattern.text, _max_edits(pattern.text)):
                    self._typos.setdefault(key, []).append(pid)
            if len(pattern.folded) >= 3:
                entries.setdefault(pattern.folded, _Entry(len(pattern.folded))).pids.append(pid)
        for word in _masking_words(frozenset(entries)):
            entries.setdefault(word, _Entry(len(word))).mask = True
        for lure in _LURES:
            folded = _fold(lure)
            entries.setdefault(folded, _Entry(len(folded))).lure = True
        self._automaton = ahocorasick.Automaton()
        for key, entry in entries.items():
            self._automaton.add_word(key, (entry.length, tuple(entry.pids), entry.lure, entry.mask))
        self._automaton.make_automaton()
        self._max_typo_len = max((len(p.text) + 2 for p in self._patterns), default=0)

    def check(self, name: str) -> Finding | None:
        """The strongest brand imitation in one name (ASCII, punycode or Unicode), if any."""
        parsed = _parse(name)
        if parsed is None or self._owned(parsed):
            return None
        hits = self._hits(parsed)
        if not hits:
            return None
        allowed = self._allowed(parsed.ascii)
        best: tuple[float, int, int] | None = None
        for pid, hit in hits.items():
            brand = self._patterns[pid].brand
            if brand in allowed:
                continue
            rank = (hit.score, len(self._patterns[pid].text), -pid)
            if best is None or rank > best:
                best = (*rank[:2], pid)
        if best is None or best[0] < self.threshold:
            return None
        pid = best[2]
        hit = hits[pid]
        return Finding(name, self._brands[self._patterns[pid].brand].name, hit.techniques,
                       round(hit.score, 3), hit.explanation)

    def check_names(self, names: Iterable[str]) -> list[Finding]:
        """Findings for a certificate's names: the strongest one per brand, strongest first."""
        best: dict[str, Finding] = {}
        for name in names:
            finding = self.check(name)
            if finding is not None and (finding.brand not in best or finding.score > best[finding.brand].score):
                best[finding.brand] = finding
        return sorted(best.values(), key=lambda f: -f.score)

    # -- internals -------------------------------------------------------------------------

    def _owned(self, name: _Name) -> bool:
        """Whether a brand owns the name's registrable domain (or the name, for an owned suffix).

        Names *under* a brand-owned public suffix (``x.web.app``, ``x.blogspot.com``) are other
        people's sites and are checked like any other name.
        """
        return name.ascii in self._own or _registrable_of(name) in self._own

    def _allowed(self, ascii_name: str) -> set[int]:
        """Brands whose allow-list covers this name."""
        out: set[int] = set()
        for suffix in _suffixes(ascii_name):
            out |= self._allow.get(suffix, set())
        return out

    def _hits(self, name: _Name) -> _Evidence:
        """The best evidence per brand pattern, from every label left of the public suffix."""
        hits = _Evidence()
        for index in range(name.reg + 1):
            hits.merge(self._label_hits(name, index))
        if name.reg >= 1:
            self._split_hits(name, hits)
        return hits

    def _label_hits(self, name: _Name, index: int) -> _Evidence:
        """Match one label against every brand through the indexes.

        A lure word in the same label (``paypal-login``) raises the weaker matches.
        """
        label = name.labels[index]
        hits = _Evidence()
        sub = index < name.reg
        where = f" in subdomain of {_registrable_of(name)}" if sub else ""
        mixed = not label.text.isascii() and _is_mixed_script(label.text)
        exact = self._exact.get(label.flat, ())
        for pid in exact:
            text = self._patterns[pid].text
            if label.text != text:
                hits.add(pid, _hit(_S_HYPHENATED - sub * _SUBDOMAIN_MALUS, ("typo",), sub,
                                   f"{label.text!r} is {text!r} with a hyphen inserted{where}"))
            elif sub:
                hits.add(pid, self._subdomain_exact(name, index, text))
            elif name.private:
                hits.add(pid, _Hit(_S_PRIVATE_SITE, ("brand_in_subdomain",),
                                   f"{text!r} is a site on the hosting platform {name.suffix}"))
            else:
                hits.add(pid, _Hit(_S_TLD_SWAP, ("tld_swap",),
                                   f"{text!r} is registered under .{name.suffix}, not one of the brand's domains"))
        skeleton = [pid for pid in self._skeleton.get(label.folded, ()) if pid not in exact]
        idn = not label.text.isascii()
        shown = f"{label.text!r} ({label.ascii})" if idn else repr(label.text)
        for pid in skeleton:
            pattern = self._patterns[pid]
            if not idn and len(pattern.text) < _MIN_FUZZY:
                continue
            techniques = ("homoglyph", "mixed_script") if mixed else ("homoglyph",)
            kind = "look-alike Unicode characters" if idn else "look-alike letters or digits"
            hits.add(pid, _hit((_S_SKELETON_IDN if idn else _S_SKELETON_ASCII) - sub * _SUBDOMAIN_MALUS,
                               techniques, sub, f"{shown} writes {pattern.text!r} with {kind}{where}"))
        if not exact and not skeleton:
            self._typo_hits(label, sub, where, hits)
        if self._substring_hits(label, sub, mixed, where, hits):
            hits.boost(_LURE_BONUS, below=_S_TOKEN)
        return hits

    def _subdomain_exact(self, name: _Name, index: int, text: str) -> _Hit:
        """The brand label as a whole subdomain label; stronger when a TLD follows it."""
        after = name.labels[index + 1].text.split("-", 1)[0]
        if _psl()[1].is_public(after):
            shown = f"{text}.{after}"
            return _Hit(_S_SUB_DOTTED, ("brand_in_subdomain",),
                        f"{shown!r} is spelled out in front of the unrelated domain {_registrable_of(name)}")
        return _Hit(_S_SUB_EXACT, ("brand_in_subdomain",),
                    f"{text!r} is a subdomain label of the unrelated domain {_registrable_of(name)}")

    def _typo_hits(self, label: _Label, sub: bool, where: str, hits: _Evidence) -> None:
        """Typos of a brand: the whole label, or one hyphen-separated part of it (with a combo)."""
        parts = [(label.flat, False)]
        if "-" in label.text:
            parts += [(p, True) for p in label.text.split("-") if len(p) >= 4]
        for part, combo in parts:
            if not part.isascii() or len(part) > self._max_typo_len or part in _english_words():
                continue
            seen: set[int] = set()
            for key in _deletes(part, 2 if len(part) >= _LONG - 2 else 1):
                for pid in self._typos.get(key, ()):
                    if pid in seen:
                        continue
                    seen.add(pid)
                    text = self._patterns[pid].text
                    dist = _osa(part, text, _max_edits(text))
                    if dist == 0 or dist > _max_edits(text):
                        continue
                    if dist == 1:
                        how, classic = _describe_edit(part, text)
                        score = _S_TYPO if classic else _S_TYPO_REPLACE
                    else:
                        how, score = "two edits", _S_TYPO2
                    if part[0] != text[0]:
                        if len(text) < _DISTINCTIVE:
                            continue  # short brands with another first letter: mostly real words
                        score -= _FIRST_LETTER_MALUS
                    techniques: tuple[str, ...] = ("typo",)
                    shown = f"{part!r} is"
                    if combo:
                        techniques = ("typo", "combosquat")
                        shown = f"{label.text!r} contains {part!r},"
                        score -= _SUBDOMAIN_MALUS
                    hits.add(pid, _hit(score - sub * _SUBDOMAIN_MALUS, techniques, sub,
                                  f"{shown} a typo of {text!r} ({how}){where}"))

    def _substring_hits(self, label: _Label, sub: bool, mixed: bool, where: str, hits: _Evidence) -> bool:
        """Brands inside a longer label (one Aho-Corasick pass); returns whether a lure word occurs."""
        text = label.text
        found = list(self._automaton.iter(label.folded))
        words = [(end - length + 1, end) for end, (length, _, _, mask) in found if mask]
        origins: list[int] | None = None
        for end, (length, pids, _, _) in found:
            start = end - length + 1
            if not pids or (start == 0 and end + 1 == len(label.folded)):
                continue  # a lure or a word; or the whole label, which the exact matchers handle
            if any(w_start < start and end <= w_end or w_start <= start and end < w_end for w_start, w_end in words):
                continue  # inside an ordinary longer word: "pineapple" does not imitate Apple
            if origins is None:
                origins = [*_fold_origins(text), len(text)]
            if (start and origins[start - 1] == origins[start]) or origins[end] == origins[end + 1]:
                continue  # starts or ends inside the expansion of one character (m -> rn)
            first, last = origins[start], origins[end] + 1
            at_start, at_end = _token_span(text, first, last)
            span = text[first:last]
            for pid in pids:
                pattern = self._patterns[pid]
                score = _substring_score(len(pattern.text), at_start, at_end)
                lookalike = span.replace("-", "") != pattern.text
                if score is None or ("-" in span and (lookalike or len(pattern.text) < _MIN_FUZZY)
                                     and not (at_start and at_end)):
                    continue  # hyphens may only split a brand into whole tokens (pay-pal-login)
                if lookalike and not _plausible_lookalike(text, first, last, len(pattern.text), at_start):
                    continue
                if lookalike:
                    techniques = ("homoglyph", "mixed_script", "combosquat") if mixed else ("homoglyph", "combosquat")
                    score += _HOMOGLYPH_BONUS
                    how = f"contains {span!r}, {pattern.text!r} written with look-alike characters"
                else:
                    techniques, how = ("combosquat",), f"joins {pattern.text!r} with other words"
                shown = f"{text!r} ({label.ascii})" if not text.isascii() else repr(text)
                hits.add(pid, _hit(score - sub * _SUBDOMAIN_MALUS, techniques, sub, f"{shown} {how}{where}"))
        return any(lure for _, (_, _, lure, _) in found)

    def _split_hits(self, name: _Name, hits: _Evidence) -> None:
        """A brand split across labels (``air.bnb-login.com``): search the joined labels.

        Only the plain spelling counts, starting at the start of a token.
        """
        labels = name.labels[: name.reg + 1]
        joined = "".join(label.flat for label in labels)
        bounds, starts, pos = set(), {0}, 0
        for label in labels:
            for token in label.text.replace("-", " ").split():
                starts.add(pos)
                pos += len(token)
            bounds.add(pos)
        origins: list[int] | None = None
        for end, (length, pids, _, _) in self._automaton.iter(_fold(joined)):
            if not pids or length < _MIN_INNER:
                continue
            if origins is None:
                origins = _fold_origins(joined) + [len(joined)]
            first, last = origins[end - length + 1], origins[end] + 1
            if first not in starts or not any(first < b < last for b in bounds):
                continue
            for pid in pids:
                text = self._patterns[pid].text
                if joined[first:last] == text:
                    hits.add(pid, _Hit(_S_SPLIT, ("brand_in_subdomain",),
                                  f"{text!r} is split across the labels of {name.ascii}"))


def brands_from_config(items: list[dict[str, object]]) -> list[Brand]:
    """Brands from the TOML ``[[brand]]`` tables: ``domain`` or ``domains``, ``keywords``, ``allow``.

    ``name`` is optional (it defaults to the first domain's label). Anything malformed raises a
    ConfigError naming the table and the key, so a typo in the config never silently drops a brand.
    """
    if not isinstance(items, list):
        raise ConfigError("[[brand]] must be a list of tables")
    brands = []
    for number, item in enumerate(items, 1):
        where = f"[[brand]] #{number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(item) - {"name", "domain", "domains", "keywords", "allow"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if ("domain" in item) == ("domains" in item):
            raise ConfigError(f"{where}: give exactly one of 'domain' (a string) or 'domains' (a list)")
        domains = _strings(where, "domains", [item["domain"]] if "domain" in item else item["domains"])
        if not domains:
            raise ConfigError(f"{where}: 'domains' is empty")
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        first = _own_domain(domains[0], name or domains[0])
        if first.reg < 0:
            raise ConfigError(f"{where}: {domains[0]!r} is a public suffix, not a domain")
        label = first.labels[first.reg].text
        brands.append(Brand(
            name=name or label,
            domains=domains,
            keywords=_strings(where, "keywords", item.get("keywords", [])),
            allow=_strings(where, "allow", item.get("allow", [])),
        ))
    return brands


def _strings(where: str, key: str, value: object) -> tuple[str, ...]:
    """A config value that must be a list of non-empty strings, as a tuple."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(v.strip().lower() for v in value)
