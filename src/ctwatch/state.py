"""Durable monitor state in SQLite: log positions, collapsed trees, STHs, pending and sent alerts.

Everything that must stay consistent changes in one transaction: a log's position, the alerts its
entries produced (the outbox) and the entries still waiting for proof. A kill -9 at any moment
therefore loses nothing and repeats nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from .cttypes import STH
from .merkle import CompactRange
from .nameblocks import read_block

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    log_id TEXT PRIMARY KEY,          -- base64, as in log lists
    url TEXT NOT NULL,
    next_index INTEGER NOT NULL,      -- entries [0, next_index) are hashed into tree_nodes
    tree_nodes BLOB NOT NULL,
    verified_size INTEGER NOT NULL,   -- the tree of this size matched a verified STH root
    verified_nodes BLOB NOT NULL,
    sth TEXT,                         -- latest trusted STH (signature and consistency checked)
    updated_at REAL NOT NULL,
    last_error TEXT,
    last_error_at REAL,
    last_success_at REAL
);
CREATE TABLE IF NOT EXISTS sths (
    log_id TEXT NOT NULL,
    tree_size INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (log_id, tree_size, timestamp, root_hash)
);
CREATE TABLE IF NOT EXISTS pending (   -- events of entries not yet proven in a verified STH
    log_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    leaf_hash BLOB NOT NULL,
    event TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (log_id, idx)
);
CREATE TABLE IF NOT EXISTS events (    -- the outbox: one row per alert, deduplicated by id
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    created_at REAL NOT NULL,
    silent INTEGER NOT NULL DEFAULT 0  -- recorded (e.g. authorised by policy), not sent to sinks
);
CREATE TABLE IF NOT EXISTS name_blocks (  -- names of processed entries, for backfilling new watch items
    log_id TEXT NOT NULL,
    start INTEGER NOT NULL,           -- entries [start, start + count) of the log
    count INTEGER NOT NULL,
    added_at REAL NOT NULL,
    names BLOB NOT NULL,              -- ctwatch.nameblocks: zlib(JSON [[offset, entry_type, [names]], ...])
    hashes BLOB NOT NULL              --   and the rows' TBS hashes (and precerts' issuer key hashes)
);
CREATE INDEX IF NOT EXISTS name_blocks_added ON name_blocks (added_at);
CREATE TABLE IF NOT EXISTS watch_items (  -- watch items already backfilled
    item TEXT PRIMARY KEY,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sightings (
    event_id TEXT NOT NULL,
    log_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    entry_type TEXT,
    seen_at REAL NOT NULL,
    PRIMARY KEY (event_id, log_id, idx)
);
CREATE TABLE IF NOT EXISTS sinks (
    name TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,       -- a sink receives events from its first run on
    cursor TEXT                       -- sink-private recovery state (e.g. a JSONL file offset)
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER NOT NULL,
    sink TEXT NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_try REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (seq, sink)
);
"""


def _pack(cr: CompactRange) -> bytes:
    return b"".join(cr.nodes)


