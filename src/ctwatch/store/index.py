"""The searchable certificate index: crt.sh's queries over what the monitor processed.

One interface (:class:`Index`), two backends with the same schema, the same SQL and therefore the
same results: SQLite (the default, ``<data_dir>/index.sqlite``) and PostgreSQL (``--db
postgresql://…``, for large deployments and several processes).

Layout, and why:

* ``certs`` holds one row per TBSCertificate (``tbs_sha256``): a certificate and its
  precertificate are one row, as crt.sh deduplicates them; ``kinds`` records which were seen.
* ``sightings`` keeps every log entry (log, index, timestamp) that carried the certificate. Its
  ``seq`` only grows, so it is the resume cursor of the certstream feed (:meth:`Index.since`).
* ``dn`` holds each distinct identity once, **reversed** (``moc.elpmaxe.www``): ``%.example.com``
  becomes a range scan of the B-tree (``rev`` between ``moc.elpmaxe.`` and ``moc.elpmaxe/``),
  and ``example.com`` an equality. Substring patterns (``%example%``) go through a trigram index
  over the same column (SQLite: FTS5 ``trigram``; PostgreSQL: ``pg_trgm``), then an exact
  ``LIKE`` check. A pattern the indexes cannot narrow down is refused, never scanned.
* ``cert_names`` links identities to certificates; ``cas`` gives each issuer (DN + key) the
  stable ``issuer_ca_id`` that crt.sh clients expect; ``chain_certs`` stores each chain
  certificate once, however many sightings reference it.

Ids are allocated with plain ``INSERT`` after a lookup (never an upsert that burns sequence
values), so both backends hand out the same ids for the same records.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import ipaddress
import re
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import idna
import orjson

from ..errors import ConfigError, CtwatchError, DecodeError

MAX_QUERY = 1024
MAX_LIMIT = 10_000
MIN_LITERAL = 3  # characters a trigram needs: shorter pattern pieces cannot use the index
MAX_TRIGRAMS = 32
_IN_CHUNK = 500  # keys per IN (…) list: far below both backends' parameter limits
PRECERT, X509 = 1, 2  # bits of certs.kinds
KIND_NAMES = {PRECERT: "precert", X509: "x509"}
_KIND_BITS = {"precert": PRECERT, "x509": X509}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"-?[0-9a-f]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class QueryError(CtwatchError):
    """A search query is malformed or too broad to answer from the indexes."""


class Index(Protocol):
    """What the monitor writes to and the web server reads from."""

    def add(self, records: list[dict[str, Any]]) -> None:
        """Store certificate records (idempotent): new certificates, new sightings, nothing twice."""

    def search(
        self,
        q: str,
        *,
        issuer: str | None = None,
        exclude_expired: bool = False,
        dedupe: bool = True,
        after: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Certificates matching a crt.sh-style query, newest first; ``after`` pages (an id)."""

    def get(self, cert_id: int) -> dict[str, Any] | None:
        """One certificate with its DER, chains and every sighting, or None."""

    def since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Sightings after ``cursor`` in order, each a full record carrying its own ``cursor``."""

    def head(self) -> int:
        """The latest cursor: where a new live-feed client starts."""

    def close(self) -> None:
        """Release connections."""


def open_index(data_dir: Path | None, db_url: str | None = None) -> SqlIndex:
    """PostgreSQL when ``db_url`` is given, else SQLite at ``<data_dir>/index.sqlite``."""
    if db_url:
        if not db_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"--db must be a postgresql:// URL, not {db_url.split(':', 1)[0]!r}")
        return PostgresIndex(db_url)
    if data_dir is None:
        raise ConfigError("an index needs a data directory or a database URL")
    return SqliteIndex(data_dir / "index.sqlite")


# --- queries -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: ``kind`` is identity, sha256, serial or id."""

    kind: str
    value: str


