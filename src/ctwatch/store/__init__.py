"""The searchable index of processed certificates (see :mod:`ctwatch.store.index`)."""

from .index import Index, QueryError, open_index

__all__ = ["Index", "QueryError", "open_index"]
