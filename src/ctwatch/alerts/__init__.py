"""Alerts: the durable outbox and the sinks it delivers to.

``base`` defines the :class:`Sink` interface; ``render`` is the one human rendering of an event
(summary, text, HTML); ``webhook``, ``mail``, ``script``, ``chat`` (apprise) and ``jsonl`` are
the sinks; ``sinks.sinks_from_config`` builds them from config and CLI; ``outbox`` delivers
each event to each sink exactly once.
"""

from .base import Sink
from .render import render_html, render_text
from .sinks import sinks_from_config

__all__ = ["Sink", "render_html", "render_text", "sinks_from_config"]
