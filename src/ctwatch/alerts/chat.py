"""The chat sink: Slack, Teams, Discord, ntfy, Telegram and the rest through ``apprise``.

The body is the shared plain-text rendering, handed to apprise as ``TEXT`` so apprise escapes
it for services that speak HTML or Markdown. Mentions are defused as well: a word joiner after
every ``@`` keeps a certificate saying ``@everyone`` or ``@channel`` from paging a whole team.
"""

from __future__ import annotations

import asyncio
import logging

import apprise

from ..errors import ConfigError, SinkError
from .base import secret_free_name
from .render import clean, render_text, summary

_NOTIFY_TYPES = {
    "log_misbehaviour": apprise.NotifyType.FAILURE,
    "lookalike": apprise.NotifyType.WARNING,
    "malformed_cert": apprise.NotifyType.WARNING,
    "log_stale": apprise.NotifyType.WARNING,
    "log_unreachable": apprise.NotifyType.WARNING,
}


def _defuse_mentions(text: str) -> str:
    return text.replace("@", "@\u2060")


class AppriseSink:
    """Sends each event to one apprise URL (``slack://…``, ``ntfys://…``, ``json://…``, …)."""

    def __init__(self, url: str) -> None:
        scheme = url.partition("://")[0].lower()
        with apprise.LogCapture(level=logging.WARNING) as logs:
            valid = scheme.isalnum() and apprise.Apprise.instantiate(url) is not None
        if not valid:
            raise ConfigError(
                f"not a usable apprise URL ({scheme or 'no scheme'}://…): {clean(logs.getvalue(), 300)}"
            )
        self.url = url
        self.name = secret_free_name("apprise", scheme, url)

    def _notify(self, event: dict[str, object]) -> None:
        if event.get("event") == "discovered_cert" and event.get("unexpected"):
            notify_type = apprise.NotifyType.WARNING
        else:
            notify_type = _NOTIFY_TYPES.get(str(event.get("event")), apprise.NotifyType.INFO)
        notifier = apprise.Apprise()
        notifier.add(self.url)
        with apprise.LogCapture(level=logging.WARNING) as logs:
            sent = notifier.notify(
                body=_defuse_mentions(render_text(event, headline=False)),
                title=_defuse_mentions(f"[ctwatch] {summary(event)}"),
                notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
        if not sent:
            raise SinkError(
                f"{self.name}: not delivered: {clean(logs.getvalue()[-600:], 600) or 'no reason given'}"
            )

    async def deliver(self, event: dict[str, object]) -> None:
        """Notify in a worker thread (apprise is synchronous); SinkError if it reports failure."""
        await asyncio.to_thread(self._notify, event)