def parse_query(q: str) -> Query:
    """crt.sh's query forms: an identity or ``%`` pattern, a SHA-256, a crt.sh id, ``serial:HEX``.

    ``sha256:HEX`` and ``id:N`` are accepted too; a bare 64-digit hex string is a SHA-256 (of
    the certificate, precertificate or TBS) and a bare number an id, as on crt.sh.
    """
    q = q.strip()
    if not q:
        raise QueryError("empty query")
    if len(q) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters")
    low = q.lower()
    prefix, sep, rest = low.partition(":")
    if sep and prefix in ("serial", "sha256", "id"):
        rest = rest.strip()
        if prefix == "serial":
            return Query("serial", normalise_serial(rest))
        if prefix == "sha256":
            if not _HEX64.fullmatch(rest):
                raise QueryError("a SHA-256 is 64 hex digits")
            return Query("sha256", rest)
        return Query("id", str(_parse_id(rest)))
    if _HEX64.fullmatch(low):
        return Query("sha256", low)
    if q.isdigit():
        return Query("id", str(_parse_id(q)))
    return Query("identity", normalise_pattern(q))


def _parse_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise QueryError(f"not a certificate id: {text[:40]!r}")
    return int(text)


def normalise_serial(text: str) -> str:
    """Lower-case hex without separators or leading zeros (``04:0A`` → ``40a``)."""
    s = text.strip().lower().replace(":", "").replace(" ", "")
    if s.startswith("0x"):
        s = s[2:]
    if not _HEX.fullmatch(s) or len(s) > 256:
        raise QueryError(f"a serial number is hex digits, not {text[:80]!r}")
    neg = s.startswith("-")
    s = s.lstrip("-").lstrip("0") or "0"
    return "-" + s if neg else s


def normalise_pattern(text: str) -> str:
    """An identity or pattern in the form the index stores: lower case, IDNA, canonical IPs."""
    p = text.strip().lower().rstrip(".")
    if "%" not in p:
        try:
            ip = ipaddress.ip_address(p)
        except ValueError:
            pass
        else:
            return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    if not p.isascii():
        p = ".".join(_ascii_label(label) for label in p.split("."))
    if not p:
        raise QueryError("empty query")
    return p


def _ascii_label(label: str) -> str:
    if label.isascii() or "%" in label:
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return "xn--" + label.encode("punycode").decode("ascii")


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _next_prefix(p: str) -> str:
    """The smallest string greater than every string starting with ``p``."""
    return p[:-1] + chr(ord(p[-1]) + 1)


def trigrams(segments: Sequence[str]) -> list[str]:
    """Distinct trigrams of the pattern pieces long enough to have any (at most MAX_TRIGRAMS)."""
    out: dict[str, None] = {}
    for s in segments:
        for i in range(len(s) - MIN_LITERAL + 1):
            out[s[i : i + MIN_LITERAL]] = None
    grams = list(out)
    if len(grams) > MAX_TRIGRAMS:  # any subset narrows correctly; the LIKE check is exact
        step = len(grams) / MAX_TRIGRAMS
        grams = [grams[int(i * step)] for i in range(MAX_TRIGRAMS)]
    return grams


# --- records -------------------------------------------------------------------------------------


def _iso_to_unix(value: object, what: str) -> int | None:
    if value is None:  # a validity the monitor could not read
        return None
    if not isinstance(value, str):
        raise DecodeError(f"index record: {what} must be an ISO 8601 string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"index record: {what} {value[:40]!r} is not ISO 8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple())


