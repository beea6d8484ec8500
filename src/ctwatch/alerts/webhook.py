"""The webhook sink: the event as a JSON POST, HMAC-signed when a secret is set.

The body is the event exactly as the JSONL sink writes it, so one parser serves both. A
receiver verifies ``X-Ctwatch-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw body under the
shared secret) and de-duplicates retries by ``X-Ctwatch-Event-Id``. Redirects are refused: a
redirect would carry the alert, and its signature, to a URL nobody configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..errors import ConfigError, SinkError
from ..sources.http import RETRY_STATUSES, retry_after, user_agent
from .base import secret_free_name
from .render import clean

log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Ctwatch-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POSTs each event to one URL, retrying transient failures with exponential back-off.

    Network errors, timeouts, 408, 429 and 5xx are retried up to ``attempts`` times in all
    (``Retry-After`` is honoured up to ``max_backoff``); any other answer fails at once. Either
    way the outbox keeps the event and tries again later.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook URL must be http:// or https:// with a host: {clean(url, 200)!r}")
        if timeout <= 0 or attempts < 1 or backoff < 0:
            raise ConfigError("webhook timeout must be > 0, attempts >= 1 and backoff >= 0")
        port = f":{parts.port}" if parts.port else ""
        self.name = secret_free_name("webhook", f"{parts.scheme}://{parts.hostname}{port}", url)
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def deliver(self, event: dict[str, object]) -> None:
        """POST ``event``; returns on a 2xx answer, raises SinkError once retries are spent."""
        try:
            body = orjson.dumps(event)
        except orjson.JSONEncodeError as e:
            raise SinkError(f"{self.name}: event is not valid JSON: {e}") from None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": user_agent(None),
            "X-Ctwatch-Event": clean(event.get("event"), 40),
            "X-Ctwatch-Event-Id": clean(event.get("id"), 200),
        }
        if self.secret:
            headers["X-Ctwatch-Signature"] = sign(self.secret, body)
        problem = ""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            for attempt in range(1, self.attempts + 1):
                wait: float | None = None
                try:
                    async with session.post(
                        self.url, data=body, headers=headers, allow_redirects=False
                    ) as resp:
                        if 200 <= resp.status < 300:
                            return
                        problem = f"HTTP {resp.status}"
                        if resp.status not in RETRY_STATUSES:
                            raise SinkError(f"{self.name}: {problem} (not retried)")
                        wait = retry_after(resp.headers.get("Retry-After"))
                except (aiohttp.ClientError, TimeoutError) as e:
                    problem = clean(str(e) or type(e).__name__, 300)
                if attempt < self.attempts:
                    delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1) if wait is None else wait)
                    log.info(
                        "%s: attempt %d failed (%s), retrying in %.1fs", self.name, attempt, problem, delay
                    )
                    await asyncio.sleep(delay)
        raise SinkError(f"{self.name}: giving up after {self.attempts} attempts: {problem}")
