"""A certstream-compatible live feed that a reconnecting client can resume without a gap.

Messages are certstream-server's: ``{"message_type": "certificate_update", "data": {...}}`` with
``update_type``, ``leaf_cert`` (``subject``, ``extensions``, ``all_domains``…), ``chain``,
``cert_index``, ``cert_link``, ``seen`` and ``source``; the lite variant drops the DER and the
chain, the domains-only variant is ``{"message_type": "dns_entries", "data": [names]}``.
Heartbeats are ``{"message_type": "heartbeat", "timestamp": …}`` (the certstream client skips
them).

Every message also carries ``cursor``, the index's sighting sequence number. Each client is
driven by its own cursor over :meth:`Index.since` — never by an in-memory fan-out queue that
could overflow — so ``?cursor=N`` on reconnect delivers exactly the sightings after N, and a
client that falls behind simply reads older rows. New records arrive by :meth:`LiveFeed.notify`
(called by the monitor after it adds to the index) or, when the monitor is another process, by
polling.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import contextlib
import time
from collections import OrderedDict
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..store.index import Index
from .decode import certstream_cert, log_name

FULL, LITE, DOMAINS = "full", "lite", "domains"
BATCH = 256
CACHE_SIZE = 4096


def _unix(iso: str | None) -> int | None:
    if iso is None:
        return None
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def certstream_message(rec: dict[str, Any], variant: str, cert_link: str) -> dict[str, Any]:
    """The certstream message of one :meth:`Index.since` record."""
    if variant == DOMAINS:
        return {"message_type": "dns_entries", "data": rec["names"], "cursor": rec["cursor"]}
    full = variant == FULL
    der = base64.b64decode(rec["der"]) if rec.get("der") else None
    leaf = certstream_cert(
        der,
        names=rec["names"],
        subject=rec["subject"],
        issuer=rec["issuer"],
        serial=rec["serial"],
        not_before=_unix(rec["not_before"]),
        not_after=_unix(rec["not_after"]),
        with_der=full,
    )
    data: dict[str, Any] = {
        "update_type": "PrecertLogEntry" if rec["entry_type"] == "precert" else "X509LogEntry",
        "leaf_cert": leaf,
        "cert_index": rec["index"],
        "cert_link": cert_link,
        "seen": rec["seen"],
        "source": {"url": rec["log_url"], "name": log_name(rec["log_id"]) or rec["log_url"]},
    }
    if full:
        data["chain"] = [certstream_cert(base64.b64decode(c)) for c in rec["chain"]]
    return {"message_type": "certificate_update", "data": data, "cursor": rec["cursor"]}


class LiveFeed:
    """Serves the feed's WebSocket clients from an :class:`Index`; see the module docstring."""

    def __init__(self, index: Index, *, poll_interval: float = 1.0, heartbeat_interval: float = 30.0) -> None:
        self.index = index
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._cache: OrderedDict[tuple[int, str, str], str] = OrderedDict()

    def notify(self) -> None:
        """New records are in the index: wake every client now (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        if same:
            self._wake()
        else:
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    def _waiter(self) -> asyncio.Event:
        if self._changed is None or self._loop is not asyncio.get_running_loop():
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
        return self._changed

    def _encode(self, rec: dict[str, Any], variant: str, base_url: str) -> str:
        key = (rec["cursor"], variant, base_url)
        text = self._cache.get(key)
        if text is None:
            msg = certstream_message(rec, variant, f"{base_url}cert/{rec['id']}")
            text = orjson.dumps(msg).decode()
            self._cache[key] = text
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return text

    async def serve(self, ws: WebSocket, variant: str) -> None:
        """Run one client: ``?cursor=N`` resumes after N; without it the feed starts at the head."""
        raw = ws.query_params.get("cursor")
        if raw is not None and (not raw.isdigit() or len(raw) > 18):
            await ws.close(code=1008, reason="cursor must be a non-negative integer")
            return
        await ws.accept()
        cursor = int(raw) if raw is not None else await run_in_threadpool(self.index.head)
        base_url = str(ws.base_url.replace(scheme="https" if ws.url.scheme == "wss" else "http"))
        sender = asyncio.create_task(self._send(ws, variant, cursor, base_url))
        receiver = asyncio.create_task(self._drain(ws))
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sender, receiver):
                t.cancel()
            for t in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                    await t

    @staticmethod
    async def _drain(ws: WebSocket) -> None:
        """Read (and ignore) what the client sends, to notice when it goes away."""
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    async def _send(self, ws: WebSocket, variant: str, cursor: int, base_url: str) -> None:
        last_sent = time.monotonic()
        while True:
            waiter = self._waiter()  # taken before reading, so a notify in between is not lost
            batch = await run_in_threadpool(self.index.since, cursor, BATCH)
            for rec in batch:
                await ws.send_text(self._encode(rec, variant, base_url))
                cursor = rec["cursor"]
            if batch:
                last_sent = time.monotonic()
                continue
            until_beat = self.heartbeat_interval - (time.monotonic() - last_sent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), max(0.0, min(self.poll_interval, until_beat)))
            if time.monotonic() - last_sent >= self.heartbeat_interval:
                await ws.send_text(
                    orjson.dumps({"message_type": "heartbeat", "timestamp": time.time()}).decode()
                )
                last_sent = time.monotonic()
