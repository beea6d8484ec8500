"""Which modules run compiled (mypyc, see setup.py), and the guard that keeps a build honest.

A compiled module is imported before its ``.py`` beside it. In a development checkout that makes
an edited source silently lose to its older build, so when a source is newer than its build, or
under ``CTWATCH_PURE=1``, these modules are imported from their sources instead.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

MODULES = ("identities", "merkle", "match.watchlist")  # keep in step with setup.py
HERE = Path(__file__).resolve().parent


def _build_of(source: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        built = source.with_name(source.stem + suffix)
        if built.exists():
            return built
    return None


class _SourceFirst(importlib.abc.MetaPathFinder):
    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def compiled(module: ModuleType) -> bool:
    """Whether ``module`` runs as mypyc built it."""
    return not (module.__file__ or "").endswith(".py")


def install_guard() -> None:
    """Import every module from source when one build is stale, or under ``CTWATCH_PURE=1``.

    All or none: compiled modules import one another natively, past any import hook.
    """
    sources = {f"{__package__}.{m}": HERE.joinpath(*m.split(".")).with_suffix(".py") for m in MODULES}
    stale = []
    for source in sources.values():
        built = _build_of(source)
        if built is not None and built.stat().st_mtime < source.stat().st_mtime:
            stale.append(str(source))
    if stale and not os.environ.get("CTWATCH_PURE"):
        warnings.warn(
            f"{', '.join(stale)} newer than the compiled build; running the source of "
            f"{', '.join(MODULES)} (pip install -e . rebuilds it)",
            stacklevel=2,
        )
    if stale or os.environ.get("CTWATCH_PURE"):
        sys.meta_path.insert(0, _SourceFirst(sources))
