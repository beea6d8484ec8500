"""The interface every alert sink implements, and how a sink gets a name that holds no secret."""

from __future__ import annotations

import hashlib
from typing import Protocol


class Sink(Protocol):
    """Where alerts go.

    ``name`` is the sink's stable id in the outbox (and in ``ctwatch status``), so it must not
    change between runs and must never contain a secret. ``deliver`` raises
    :class:`~ctwatch.errors.SinkError` on failure and must be safe to call again with the same
    event: the outbox retries until it succeeds.
    """

    name: str

    async def deliver(self, event: dict[str, object]) -> None: ...


def secret_free_name(kind: str, visible: str, target: str) -> str:
    """``kind:visible#fingerprint``: tells two targets apart without showing their secrets.

    Webhook and chat URLs often carry their credentials (Slack and Discord tokens live in the
    path or even the host part), so the name shows only ``visible`` and a short SHA-256
    fingerprint of the whole ``target``.
    """
    return f"{kind}:{visible}#{hashlib.sha256(target.encode()).hexdigest()[:12]}"
