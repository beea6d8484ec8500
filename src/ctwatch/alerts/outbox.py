"""Exactly-once delivery from the durable outbox (the ``events`` table) to every sink.

An event enters the outbox in the same transaction that advances the log position. Each sink
acknowledges each event (a ``deliveries`` row); undelivered events are retried with back-off, so a
sink that is down builds a backlog without stopping the monitor. Sinks that can see what they
already wrote (the JSONL file) implement ``recover`` so a crash between writing and acknowledging
repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol, runtime_checkable

import orjson

from ..errors import CtwatchError
from ..state import StateDB
from .base import Sink

log = logging.getLogger(__name__)

MAX_BACKOFF = 600.0


@runtime_checkable
class RecoverableSink(Protocol):
    """A sink that can tell, after a crash, which events it already holds."""

    name: str

    def recover(self, cursor: str | None) -> tuple[set[str], str | None]:
        """(ids already written since ``cursor``, the cursor to store now)."""
        ...

    def cursor(self) -> str | None:
        """Recovery position after the last successful delivery."""
        ...


class Outbox:
    """Delivers queued events to sinks and records each acknowledgement."""

    def __init__(self, state: StateDB, sinks: list[Sink]) -> None:
        self.state = state
        self.sinks = sinks
        self.wakeup = asyncio.Event()
        db = state.db
        # Back-off is for a running process: a restart is often the fix (the sink is back, its
        # settings corrected), and a `--once` run ends before a deferred retry would come due.
        db.execute("UPDATE deliveries SET next_try = 0 WHERE delivered_at IS NULL")
        for sink in sinks:
            db.execute(
                "INSERT OR IGNORE INTO sinks (name, first_seq) VALUES (?, ?)", (sink.name, state.max_seq())
            )
            if isinstance(sink, RecoverableSink):
                self._recover(sink)

    def _recover(self, sink: RecoverableSink) -> None:
        (cursor,) = self.state.db.execute("SELECT cursor FROM sinks WHERE name=?", (sink.name,)).fetchone()
        found, new_cursor = sink.recover(cursor)
        with self.state.transaction() as db:
            if found:
                rows = db.execute(
                    f"SELECT seq FROM events WHERE id IN ({','.join('?' * len(found))})", tuple(found)
                ).fetchall()
                now = time.time()
                db.executemany(
                    "INSERT INTO deliveries (seq, sink, delivered_at) VALUES (?,?,?) ON CONFLICT(seq, sink)"
                    " DO UPDATE SET delivered_at=excluded.delivered_at",
                    [(r[0], sink.name, now) for r in rows],
                )
            db.execute("UPDATE sinks SET cursor=? WHERE name=?", (new_cursor, sink.name))

    def _due(self, sink: Sink, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        rows = self.state.db.execute(
            "SELECT e.seq, e.event FROM events e JOIN sinks s ON s.name=? AND e.seq > s.first_seq"
            " LEFT JOIN deliveries d ON d.seq=e.seq AND d.sink=s.name"
            " WHERE e.silent = 0 AND d.delivered_at IS NULL AND COALESCE(d.next_try, 0) <= ?"
            " ORDER BY e.seq LIMIT ?",
            (sink.name, time.time(), limit),
        ).fetchall()
        return [(seq, orjson.loads(ev)) for seq, ev in rows]

    async def deliver_due(self) -> int:
        """One pass: try every due event on every sink. Returns the number delivered."""
        total = 0
        for sink in self.sinks:
            for seq, event in self._due(sink):
                try:
                    await sink.deliver(event)
                except (CtwatchError, OSError) as e:
                    self._failed(sink, seq, str(e))
                    break  # the sink is likely down: stop this pass; this event retries after its back-off
                self._acked(sink, seq)
                total += 1
        return total

    def _acked(self, sink: Sink, seq: int) -> None:
        cursor = sink.cursor() if isinstance(sink, RecoverableSink) else None
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (seq, sink, delivered_at, attempts) VALUES (?,?,?,1)"
                " ON CONFLICT(seq, sink) DO UPDATE SET delivered_at=excluded.delivered_at,"
                " attempts=attempts+1",
                (seq, sink.name, time.time()),
            )
            if cursor is not None:
                db.execute("UPDATE sinks SET cursor=? WHERE name=?", (cursor, sink.name))

    def _failed(self, sink: Sink, seq: int, error: str) -> None:
        row = self.state.db.execute(
            "SELECT attempts FROM deliveries WHERE seq=? AND sink=?", (seq, sink.name)
        ).fetchone()
        attempts = (row[0] if row else 0) + 1
        delay = min(MAX_BACKOFF, 2.0**attempts)
        log.warning("sink %s: delivery of event %d failed (%s); retry in %.0fs", sink.name, seq, error, delay)
        self.state.db.execute(
            "INSERT INTO deliveries (seq, sink, attempts, last_error, next_try) VALUES (?,?,?,?,?)"
            " ON CONFLICT(seq, sink) DO UPDATE SET attempts=excluded.attempts,"
            " last_error=excluded.last_error, next_try=excluded.next_try",
            (seq, sink.name, attempts, error[:2000], time.time() + delay),
        )

    def backlog(self) -> dict[str, int]:
        """Undelivered events per sink (for ``ctwatch status`` and the final report)."""
        out = {}
        for sink in self.sinks:
            (n,) = self.state.db.execute(
                "SELECT COUNT(*) FROM events e JOIN sinks s ON s.name=? AND e.seq > s.first_seq"
                " LEFT JOIN deliveries d ON d.seq=e.seq AND d.sink=s.name"
                " WHERE e.silent = 0 AND d.delivered_at IS NULL",
                (sink.name,),
            ).fetchone()
            out[sink.name] = n
        return out

    async def run(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        """Deliver until ``stop``: on every wakeup (new events) and every ``interval`` for retries."""
        while not stop.is_set():
            await self.deliver_due()
            self.wakeup.clear()
            waiters = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
