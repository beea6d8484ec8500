"""What the monitor already knows about a certificate: its events and sightings in the state DB.

``ctwatch run`` records every certificate it reports for a watched name in the ``events`` table
(keyed by TBS hash, so a certificate and its precertificate are one) and each log entry that
carried it in ``sightings``. A certificate a server presents for a watched name that the monitor
never saw in any log is the strongest sign of an impostor. The database is opened read-only and
never created; a later index module may take over these queries.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import orjson

STATE_FILE = "state.sqlite"
MAX_OTHERS = 50
_SUMMARY = ("tbs_sha256", "cert_sha256", "names", "issuer", "not_before", "not_after", "watch_item")


@dataclass(slots=True)
class IndexResult:
    """``known`` is None when there is no index to ask.

    ``names_indexed`` says whether the index holds any certificate for one of the names, i.e.
    whether the monitor watches them at all: not knowing a certificate means little otherwise.
    """

    available: bool
    known: bool | None = None
    error: str | None = None
    events: list[dict[str, object]] = field(default_factory=list)
    sightings: list[dict[str, object]] = field(default_factory=list)
    others: list[dict[str, object]] = field(default_factory=list)
    names_indexed: bool = False

    def to_json(self) -> dict[str, object]:
        """JSON-ready form for ``check --json``."""
        return {"available": self.available, "known": self.known, "error": self.error,
                "events": self.events, "sightings": self.sightings, "others": self.others,
                "names_indexed": self.names_indexed}


def _summary(event_json: str) -> dict[str, object]:
    ev = orjson.loads(event_json)
    return {"event": ev.get("event"), "id": ev.get("id"), **{k: ev.get(k) for k in _SUMMARY if k in ev}}


def _marks(values: list[str]) -> str:
    return ",".join("?" * len(values))


def lookup(data_dir: Path, tbs_sha256: str, cert_sha256: str, names: list[str]) -> IndexResult:
    """Events about this certificate, where logs carried it, and other certificates for its names."""
    path = data_dir / STATE_FILE
    if not path.is_file():
        return IndexResult(available=False, error=f"no monitor state at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return IndexResult(available=False, error=f"cannot open {path}: {e}")
    try:
        db.execute("PRAGMA busy_timeout=2000")
        rows = db.execute(
            "SELECT id, event FROM events WHERE json_valid(event) AND"
            " (json_extract(event, '$.tbs_sha256') = ? OR json_extract(event, '$.cert_sha256') = ?)"
            " ORDER BY seq", (tbs_sha256, cert_sha256)).fetchall()
        ids = [r[0] for r in rows]
        sightings = db.execute(
            f"SELECT log_id, idx, entry_type, seen_at FROM sightings WHERE event_id IN ({_marks(ids)})"
            " ORDER BY seen_at", ids).fetchall() if ids else []
        wanted = sorted(set(names))
        others = db.execute(
            "SELECT e.event FROM events e WHERE json_valid(e.event)"
            " AND json_extract(e.event, '$.tbs_sha256') IS NOT ?"
            " AND EXISTS (SELECT 1 FROM json_each(e.event, '$.names') n"
            f" WHERE n.value IN ({_marks(wanted)})) ORDER BY e.seq DESC LIMIT ?",
            (tbs_sha256, *wanted, MAX_OTHERS)).fetchall() if wanted else []
    except sqlite3.Error as e:
        return IndexResult(available=False, error=f"cannot read {path}: {e}")
    finally:
        db.close()
    distinct: dict[object, dict[str, object]] = {}  # a certificate may have several events
    for (event,) in others:
        summary = _summary(event)
        distinct.setdefault(summary.get("tbs_sha256"), summary)
    return IndexResult(
        available=True,
        known=bool(rows),
        events=[_summary(r[1]) for r in rows],
        sightings=[{"log_id": s[0], "index": s[1], "entry_type": s[2], "seen_at": s[3]} for s in sightings],
        others=list(distinct.values()),
        names_indexed=bool(rows or others),
    )
