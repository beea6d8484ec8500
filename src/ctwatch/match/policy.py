"""Who may issue for a watched name: the ``[[watch]]`` policy of the config file.

::

    [[watch]]
    name = ".example.com"                   # watchlist syntax: the name and every subdomain
    authorised_issuers = ["<hex SHA-256 of the issuing CA's SubjectPublicKeyInfo>"]
    authorised_keys = ["<hex SHA-256 of a server key's SubjectPublicKeyInfo>"]
    authorised_tbs = ["<hex tbs_sha256 of one certificate>"]
    severity = "critical"                   # of a certificate no rule authorises (default critical)
    report_authorised = false               # also alert for authorised certificates (default: record only)
    lookalike = true                        # also watch for names imitating this one (see lookalike.py)

A certificate is authorised for an entry when any one of its rules matches: its issuer's key, its
own key, or the certificate itself (by TBS hash, so a certificate and its precertificate are the
same). When a certificate names several watched entries, each entry that has rules must
authorise it: one domain owner's policy cannot vouch for another's names. The monitor and
``ctwatch check`` share this one evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError
from .watchlist import Watchlist, normalise_item

RULES = ("authorised_issuers", "authorised_keys", "authorised_tbs")
WATCH_KEYS = frozenset({"name", "severity", "report_authorised", "lookalike", *RULES})
SEVERITIES = ("info", "low", "medium", "high", "critical")
_HEX256 = re.compile(r"[0-9a-f]{64}")

# Severities: nothing to report, a watched name with nothing against it, a policy violation.
NONE, INFO, CRITICAL = "none", "info", "critical"


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The policy's answer for one certificate.

    ``watched`` is the first matching watch item (config order), ``authorised`` whether a rule
    vouches for the certificate and ``rule`` which one (``authorised_issuers[.example.com]``).
    ``severity`` is ``none`` (not watched), ``info`` (watched, and authorised or without rules)
    or ``critical`` (a rule-bearing entry does not authorise it).
    """

    watched: str | None
    authorised: bool
    rule: str | None
    severity: str
    has_rules: bool = False
    report: bool = True  # False: an authorised certificate the owner does not want to hear about

    @property
    def violation(self) -> bool:
        """A watched certificate that rules exist for and none authorises."""
        return self.has_rules and not self.authorised

    def to_json(self) -> dict[str, object]:
        """JSON-ready form for ``check --json`` and events."""
        return {"watched": self.watched, "authorised": self.authorised, "rule": self.rule,
                "severity": self.severity, "has_rules": self.has_rules, "report": self.report}


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One ``[[watch]]`` table: a watch item and the hashes it authorises."""

    name: str
    issuers: frozenset[str]
    keys: frozenset[str]
    tbs: frozenset[str]
    severity: str = CRITICAL
    report_authorised: bool = False

    @property
    def has_rules(self) -> bool:
        """Whether the entry judges certificates at all (an entry with no rules only watches)."""
        return bool(self.issuers or self.keys or self.tbs)

    def authorising_rule(self, issuer_spki_sha256: str | None, pubkey_sha256: str,
                         tbs_sha256: str) -> str | None:
        """The first rule that authorises the certificate, or None."""
        for rule, allowed, value in (("authorised_tbs", self.tbs, tbs_sha256),
                                     ("authorised_keys", self.keys, pubkey_sha256),
                                     ("authorised_issuers", self.issuers, issuer_spki_sha256)):
            if value is not None and value.lower() in allowed:
                return f"{rule}[{self.name}]"
        return None


def _hashes(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of hex SHA-256 strings")
    out = set()
    for v in value:
        h = v.replace(":", "").strip().lower()
        if not _HEX256.fullmatch(h):
            raise ConfigError(f"{where}: {v!r} is not a hex SHA-256 (64 hex digits)")
        out.add(h)
    return frozenset(out)


class Policy:
    """The watched names of the config and what each authorises; see the module docstring."""

    def __init__(self, entries: list[WatchEntry]) -> None:
        self.entries = entries
        self._matchers = [Watchlist([e.name]) for e in entries]

    @classmethod
    def from_config(cls, raw: dict[str, object], source: str = "config") -> Policy:
        """Read the ``[[watch]]`` tables of a parsed config; a bad one is a ConfigError."""
        tables = raw.get("watch", [])
        if not isinstance(tables, list):
            raise ConfigError(f"{source}: 'watch' must be an array of tables ([[watch]])")
        entries = []
        for i, table in enumerate(tables, 1):
            where = f"{source}: [[watch]] #{i}"
            if not isinstance(table, dict):
                raise ConfigError(f"{where} is not a table")
            unknown = set(table) - WATCH_KEYS
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                                  f"(known: {', '.join(sorted(WATCH_KEYS))})")
            name = table.get("name")
            if not isinstance(name, str):
                raise ConfigError(f"{where}: needs name = \"example.com\" or \".example.com\"")
            try:
                item = normalise_item(name)
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None
            severity = table.get("severity", CRITICAL)
            if severity not in SEVERITIES:
                raise ConfigError(f"{where}.severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
            for flag in ("report_authorised", "lookalike"):
                if not isinstance(table.get(flag, False), bool):
                    raise ConfigError(f"{where}.{flag}: expected true or false")
            report = table.get("report_authorised", False)
            entries.append(WatchEntry(
                item,
                *(_hashes(table.get(rule, []), f"{where}.{rule}") for rule in RULES),
                severity=str(severity), report_authorised=report,
            ))
        return cls(entries)

    @property
    def watch_items(self) -> list[str]:
        """The watch items, for a :class:`Watchlist` of everything the config watches."""
        return [e.name for e in self.entries]

    def evaluate(self, names: list[str], issuer_spki_sha256: str | None, pubkey_sha256: str,
                 tbs_sha256: str) -> PolicyResult:
        """Judge a certificate with identities ``names`` (see :mod:`ctwatch.identities`)."""
        matched = [e for e, m in zip(self.entries, self._matchers, strict=True) if m.match(names)]
        if not matched:
            return PolicyResult(None, False, None, NONE)
        ruled = [e for e in matched if e.has_rules]
        if not ruled:
            return PolicyResult(matched[0].name, False, None, INFO)
        rules = [e.authorising_rule(issuer_spki_sha256, pubkey_sha256, tbs_sha256) for e in ruled]
        if all(rules):
            return PolicyResult(matched[0].name, True, ", ".join(r for r in rules if r), INFO, True,
                                report=any(e.report_authorised for e in ruled))
        worst = max((e for e, r in zip(ruled, rules, strict=True) if not r),
                    key=lambda e: SEVERITIES.index(e.severity))
        return PolicyResult(worst.name, False, None, worst.severity, True)