def _unpack(size: int, blob: bytes) -> CompactRange:
    return CompactRange(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


@dataclass(slots=True)
class LogState:
    """One log's position: the progress tree, the last verified tree and the trusted STH."""

    log_id: str
    url: str
    tree: CompactRange
    verified: CompactRange
    sth: STH | None

    @property
    def next_index(self) -> int:
        return self.tree.size


class StateDB:
    """The SQLite state database under the data directory (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=10000")
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            # Before version 2 a names block was one zlib(JSON) blob. The names index is a cache
            # of the last days' names, for backfill: an old one is dropped, not converted.
            self.db.execute("DROP TABLE IF EXISTS name_blocks")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- log positions ---------------------------------------------------------------------

    def load_log(self, log_id: str, url: str) -> LogState | None:
        row = self.db.execute(
            "SELECT next_index, tree_nodes, verified_size, verified_nodes, sth FROM logs WHERE log_id=?",
            (log_id,),
        ).fetchone()
        if row is None:
            return None
        sth = STH.from_json(orjson.loads(row[4])) if row[4] else None
        return LogState(log_id, url, _unpack(row[0], row[1]), _unpack(row[2], row[3]), sth)

    def save_log(self, st: LogState) -> None:
        """Write a log's position; call inside :meth:`transaction` with the events it produced."""
        now = time.time()
        self.db.execute(
            "INSERT INTO logs (log_id, url, next_index, tree_nodes, verified_size, verified_nodes, sth,"
            " updated_at, last_success_at) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(log_id) DO UPDATE SET url=excluded.url, next_index=excluded.next_index,"
            " tree_nodes=excluded.tree_nodes, verified_size=excluded.verified_size,"
            " verified_nodes=excluded.verified_nodes, sth=excluded.sth, updated_at=excluded.updated_at,"
            " last_success_at=excluded.last_success_at",
            (
                st.log_id,
                st.url,
                st.tree.size,
                _pack(st.tree),
                st.verified.size,
                _pack(st.verified),
                orjson.dumps(st.sth.to_json()).decode() if st.sth else None,
                now,
                now,
            ),
        )

    def record_error(self, log_id: str, url: str, message: str) -> None:
        """Remember why a log failed last (for ``ctwatch status``), outside any position change."""
        now = time.time()
        self.db.execute(
            "INSERT INTO logs (log_id, url, next_index, tree_nodes, verified_size, verified_nodes,"
            " updated_at, last_error, last_error_at) VALUES (?,?,0,x'',0,x'',?,?,?)"
            " ON CONFLICT(log_id) DO UPDATE SET last_error=excluded.last_error,"
            " last_error_at=excluded.last_error_at",
            (log_id, url, now, message[:2000], now),
        )

    def record_sth(self, log_id: str, sth: STH) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sths VALUES (?,?,?,?,?,?)",
            (log_id, sth.tree_size, sth.timestamp, sth.root_hash, sth.signature, time.time()),
        )

    # --- pending (unproven) entries ----------------------------------------------------------

    def add_pending(self, log_id: str, idx: int, leaf_hash: bytes, event: dict[str, object]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?)",
            (log_id, idx, leaf_hash, orjson.dumps(event).decode(), time.time()),
        )

    def pending(
        self, log_id: str, below: int | None = None
    ) -> list[tuple[int, bytes, dict[str, object], float]]:
        """Unproven entries of a log (index, leaf hash, event, created_at), oldest first."""
        q = "SELECT idx, leaf_hash, event, created_at FROM pending WHERE log_id=?"
        args: tuple[object, ...] = (log_id,)
        if below is not None:
            q += " AND idx < ?"
            args += (below,)
        rows = self.db.execute(q + " ORDER BY idx", args).fetchall()
        return [(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]

    def drop_pending(self, log_id: str, idxs: list[int] | None = None) -> None:
        if idxs is None:
            self.db.execute("DELETE FROM pending WHERE log_id=?", (log_id,))
        else:
            self.db.executemany("DELETE FROM pending WHERE log_id=? AND idx=?", [(log_id, i) for i in idxs])

    # --- the outbox --------------------------------------------------------------------------

    def add_event(
        self, event: dict[str, object], sighting: tuple[str, int, str] | None = None, silent: bool = False
    ) -> bool:
        """Queue an alert unless one with the same id exists; record the sighting. True if new.

        A ``silent`` event is recorded (status, web UI, backfill) but not sent to any sink.
        """
        cur = self.db.execute(
            "INSERT OR IGNORE INTO events (id, event, created_at, silent) VALUES (?,?,?,?)",
            (event["id"], orjson.dumps(event).decode(), time.time(), int(silent)),
        )
        if sighting is not None:
            self.db.execute(
                "INSERT OR IGNORE INTO sightings VALUES (?,?,?,?,?)",
                (event["id"], sighting[0], sighting[1], sighting[2], time.time()),
            )
        return cur.rowcount == 1

    def max_seq(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    # --- the names index (backfill) -----------------------------------------------------------

    def add_name_blocks(self, log_id: str, blocks: list[tuple[int, int, tuple[bytes, bytes]]]) -> None:
        """Keep the names index blocks of processed batches: (start, count, (names, hashes))."""
        now = time.time()
        self.db.executemany(
            "INSERT INTO name_blocks VALUES (?,?,?,?,?,?)",
            [(log_id, start, count, now, names, hashes) for start, count, (names, hashes) in blocks],
        )

    def name_rows(self) -> Iterator[tuple[str, int, int, str, list[str], str | None]]:
        """Every indexed entry: (log_id, index, entry_type, tbs hex, names, issuer SPKI hash or None)."""
        for log_id, start, names, hashes in self.db.execute(
            "SELECT log_id, start, names, hashes FROM name_blocks ORDER BY rowid"
        ):
            for off, etype, tbs, row_names, issuer in read_block(names, hashes):
                yield log_id, start + off, etype, tbs.hex(), row_names, issuer.hex() if issuer else None

    def prune_names(self, older_than: float) -> int:
        """Drop blocks added before ``older_than`` (retention)."""
        return self.db.execute("DELETE FROM name_blocks WHERE added_at < ?", (older_than,)).rowcount
