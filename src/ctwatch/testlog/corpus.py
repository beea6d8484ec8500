"""A deterministic corpus of log entries: realistic random certificates plus planted ones.

About two thirds of the entries are precertificates and one third final certificates; every
final certificate directly follows its precertificate and embeds an SCT from the RFC 6962 test
log over that precertificate's entry. Random names live under reserved TLDs (``.test``,
``.example``) so no real domain appears. Planted pairs (precert + final cert) land at evenly
spread positions and are listed in the manifest, which is what tests and demos check alerts
against. The same seed, count and plants always give byte-identical entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ..cttypes import PRECERT_ENTRY, X509_ENTRY, TimestampedEntry
from ..errors import ConfigError
from .ca import Issuer, LeafFactory, PrivateKey, SubjectKey
from .store import EncodedEntry, KeyRing, Store

BASE_TIMESTAMP_MS = 1_748_736_000_000  # 2025-06-01T00:00:00Z: entry i is logged at base + i·100 ms
ENTRY_INTERVAL_MS = 100
PAIR_PROBABILITY = 0.5  # a random unit is a precert+cert pair or a lone precert: 2/3 precerts
RSA_PROBABILITY = 0.12
MAX_NAME_BYTES = 4096
APPEND_CHUNK = 20_000

_TLDS = ("test", "example")
_WORDS = ("corp", "labs", "shop", "cloud", "media", "systems", "group", "online", "works", "studio", "data")
_SUBDOMAINS = ("www", "mail", "api", "cdn", "shop", "app", "portal", "vpn", "dev", "staging", "static", "m",
               "auth", "login", "admin", "blog", "status", "img")
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_LIFETIMES = (90, 90, 90, 90, 47, 200, 398)


@dataclass(frozen=True, slots=True)
class Plant:
    """A certificate (precert + final cert) to plant for ``names``, by the Unexpected CA if ``impostor``.

    Names are put into the certificate byte for byte (UTF-8), hostile content included.
    """

    names: tuple[str, ...]
    impostor: bool = False

    def __post_init__(self) -> None:
        if not self.names or any(not isinstance(n, str) or not n for n in self.names):
            raise ConfigError(f"a planted certificate needs non-empty names, got {self.names!r}")
        if any(len(n.encode()) > MAX_NAME_BYTES for n in self.names):
            raise ConfigError(f"planted names are limited to {MAX_NAME_BYTES} bytes each")

    @classmethod
    def parse(cls, spec: str, impostor: bool = False) -> Plant:
        """``a.example,b.example`` → one certificate for both names (the CLI form)."""
        return cls(tuple(n.strip() for n in spec.split(",") if n.strip()), impostor)


def entry_timestamp(index: int) -> int:
    """The log timestamp (ms) of entry ``index``: fixed, so corpora are reproducible."""
    return BASE_TIMESTAMP_MS + index * ENTRY_INTERVAL_MS


def plant_positions(start: int, count: int, n_plants: int) -> list[int]:
    """Indexes of the precerts of ``n_plants`` pairs spread evenly over [start, start + count)."""
    spare = count - 2 * n_plants
    if spare < 0:
        raise ConfigError(f"{n_plants} planted pairs need at least {2 * n_plants} entries, not {count}")
    return [start + 2 * j + (j + 1) * spare // (n_plants + 1) for j in range(n_plants)]


def random_names(rng: random.Random) -> list[str]:
    """1–5 names of one random registrable domain, e.g. ``www.k3j9x-labs.test``."""
    label = "".join(rng.choices(_ALNUM, k=rng.randint(4, 10)))
    if rng.random() < 0.4:
        label += "-" + rng.choice(_WORDS)
    domain = f"{label}.{rng.choice(_TLDS)}"
    want = rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))
    names = [domain if rng.random() < 0.5 else "www." + domain]
    while len(names) < want:
        r = rng.random()
        if r < 0.15:
            name = "*." + domain
        elif r < 0.8:
            name = f"{rng.choice(_SUBDOMAINS)}.{domain}"
        else:
            name = "".join(rng.choices(_ALNUM, k=5)) + "." + domain
        if name not in names:
            names.append(name)
    return names


Unit = tuple[list[EncodedEntry], list[dict[str, object]]]


def make_entries(keys: KeyRing, seed: int, start: int, count: int, plants: Sequence[Plant] = ()) -> Unit:
    """Entries [start, start + count) and manifest records of the planted ones (no I/O).

    Deterministic in (keys, seed, start, count, plants).
    """
    entries: list[EncodedEntry] = []
    planted: list[dict[str, object]] = []
    for unit_entries, unit_planted in iter_units(keys, seed, start, count, plants):
        entries += unit_entries
        planted += unit_planted
    return entries, planted


def iter_units(keys: KeyRing, seed: int, start: int, count: int,
               plants: Sequence[Plant] = ()) -> Iterator[Unit]:
    """:func:`make_entries` one unit (a lone precert, or a precert and its cert) at a time."""
    rng = random.Random(f"ctwatch-testlog:{seed}:{start}")
    plant_at = dict(zip(plant_positions(start, count, len(plants)), plants, strict=True))
    factories = {False: LeafFactory(keys.test_ca), True: LeafFactory(keys.unexpected_ca)}
    end = start + count
    i = start
    while i < end:
        plant = plant_at.get(i)
        if plant is not None:
            names, impostor, pair = list(plant.names), plant.impostor, True
        else:
            names, impostor = random_names(rng), False
            pair = rng.random() < PAIR_PROBABILITY and i + 1 < end and i + 1 not in plant_at
        pool = keys.rsa_subjects if keys.rsa_subjects and rng.random() < RSA_PROBABILITY else keys.ec_subjects
        ts = entry_timestamp(i)
        unit = _issue_unit(
            keys, factories[impostor], i, names, rng.choice(pool), rng.getrandbits(126) | 1 << 125,
            dt.datetime.fromtimestamp(ts // 1000 - 3600, dt.UTC), dt.timedelta(days=rng.choice(_LIFETIMES)),
            pair, plant is not None, impostor,
        )
        yield unit
        i += len(unit[0])


def _issue_unit(keys: KeyRing, factory: LeafFactory, i: int, names: list[str], subject_key: SubjectKey,
                serial: int, not_before: dt.datetime, lifetime: dt.timedelta, pair: bool, planted: bool,
                impostor: bool) -> Unit:
    """Entry ``i`` (a precert) and, with ``pair``, ``i + 1`` (its cert); manifest records if ``planted``."""
    issuer = factory.issuer
    ts = entry_timestamp(i)
    log = keys.rfc6962 if pair else None
    issued = factory.issue(names, subject_key, serial, not_before, lifetime, log, ts)
    pre_entry = TimestampedEntry(ts, PRECERT_ENTRY, issued.tbs, issuer.issuer_key_hash)
    entries = [EncodedEntry.of(i, pre_entry, issued.precert, issuer.chain)]
    records = [(i, "precert", issued.precert)]
    if pair:
        assert issued.final is not None
        cert_entry = TimestampedEntry(entry_timestamp(i + 1), X509_ENTRY, issued.final)
        entries.append(EncodedEntry.of(i + 1, cert_entry, None, issuer.chain))
        records.append((i + 1, "x509", issued.final))
    if not planted:
        return entries, []
    tbs_sha256 = hashlib.sha256(issued.tbs).hexdigest()
    return entries, [{
        "index": index, "entry_type": etype, "names": names, "tbs_sha256": tbs_sha256,
        "cert_sha256": hashlib.sha256(der).hexdigest(), "issuer": issuer.name, "impostor": impostor,
    } for index, etype, der in records]


def foreign_pair(keys: KeyRing, start: int, names: Sequence[str], issuer: Issuer,
                 subject_key: PrivateKey | None = None) -> Unit:
    """A precert and its cert for ``names`` from any ``issuer``, as entries ``start`` and ``start + 1``.

    For what a corpus cannot hold: a CA outside the test PKI (say one copying the test CA's name
    under another key) or a leaf key the caller chooses (default: a fresh P-256 key). The records
    are marked ``impostor`` unless ``issuer`` is the test CA; serial and key are random, so this is
    the one non-deterministic way into a log.
    """
    key = subject_key or ec.generate_private_key(ec.SECP256R1())
    not_before = dt.datetime.fromtimestamp(entry_timestamp(start) // 1000 - 3600, dt.UTC)
    return _issue_unit(keys, LeafFactory(issuer), start, list(names), SubjectKey.of(key),
                       x509.random_serial_number(), not_before, dt.timedelta(days=90),
                       True, True, issuer.issuer_key_hash != keys.test_ca.issuer_key_hash)


def generate_corpus(directory: Path, count: int, *, seed: int = 1, plants: Sequence[Plant] = (),
                    rsa_log: bool = False) -> Store:
    """Create a test log directory holding ``count`` entries; returns the loaded store."""
    if count < 0:
        raise ConfigError("count must not be negative")
    store = Store.create(directory, seed, rsa_log)
    grow_corpus(store, count, plants)
    return store


def grow_corpus(store: Store, count: int, plants: Sequence[Plant] = (),
                persist: bool = True) -> list[dict[str, object]]:
    """Append ``count`` more entries (deterministically); returns the new manifest records."""
    if count < 0:
        raise ConfigError("count must not be negative")
    entries: list[EncodedEntry] = []
    planted: list[dict[str, object]] = []
    new_planted: list[dict[str, object]] = []
    for unit_entries, unit_planted in iter_units(store.keys, store.seed, store.size, count, plants):
        entries += unit_entries
        planted += unit_planted
        if len(entries) >= APPEND_CHUNK:  # bounded memory for large corpora
            store.append(entries, planted, persist)
            new_planted += planted
            entries, planted = [], []
    store.append(entries, planted, persist)
    return new_planted + planted
