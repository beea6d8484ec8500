"""Matching certificates against what the user watches."""

from .watchlist import Watchlist, normalise_item

__all__ = ["Watchlist", "normalise_item"]
