"""A polite HTTP client for one log: concurrency and rate limits, back-off, caps, no redirects.

Logs rate-limit hard and some answer 429 storms; this client waits as told (Retry-After) and
retries transient failures, but never follows a redirect (a log's URL is part of its identity)
and never reads more than ``max_body`` bytes (decompressed) from one response.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass

import aiohttp

from .. import __version__
from ..errors import FetchError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Per-log politeness settings (config ``[logs]`` section or defaults)."""

    concurrency: int = 4
    requests_per_second: float = 20.0
    timeout: float = 30.0
    max_retries: int = 8
    max_backoff: float = 120.0
    max_body: int = 64 << 20


def user_agent(contact: str | None) -> str:
    """``ctwatch/<version> (+contact)``: logs ask monitors to say who they are."""
    ua = f"ctwatch/{__version__} (+https://github.com/ctwatch/ctwatch"
    return ua + (f"; {contact})" if contact else ")")


class _TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = 1.0
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        if self.rate <= 0:
            return
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < 1.0:
                await asyncio.sleep((1.0 - self.tokens) / self.rate)
                self.last = time.monotonic()
                self.tokens = 0.0
            else:
                self.tokens -= 1.0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """GET with limits for one log; share one ``aiohttp.ClientSession`` between many."""

    def __init__(
        self, session: aiohttp.ClientSession, limits: HttpLimits | None = None, contact: str | None = None
    ) -> None:
        self.session = session
        self.limits = limits or HttpLimits()
        self.headers = {"User-Agent": user_agent(contact)}
        self._sem = asyncio.Semaphore(self.limits.concurrency)
        self._bucket = _TokenBucket(self.limits.requests_per_second)
        self.requests = 0
        self.retries = 0

    async def get(self, url: str, *, allow_404: bool = False) -> bytes | None:
        """The body of ``url``; None for a 404 when ``allow_404``; FetchError after retries."""
        parts = await self.get_parts(url, allow_404=allow_404)
        return None if parts is None else b"".join(parts)

    async def get_parts(self, url: str, *, allow_404: bool = False) -> list[bytes] | None:
        """:meth:`get`, with the body in the pieces it arrived in (joining them is a copy)."""
        lim = self.limits
        delay = 0.5
        last_error = "no attempt"
        for attempt in range(lim.max_retries + 1):
            await self._bucket.take()
            wait: float | None = None
            try:
                async with self._sem:
                    self.requests += 1
                    async with self.session.get(
                        url,
                        headers=self.headers,
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=lim.timeout),
                    ) as resp:
                        if resp.status == 200:
                            return await self._read_capped(resp, url)
                        if resp.status == 404 and allow_404:
                            return None
                        last_error = f"HTTP {resp.status}"
                        if resp.status not in RETRY_STATUSES:
                            body = (await resp.content.read(300)).decode("utf-8", "replace")
                            raise FetchError(f"GET {url}: HTTP {resp.status} {body!r}", status=resp.status)
                        wait = retry_after(resp.headers.get("Retry-After"))
            except FetchError:
                raise
            except (TimeoutError, aiohttp.ClientError, ValueError) as e:
                last_error = f"{type(e).__name__}: {e}"
            if attempt == lim.max_retries:
                break
            self.retries += 1
            sleep = min(lim.max_backoff, wait if wait is not None else delay * (0.5 + random.random()))
            log.debug("GET %s failed (%s); retrying in %.2fs", url, last_error, sleep)
            await asyncio.sleep(sleep)
            delay = min(lim.max_backoff, delay * 2)
        raise FetchError(f"GET {url}: giving up after {lim.max_retries + 1} attempts ({last_error})")

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> list[bytes]:
        cap = self.limits.max_body
        if resp.content_length is not None and resp.content_length > cap:
            raise FetchError(f"GET {url}: body of {resp.content_length} bytes exceeds the cap of {cap}")
        chunks = []
        total = 0
        async for chunk in resp.content.iter_any():
            total += len(chunk)
            if total > cap:
                raise FetchError(f"GET {url}: body exceeds the cap of {cap} bytes")
            chunks.append(chunk)
        return chunks


def new_session() -> aiohttp.ClientSession:
    """The shared session: no cookies, no env proxies, connection pooling per host."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
        trust_env=False,
        auto_decompress=True,
    )