def unix_to_iso(ts: int | None) -> str | None:
    """``2024-05-01T12:00:00Z`` (also for dates before 1970)."""
    if ts is None:
        return None
    return (_EPOCH + timedelta(seconds=ts)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecodeError(f"index record: {what} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"index record: {what} is not valid base64") from None


def _common_name(subject: str) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        attrs = x509.Name.from_rfc4514_string(subject).get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(attrs[0].value) if attrs else None


@dataclass(slots=True)
class _Record:
    """A validated record, ready for the SQL."""

    tbs: str
    kind: int
    variant_sha256: str | None
    der: bytes | None
    chain: list[bytes]
    issuer: str
    issuer_spki: str
    serial: str
    subject: str
    common_name: str | None
    names: list[str]
    names_unicode: list[str]
    not_before: int | None
    not_after: int | None
    timestamp: int
    pubkey: str | None
    watch_item: str | None
    unexpected: bool
    log_id: str
    log_url: str
    index: int


def _str(rec: dict[str, Any], key: str, optional: bool = False) -> str | None:
    v = rec.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise DecodeError(f"index record: {key} must be a string")
    return v


def _int(rec: dict[str, Any], key: str) -> int:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 63:
        raise DecodeError(f"index record: {key} must be a non-negative integer")
    return v


def _hex_or_none(rec: dict[str, Any], key: str) -> str | None:
    v = _str(rec, key, optional=True)
    if v is not None and not _HEX64.fullmatch(v):
        raise DecodeError(f"index record: {key} must be 64 lower-case hex digits")
    return v


def validate_record(rec: dict[str, Any]) -> _Record:
    """Check one monitor record; a malformed one is a DecodeError naming the field."""
    if not isinstance(rec, dict):
        raise DecodeError("index record must be an object")
    tbs = _hex_or_none(rec, "tbs_sha256")
    if tbs is None:
        raise DecodeError("index record: tbs_sha256 is required")
    kind = _KIND_BITS.get(str(rec.get("entry_type")))
    if kind is None:
        raise DecodeError("index record: entry_type must be x509 or precert")
    names = rec.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DecodeError("index record: names must be a list of strings")
    names = list(dict.fromkeys(n.lower() for n in names if n))
    uni = rec.get("names_unicode") or names
    if not isinstance(uni, list) or not all(isinstance(n, str) for n in uni):
        raise DecodeError("index record: names_unicode must be a list of strings")
    der = _b64(rec["der"], "der") if rec.get("der") is not None else None
    chain_in = rec.get("chain") or []
    if not isinstance(chain_in, list):
        raise DecodeError("index record: chain must be a list")
    subject = _str(rec, "subject") or ""
    try:
        serial = normalise_serial(_str(rec, "serial") or "")
    except QueryError as e:
        raise DecodeError(f"index record: {e}") from None
    variant = _hex_or_none(rec, "cert_sha256")
    if der is not None:
        variant = hashlib.sha256(der).hexdigest()
    watch_item = rec.get("watch_item")
    return _Record(
        tbs=tbs,
        kind=kind,
        variant_sha256=variant,
        der=der,
        chain=[_b64(c, "chain") for c in chain_in],
        issuer=_str(rec, "issuer") or "",
        issuer_spki=_hex_or_none(rec, "issuer_spki_sha256") or "",
        serial=serial,
        subject=subject,
        common_name=_common_name(subject),
        names=names,
        names_unicode=[str(n) for n in uni],
        not_before=_iso_to_unix(rec.get("not_before"), "not_before"),
        not_after=_iso_to_unix(rec.get("not_after"), "not_after"),
        timestamp=_int(rec, "timestamp"),
        pubkey=_hex_or_none(rec, "pubkey_sha256"),
        watch_item=watch_item if isinstance(watch_item, str) else None,
        unexpected=bool(rec.get("unexpected")),
        log_id=_str(rec, "log_id") or "",
        log_url=_str(rec, "log_url") or "",
        index=_int(rec, "index"),
    )


# --- the shared SQL ------------------------------------------------------------------------------

_CERT_COLS = (
    "c.id, c.tbs_sha256, c.cert_sha256, c.precert_sha256, c.kinds, c.serial, c.subject, c.common_name,"
    " c.names, c.names_unicode, c.not_before, c.not_after, c.first_seen, c.pubkey_sha256, c.watch_item,"
    " c.unexpected, a.id, a.name, a.spki_sha256"
)
_N_CERT_COLS = 19


def _cert_dict(row: Sequence[Any]) -> dict[str, Any]:
    kinds = row[4]
    return {
        "id": row[0],
        "tbs_sha256": row[1],
        "cert_sha256": row[2],
        "precert_sha256": row[3],
        "entry_types": [name for bit, name in KIND_NAMES.items() if kinds & bit],
        "serial": row[5],
        "subject": row[6],
        "common_name": row[7],
        "names": orjson.loads(row[8]),
        "names_unicode": orjson.loads(row[9]) if row[9] is not None else orjson.loads(row[8]),
        "not_before": unix_to_iso(row[10]),
        "not_after": unix_to_iso(row[11]),
        "entry_timestamp": row[12],
        "pubkey_sha256": row[13],
        "watch_item": row[14],
        "unexpected": bool(row[15]),
        "issuer_ca_id": row[16],
        "issuer": row[17],
        "issuer_spki_sha256": row[18] or None,
    }


_INSERT_COLS = (
    "tbs_sha256",
    "cert_sha256",
    "precert_sha256",
    "cert_der",
    "precert_der",
    "kinds",
    "ca_id",
    "serial",
    "subject",
    "common_name",
    "names",
    "names_unicode",
    "not_before",
    "not_after",
    "first_seen",
    "pubkey_sha256",
    "watch_item",
    "unexpected",
)


def _variants(r: _Record) -> tuple[str | None, str | None, bytes | None, bytes | None]:
    """(cert_sha256, precert_sha256, cert_der, precert_der) as far as record ``r`` tells."""
    if r.kind == PRECERT:
        return None, r.variant_sha256, None, r.der
    return r.variant_sha256, None, r.der, None


def _cert_row(r: _Record, ca_id: int) -> tuple[Any, ...]:
    """The values of :data:`_INSERT_COLS` for a certificate first seen in ``r``."""
    return (
        r.tbs,
        *_variants(r),
        r.kind,
        ca_id,
        r.serial,
        r.subject,
        r.common_name,
        _json(r.names),
        # most names are ASCII: the display form is stored only when it differs
        None if r.names_unicode == r.names else _json(r.names_unicode),
        r.not_before,
        r.not_after,
        r.timestamp,
        r.pubkey,
        r.watch_item,
        int(r.unexpected),
    )


# Another sighting of a stored certificate: fill in the other variant, keep the earliest timestamp.
_UPDATE_SQL = (
    "UPDATE certs SET"
    " cert_sha256 = COALESCE(cert_sha256, ?), precert_sha256 = COALESCE(precert_sha256, ?),"
    " cert_der = COALESCE(cert_der, ?), precert_der = COALESCE(precert_der, ?),"
    " kinds = kinds | ?,"
    " first_seen = CASE WHEN ? < first_seen THEN ? ELSE first_seen END,"
    " watch_item = COALESCE(watch_item, ?),"
    " unexpected = CASE WHEN ? > unexpected THEN ? ELSE unexpected END"
    " WHERE id = ?"
)


def _update_row(r: _Record, cert_id: int) -> tuple[Any, ...]:
    """The parameters of :data:`_UPDATE_SQL` for record ``r``."""
    flag = int(r.unexpected)
    return (*_variants(r), r.kind, r.timestamp, r.timestamp, r.watch_item, flag, flag, cert_id)


class SqlIndex:
    """The index logic, written once in the SQL both backends speak; subclasses connect."""

    #: SQL yielding dn ids whose reversed name matches the trigrams (placeholder: the trigrams).
    trigram_sql: str
    #: SQL adding a new identity (id, reversed name) to the trigram index, if it is not automatic.
    trigram_insert_sql: str | None = None

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- backend hooks --

    def _connect(self) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        """The backend's spelling of ``sql`` (written with ``?`` placeholders)."""
        return sql

    def _trigram_args(self, grams: list[str], rev_like: str) -> list[Any]:
        raise NotImplementedError

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[None]:
        raise NotImplementedError
        yield

    # -- connections --

    def _conn(self) -> Any:
        """This thread's connection (readers never wait for each other or for the writer)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(self._conn().execute(self._sql(sql), tuple(args)).fetchall())

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._conn().execute(self._sql(sql), tuple(args)).fetchone()

    def close(self) -> None:
        """Close every connection this index opened (all threads)."""
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    # -- writing --

    def add(self, records: list[dict[str, Any]]) -> None:
        """Validate every record first (a bad one is a DecodeError and nothing is written).

        One transaction per call, and each table is written with a few statements per call, not
        per record, so a large batch (a backfill, the benchmark's 10 M names) loads at executemany
        speed. Certificate ids still follow record order, the same on both backends.
        """
        recs = [validate_record(r) for r in records]
        if not recs:
            return
        with self._write_lock:
            conn = self._conn()
            with self._transaction(conn):
                self._add_batch(conn, recs, time.time())

    def _ex(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(sql), tuple(args))

    def _many(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> None:
        if rows:
            conn.cursor().executemany(self._sql(sql), rows)

    def _lookup(self, conn: Any, sql: str, keys: Collection[Any]) -> dict[Any, Any]:
        """``{key: value}`` of ``sql`` (``SELECT key, value … WHERE key IN``), the ``(…)`` appended."""
        out: dict[Any, Any] = {}
        ks = list(keys)
        for i in range(0, len(ks), _IN_CHUNK):
            chunk = ks[i : i + _IN_CHUNK]
            out.update(self._ex(conn, f"{sql} ({','.join('?' * len(chunk))})", chunk).fetchall())
        return out

    def _add_batch(self, conn: Any, recs: list[_Record], now: float) -> None:
        cas: dict[tuple[str, str], int] = {}
        for r in recs:
            if (r.issuer, r.issuer_spki) not in cas:
                cas[r.issuer, r.issuer_spki] = self._ca_id(conn, r.issuer, r.issuer_spki)
        cert_ids = self._lookup(
            conn, "SELECT tbs_sha256, id FROM certs WHERE tbs_sha256 IN", {r.tbs for r in recs}
        )
        new: dict[str, _Record] = {}  # the first record of each certificate not stored yet
        for r in recs:
            if r.tbs not in cert_ids:
                new.setdefault(r.tbs, r)
        self._many(
            conn,
            f"INSERT INTO certs ({', '.join(_INSERT_COLS)}) VALUES ({', '.join('?' * len(_INSERT_COLS))})",
            [_cert_row(r, cas[r.issuer, r.issuer_spki]) for r in new.values()],
        )
        cert_ids.update(self._lookup(conn, "SELECT tbs_sha256, id FROM certs WHERE tbs_sha256 IN", new))
        self._many(
            conn, _UPDATE_SQL, [_update_row(r, cert_ids[r.tbs]) for r in recs if new.get(r.tbs) is not r]
        )
        self._add_names(conn, [(cert_ids[tbs], r.names) for tbs, r in new.items()])
        chains = [[hashlib.sha256(der).hexdigest() for der in r.chain] for r in recs]
        ders = {
            sha: der
            for r, shas in zip(recs, chains, strict=True)
            for sha, der in zip(shas, r.chain, strict=True)
        }
        stored = self._lookup(conn, "SELECT sha256, 1 FROM chain_certs WHERE sha256 IN", ders)
        self._many(
            conn,
            "INSERT INTO chain_certs (sha256, der) VALUES (?, ?)",
            [(sha, der) for sha, der in ders.items() if sha not in stored],
        )
        self._many(
            conn,
            "INSERT INTO sightings (cert_id, log_id, log_url, idx, timestamp, entry_type, chain, seen)"
            " SELECT ?,?,?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM sightings WHERE log_id = ? AND idx = ?)",
            [
                (
                    cert_ids[r.tbs],
                    r.log_id,
                    r.log_url,
                    r.index,
                    r.timestamp,
                    KIND_NAMES[r.kind],
                    " ".join(shas),
                    now,
                    r.log_id,
                    r.index,
                )
                for r, shas in zip(recs, chains, strict=True)
            ],
        )

    def _ca_id(self, conn: Any, name: str, spki: str) -> int:
        row = self._ex(conn, "SELECT id FROM cas WHERE name = ? AND spki_sha256 = ?", (name, spki)).fetchone()
        if row is not None:
            return int(row[0])
        return int(
            self._ex(
                conn,
                "INSERT INTO cas (name, name_lc, spki_sha256) VALUES (?,?,?) RETURNING id",
                (name, name.lower(), spki),
            ).fetchone()[0]
        )

    def _add_names(self, conn: Any, certs: list[tuple[int, list[str]]]) -> None:
        """Link new certificates to their identities, adding the identities new to the index.

        New identities go in sorted, so consecutive inserts land on neighbouring B-tree pages.
        """
        revs = list(dict.fromkeys(name[::-1] for _, names in certs for name in names))
        ids = self._lookup(conn, "SELECT rev, id FROM dn WHERE rev IN", revs)
        missing = sorted(rev for rev in revs if rev not in ids)
        self._many(conn, "INSERT INTO dn (rev) VALUES (?)", [(rev,) for rev in missing])
        added = self._lookup(conn, "SELECT rev, id FROM dn WHERE rev IN", missing)
        if self.trigram_insert_sql is not None:
            self._many(conn, self.trigram_insert_sql, [(name_id, rev) for rev, name_id in added.items()])
        ids.update(added)
        self._many(
            conn,
            "INSERT INTO cert_names (name_id, cert_id) VALUES (?, ?)",
            [(ids[name[::-1]], cert_id) for cert_id, names in certs for name in names],
        )

    # -- reading --

    def search(
        self,
        q: str,
        *,
        issuer: str | None = None,
        exclude_expired: bool = False,
        dedupe: bool = True,
        after: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """See :class:`Index`. ``q`` may be empty when ``issuer`` (a substring or ``%`` pattern) is given."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT} (page with 'after')")
        where: list[str] = []
        args: list[Any] = []
        if q.strip():
            cond, cargs = self._condition(parse_query(q))
            where.append(cond)
            args += cargs
        elif not issuer:
            raise QueryError("empty query")
        if issuer:
            pat = issuer.strip().lower()
            if not pat or len(pat) > MAX_QUERY:
                raise QueryError("the issuer pattern must be 1 to 1024 characters")
            if "%" not in pat:
                pat = "%" + _like_escape(pat) + "%"
            where.append("c.ca_id IN (SELECT id FROM cas WHERE name_lc LIKE ? ESCAPE '\\')")
            args.append(pat)
        if exclude_expired:
            where.append("c.not_after > ?")
            args.append(int(time.time()))
        if after is not None:
            where.append("c.id < ?")
            args.append(after)
        rows = self._all(
            f"SELECT {_CERT_COLS} FROM certs c JOIN cas a ON a.id = c.ca_id WHERE {' AND '.join(where)}"
            " ORDER BY c.id DESC LIMIT ?",
            [*args, limit],
        )
        out = []
        for row in rows:
            d = _cert_dict(row)
            if dedupe:
                out.append(d)
            else:
                out += [{**d, "entry_types": [kind]} for kind in d["entry_types"]]
        return out

    def _condition(self, query: Query) -> tuple[str, list[Any]]:
        if query.kind == "sha256":
            return "(c.tbs_sha256 = ? OR c.cert_sha256 = ? OR c.precert_sha256 = ?)", [query.value] * 3
        if query.kind == "serial":
            return "c.serial = ?", [query.value]
        if query.kind == "id":
            return "c.id = ?", [int(query.value)]
        names_sql, args = self._name_ids(query.value)
        return f"c.id IN (SELECT cn.cert_id FROM cert_names cn WHERE cn.name_id IN ({names_sql}))", args

    def _name_ids(self, pattern: str) -> tuple[str, list[Any]]:
        """SQL yielding the ids of identities matching a crt.sh pattern (``%`` = any characters)."""
        rev = pattern[::-1]
        if "%" not in pattern:
            return "SELECT id FROM dn WHERE rev = ?", [rev]
        segments = [s for s in rev.split("%") if s]
        rev_like = "%".join(_like_escape(s) for s in rev.split("%"))
        anchor = rev.split("%", 1)[0]  # the end of the name, fixed: a prefix of the reversed name
        if len(anchor) >= MIN_LITERAL:
            sql = "SELECT id FROM dn WHERE rev >= ? AND rev < ?"
            args: list[Any] = [anchor, _next_prefix(anchor)]
            if rev != anchor + "%":  # anything beyond a plain suffix query needs the exact check
                sql += " AND rev LIKE ? ESCAPE '\\'"
                args.append(rev_like)
            return sql, args
        grams = trigrams(segments)
        if not grams:
            raise QueryError(
                f"pattern {pattern[:80]!r} is too broad: give at least {MIN_LITERAL} characters in a row"
            )
        return self.trigram_sql, self._trigram_args(grams, rev_like)

    def get(self, cert_id: int) -> dict[str, Any] | None:
        """See :class:`Index`: adds ``cert_der``/``precert_der`` (base64) and ``sightings``."""
        row = self._one(
            f"SELECT {_CERT_COLS}, c.cert_der, c.precert_der FROM certs c JOIN cas a ON a.id = c.ca_id"
            " WHERE c.id = ?",
            (cert_id,),
        )
        if row is None:
            return None
        d = _cert_dict(row)
        d["cert_der"] = _b64s(row[_N_CERT_COLS])
        d["precert_der"] = _b64s(row[_N_CERT_COLS + 1])
        rows = self._all(
            "SELECT seq, log_url, log_id, idx, timestamp, entry_type, chain, seen FROM sightings"
            " WHERE cert_id = ? ORDER BY timestamp, seq",
            (cert_id,),
        )
        ders = self._chain_ders({h for r in rows for h in r[6].split()})
        d["sightings"] = [
            {
                "cursor": r[0],
                "log_url": r[1],
                "log_id": r[2],
                "index": r[3],
                "timestamp": r[4],
                "entry_type": r[5],
                "chain": [ders[h] for h in r[6].split() if h in ders],
                "seen": r[7],
            }
            for r in rows
        ]
        return d

    def since(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """See :class:`Index`: each item is a monitor-style record plus ``cursor`` and ``id``."""
        rows = self._all(
            f"SELECT {_CERT_COLS}, s.seq, s.log_url, s.log_id, s.idx, s.timestamp, s.entry_type, s.chain,"
            " s.seen,"
            " CASE WHEN s.entry_type = 'precert' THEN c.precert_der ELSE c.cert_der END"
            " FROM sightings s JOIN certs c ON c.id = s.cert_id JOIN cas a ON a.id = c.ca_id"
            " WHERE s.seq > ? ORDER BY s.seq LIMIT ?",
            (cursor, max(1, min(limit, MAX_LIMIT))),
        )
        ders = self._chain_ders({h for r in rows for h in r[_N_CERT_COLS + 6].split()})
        out = []
        for row in rows:
            d = _cert_dict(row)
            seq, log_url, log_id, idx, ts, etype, chain, seen, der = row[_N_CERT_COLS:]
            d.update(
                {
                    "cursor": seq,
                    "log_url": log_url,
                    "log_id": log_id,
                    "index": idx,
                    "timestamp": ts,
                    "entry_type": etype,
                    "seen": seen,
                    "der": _b64s(der),
                    "cert_sha256": d["precert_sha256"] if etype == "precert" else d["cert_sha256"],
                    "chain": [ders[h] for h in chain.split() if h in ders],
                }
            )
            out.append(d)
        return out

    def head(self) -> int:
        """See :class:`Index`."""
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM sightings")[0])

    def _chain_ders(self, hashes: set[str]) -> dict[str, str]:
        if not hashes:
            return {}
        hs = sorted(hashes)
        rows = self._all(
            f"SELECT sha256, der FROM chain_certs WHERE sha256 IN ({','.join('?' * len(hs))})", hs
        )
        return {h: base64.b64encode(bytes(der)).decode() for h, der in rows}


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _b64s(der: bytes | memoryview | None) -> str | None:
    return base64.b64encode(bytes(der)).decode() if der is not None else None


# --- SQLite --------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cas (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    spki_sha256 TEXT NOT NULL,
    UNIQUE (name, spki_sha256)
);
CREATE TABLE IF NOT EXISTS certs (
    id INTEGER PRIMARY KEY,
    tbs_sha256 TEXT NOT NULL UNIQUE,
    cert_sha256 TEXT,
    precert_sha256 TEXT,
    kinds INTEGER NOT NULL,
    ca_id INTEGER NOT NULL REFERENCES cas (id),
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    common_name TEXT,
    names TEXT NOT NULL,
    names_unicode TEXT,
    not_before INTEGER,
    not_after INTEGER,
    first_seen INTEGER NOT NULL,
    pubkey_sha256 TEXT,
    watch_item TEXT,
    unexpected INTEGER NOT NULL,
    cert_der BLOB,
    precert_der BLOB
);
CREATE INDEX IF NOT EXISTS certs_cert_sha256 ON certs (cert_sha256);
CREATE INDEX IF NOT EXISTS certs_precert_sha256 ON certs (precert_sha256);
CREATE INDEX IF NOT EXISTS certs_serial ON certs (serial);
CREATE INDEX IF NOT EXISTS certs_ca ON certs (ca_id, id);
CREATE TABLE IF NOT EXISTS dn (
    id INTEGER PRIMARY KEY,
    rev TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE IF NOT EXISTS dn_trgm USING fts5 (
    rev, content = 'dn', content_rowid = 'id', tokenize = 'trigram', detail = 'none', columnsize = 0
);
CREATE TABLE IF NOT EXISTS cert_names (
    name_id INTEGER NOT NULL,
    cert_id INTEGER NOT NULL,
    PRIMARY KEY (name_id, cert_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sightings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cert_id INTEGER NOT NULL,
    log_id TEXT NOT NULL,
    log_url TEXT NOT NULL,
    idx INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    entry_type TEXT NOT NULL,
    chain TEXT NOT NULL,
    seen REAL NOT NULL,
    UNIQUE (log_id, idx)
);
CREATE INDEX IF NOT EXISTS sightings_cert ON sightings (cert_id);
CREATE TABLE IF NOT EXISTS chain_certs (
    sha256 TEXT PRIMARY KEY,
    der BLOB NOT NULL
) WITHOUT ROWID;
"""


class SqliteIndex(SqlIndex):
    """SQLite in WAL mode: one writer, any number of readers, each thread its own connection.

    ``synchronous=NORMAL``: a power cut may lose the last transactions, never consistency; the
    monitor's own state (FULL) is the record of what was processed.
    """

    trigram_sql = (
        "SELECT d.id FROM dn d WHERE d.id IN (SELECT rowid FROM dn_trgm WHERE dn_trgm MATCH ?)"
        " AND d.rev LIKE ? ESCAPE '\\'"
    )
    # Not a trigger on dn: FTS5 flushes its pending terms at every trigger's statement savepoint,
    # which makes a trigger-fed insert several times slower than this plain one.
    trigram_insert_sql = "INSERT INTO dn_trgm (rowid, rev) VALUES (?, ?)"

    def __init__(self, path: Path, cache_mib: int | None = None) -> None:
        """``cache_mib``: the page cache of each connection (SQLite's default is 2 MiB). A bulk load
        into a large index writes a fraction as much with a cache that holds most of the index."""
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.cache_mib = cache_mib
        self._conn().executescript(_SQLITE_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        if self.cache_mib is not None:
            conn.execute(f"PRAGMA cache_size=-{int(self.cache_mib) * 1024}")
        return conn

    def _trigram_args(self, grams: list[str], rev_like: str) -> list[Any]:
        return [" AND ".join('"' + g.replace('"', '""') + '"' for g in grams), rev_like]

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


# --- PostgreSQL ----------------------------------------------------------------------------------

_PG_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS cas (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    spki_sha256 TEXT NOT NULL,
    UNIQUE (name, spki_sha256)
);
CREATE TABLE IF NOT EXISTS certs (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tbs_sha256 TEXT NOT NULL UNIQUE,
    cert_sha256 TEXT,
    precert_sha256 TEXT,
    kinds INTEGER NOT NULL,
    ca_id BIGINT NOT NULL REFERENCES cas (id),
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    common_name TEXT,
    names TEXT NOT NULL,
    names_unicode TEXT,
    not_before BIGINT,
    not_after BIGINT,
    first_seen BIGINT NOT NULL,
    pubkey_sha256 TEXT,
    watch_item TEXT,
    unexpected INTEGER NOT NULL,
    cert_der BYTEA,
    precert_der BYTEA
);
CREATE INDEX IF NOT EXISTS certs_cert_sha256 ON certs (cert_sha256);
CREATE INDEX IF NOT EXISTS certs_precert_sha256 ON certs (precert_sha256);
CREATE INDEX IF NOT EXISTS certs_serial ON certs (serial);
CREATE INDEX IF NOT EXISTS certs_ca ON certs (ca_id, id);
CREATE TABLE IF NOT EXISTS dn (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rev TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS dn_trgm ON dn USING gin (rev gin_trgm_ops);
CREATE TABLE IF NOT EXISTS cert_names (
    name_id BIGINT NOT NULL,
    cert_id BIGINT NOT NULL,
    PRIMARY KEY (name_id, cert_id)
);
CREATE TABLE IF NOT EXISTS sightings (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    cert_id BIGINT NOT NULL,
    log_id TEXT NOT NULL,
    log_url TEXT NOT NULL,
    idx BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    entry_type TEXT NOT NULL,
    chain TEXT NOT NULL,
    seen DOUBLE PRECISION NOT NULL,
    UNIQUE (log_id, idx)
);
CREATE INDEX IF NOT EXISTS sightings_cert ON sightings (cert_id);
CREATE TABLE IF NOT EXISTS chain_certs (
    sha256 TEXT PRIMARY KEY,
    der BYTEA NOT NULL
);
"""

# Writers from several processes take this transaction-scoped lock, so sighting sequence numbers
# commit in order and a feed reader at cursor N can never see N+2 before N+1.
_PG_WRITE_LOCK = 0x63747761  # "ctwa"


class PostgresIndex(SqlIndex):
    """PostgreSQL through psycopg 3; the trigram index is ``pg_trgm`` (GIN) on the reversed names."""

    trigram_sql = "SELECT id FROM dn WHERE rev LIKE ?"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
            conn.execute(_PG_SCHEMA)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as e:
            raise ConfigError(f"cannot connect to the index database: {e}") from None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _trigram_args(self, grams: list[str], rev_like: str) -> list[Any]:
        return [rev_like]

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[None]:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
            yield
