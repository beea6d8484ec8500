"""``ctwatch status``: what the state database says about each log and each sink."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError
from .state import StateDB


def collect_status(data_dir: Path) -> dict[str, Any]:
    """Per log: position, tree size, lag, last verified STH and its age, last error; per sink: backlog."""
    path = data_dir / "state.sqlite"
    if not path.exists():
        raise ConfigError(f"no ctwatch state in {data_dir} (run `ctwatch run --data-dir {data_dir}` first)")
    state = StateDB(path)
    try:
        now = time.time()
        logs = []
        for url, next_index, verified, sth, err, err_at, ok_at in state.db.execute(
            "SELECT url, next_index, verified_size, sth, last_error, last_error_at, last_success_at"
            " FROM logs ORDER BY url"
        ):
            s = orjson.loads(sth) if sth else None
            logs.append(
                {
                    "url": url,
                    "position": next_index,
                    "verified_size": verified,
                    "tree_size": s["tree_size"] if s else None,
                    "lag": (s["tree_size"] - next_index) if s else None,
                    "sth_timestamp": s["timestamp"] if s else None,
                    "sth_age_seconds": round(now - s["timestamp"] / 1000, 1) if s else None,
                    "last_success_age_seconds": round(now - ok_at, 1) if ok_at else None,
                    "last_error": err if err and (not ok_at or (err_at or 0) > ok_at) else None,
                }
            )
        sinks = []
        for name, first_seq in state.db.execute("SELECT name, first_seq FROM sinks ORDER BY name").fetchall():
            (backlog,) = state.db.execute(
                "SELECT COUNT(*) FROM events e LEFT JOIN deliveries d ON d.seq=e.seq AND d.sink=?"
                " WHERE e.seq > ? AND e.silent = 0 AND d.delivered_at IS NULL",
                (name, first_seq),
            ).fetchone()
            last_error = state.db.execute(
                "SELECT last_error FROM deliveries WHERE sink=? AND delivered_at IS NULL"
                " AND last_error IS NOT NULL ORDER BY seq LIMIT 1",
                (name,),
            ).fetchone()
            sinks.append(
                {"sink": name, "backlog": backlog, "last_error": last_error[0] if last_error else None}
            )
        (events,) = state.db.execute("SELECT COUNT(*) FROM events").fetchone()
        (pending,) = state.db.execute("SELECT COUNT(*) FROM pending").fetchone()
        return {"logs": logs, "sinks": sinks, "events": events, "pending_proof": pending}
    finally:
        state.close()


def render_status(st: dict[str, Any]) -> str:
    """A plain-text table for people."""
    lines = [f"{'log':<60} {'position':>12} {'tree size':>12} {'lag':>10} {'STH age':>10}  error"]
    for row in st["logs"]:
        age = f"{row['sth_age_seconds']:.0f}s" if row["sth_age_seconds"] is not None else "-"
        lines.append(
            f"{row['url'][:60]:<60} {row['position']:>12,} {row['tree_size'] or 0:>12,}"
            f" {row['lag'] or 0:>10,} {age:>10}  {(row['last_error'] or '')[:80]!s}"
        )
    lines.append("")
    lines.append(f"alerts: {st['events']} in the outbox, {st['pending_proof']} awaiting proof")
    for s in st["sinks"]:
        lines.append(
            f"sink {s['sink']}: backlog {s['backlog']}"
            + (f" (last error: {s['last_error'][:120]})" if s["last_error"] else "")
        )
    return "\n".join(lines)
