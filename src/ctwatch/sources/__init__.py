"""Log sources: one interface (:class:`LogSource`), one implementation per log protocol."""

from .base import EntryBatch, LogSource, open_source

__all__ = ["EntryBatch", "LogSource", "open_source"]
