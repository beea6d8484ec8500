"""The work test_compiled.py compares between the compiled and the pure hot path.

Imported both by the test and by a ``CTWATCH_PURE=1`` interpreter it starts, so it imports
nothing from the test package.
"""

from __future__ import annotations

from ctwatch.errors import DecodeError
from ctwatch.identities import leaf_scan
from ctwatch.match.watchlist import Watchlist
from ctwatch.merkle import CompactRange, leaf_hash


def work(leaves: list[bytes]) -> list[object]:
    """Names, TBS hash or error of each leaf, watchlist answers, and the tree's root as it grows."""
    watch = Watchlist.parse(".example.com\nwatched.example\n.test\n")
    out: list[object] = []
    tree = CompactRange()
    for leaf in leaves:
        try:
            etype, names, tbs = leaf_scan(leaf, True)
            out.append([etype, names, tbs.hex() if tbs else None, watch.match(names)])
        except DecodeError as e:
            out.append(["error", str(e)])
        tree.append(leaf_hash(leaf))
        out.append(tree.root().hex())
    return out
