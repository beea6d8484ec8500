"""certspotter's watchlist: which certificates a user wants to hear about.

The file format and the matching rules are certspotter's, so an existing watchlist works as is:

* one item a line; ``#`` starts a comment; anything after the name must be a ``valid_at:``
  parameter (accepted and ignored, as certspotter does);
* ``example.com`` watches that name only, ``.example.com`` the name and every name below it, and
  ``.`` alone every name;
* Unicode names are converted with IDNA; IP addresses may be watched too (exact match only).

A certificate identity (see :mod:`ctwatch.identities`) is compared label by label from the right.
A certificate label ``*`` or ``?`` (redacted), or one that could not be parsed, matches any one
label; a label with a ``*`` inside (``ac-*``) matches the labels it globs. The watch items live in a
trie keyed by labels, so a match costs a dictionary lookup per label of the identity, however long
the watchlist; only wildcard labels widen the walk, and never beyond the nodes of the trie.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import idna

from ..errors import ConfigError
from ..identities import UNPARSABLE_LABEL, ip_identity

_ANY_LABEL = frozenset(("*", "?", UNPARSABLE_LABEL))
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")  # what an ASCII watch item label may be


class _Node:
    """A trie node: the watch items that end here and the next labels (right to left)."""

    __slots__ = ("below", "children", "exact", "suffix")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.exact: int | None = None  # index of the item naming exactly this domain
        self.suffix: int | None = None  # index of the item naming this domain and all below
        self.below: int | None = None  # the first of the children's exact and suffix items


class Watchlist:
    """A parsed watchlist; :meth:`match` tells which item, if any, a certificate hits."""

    __slots__ = ("_items", "_root")

    def __init__(self, items: Iterable[str] = ()) -> None:
        """Build from watch items as written; a bad one is a :class:`ConfigError`."""
        self._root = _Node()
        index: dict[str, int] = {}
        for text in items:
            try:
                item = normalise_item(text)
            except ValueError as e:
                raise ConfigError(f"watch item {text!r}: {e}") from None
            if item not in index:
                index[item] = len(index)
                self._insert(item, index[item])
        self._items = tuple(index)
        nodes = [self._root]
        while nodes:  # what a "*" label matches under each node, for match()
            node = nodes.pop()
            node.below = _first(*(i for c in node.children.values() for i in (c.exact, c.suffix)))
            nodes.extend(node.children.values())

    @classmethod
    def parse(cls, text: str, source: str = "watchlist") -> Watchlist:
        """Parse watchlist text; a bad line is a :class:`ConfigError` naming ``source`` and the line."""
        items: list[str] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            try:
                for extra in fields[1:]:
                    if not extra.startswith("valid_at:"):
                        raise ValueError(f"unknown parameter {extra!r}")
                items.append(normalise_item(fields[0]))
            except ValueError as e:
                raise ConfigError(f"{source}, line {lineno}: {e}") from None
        return cls(items)

    @property
    def items(self) -> tuple[str, ...]:
        """The watch items in file order, normalised (lower case, IDNA, no duplicates)."""
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def match(self, identities: list[str]) -> str | None:
        """The first watch item (in file order) that any of the identities matches, or None."""
        # The hot path: every identity of every entry comes here, so the walk for identities
        # with no wildcard label but maybe a leading "*" is inline. Each node reached adds its
        # suffix item; the node of the whole identity its exact item, or for "*.rest" the node of
        # rest the items of its children.
        best: int | None = None
        root = self._root
        for identity in identities:
            star = False
            if "*" in identity or "?" in identity or "<" in identity:
                rest = identity[2:]
                if not identity.startswith("*.") or "*" in rest or "?" in rest or "<" in rest:
                    hit = self._match_wildcard(identity)
                    if hit is not None and (best is None or hit < best):
                        best = hit
                    continue
                identity, star = rest, True
            node, hit = root, root.suffix
            for label in reversed(identity.split(".")):
                child = node.children.get(label)
                if child is None:
                    break
                node = child
                if node.suffix is not None and (hit is None or node.suffix < hit):
                    hit = node.suffix
            else:
                last = node.below if star else node.exact
                if last is not None and (hit is None or last < hit):
                    hit = last
            if hit is not None and (best is None or hit < best):
                best = hit
        return None if best is None else self._items[best]

    def _insert(self, item: str, index: int) -> None:
        suffix = item.startswith(".")
        node = self._root
        for label in reversed(item[1:].split(".") if suffix else item.split(".")):
            if label:  # "." (everything) has no labels at all
                node = node.children.setdefault(label, _Node())
        if suffix:
            node.suffix = index
        else:
            node.exact = index

    def _match_wildcard(self, identity: str) -> int | None:
        """The index of the first item an identity with labels that match more than themselves
        (``*``, ``?``, the unparsable placeholder, globs) matches, walking the trie from the right."""
        best: int | None = None
        frontier = [self._root]  # every node the labels so far can reach
        for label in reversed(identity.split(".")):
            reached: list[_Node] = []
            for node in frontier:
                best = _first(best, node.suffix)
                if label in _ANY_LABEL:
                    reached.extend(node.children.values())
                elif "*" in label:
                    reached.extend(c for lb, c in node.children.items() if _glob_match(label, lb))
                elif (child := node.children.get(label)) is not None:
                    reached.append(child)
            frontier = reached
            if not frontier:
                return best
        for node in frontier:
            best = _first(best, node.exact, node.suffix)
        return best


def _first(*indices: int | None) -> int | None:
    """The smallest index given (the item earliest in the file), or None."""
    found = [i for i in indices if i is not None]
    return min(found) if found else None


def normalise_item(text: str) -> str:
    """The canonical form of one watch item, or ValueError saying what is wrong with it."""
    if text == ".":
        return "."
    suffix = text.startswith(".")
    name = text[1:] if suffix else text
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        if suffix:
            raise ValueError(f"an IP address cannot have subdomains: {text!r}")
        return ip_identity(ip)
    name = name.rstrip(".").lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as e:
            raise ValueError(f"invalid internationalised domain name {text!r}: {e}") from None
    if "*" in name:
        raise ValueError(f"wildcards are not allowed in {text!r}: write .example.com to watch a domain "
                         "and everything under it")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(lb) for lb in name.split(".")):
        raise ValueError(f"invalid domain name {text!r}")
    return "." + name if suffix else name


def _glob_match(pattern: str, label: str) -> bool:
    """Whether ``label`` matches ``pattern``, each ``*`` in which stands for any run of characters.

    Greedy and linear (no regular expression): the pattern comes from a certificate.
    """
    first, *middle, last = pattern.split("*")
    if not label.startswith(first):
        return False
    pos = len(first)
    for part in middle:
        pos = label.find(part, pos)
        if pos < 0:
            return False
        pos += len(part)
    return len(label) - pos >= len(last) and label.endswith(last)
