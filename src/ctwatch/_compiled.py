"""Which modules run compiled (mypyc, see setup.py), and the guard that keeps a build honest.

A compiled module is imported before its ``.py`` beside it. In a development checkout that makes
an edited source silently lose to its older build, so when a source is not the one its build was
made from (setup.py records their SHA-256), or under ``CTWATCH_PURE=1``, these modules are
imported from their sources instead.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

MODULES = ("identities", "merkle", "match.watchlist")  # keep in step with setup.py
HERE = Path(__file__).resolve().parent
RECORD = HERE / "data" / "compiled-sources.json"  # written by setup.py


def _source(module: str) -> Path:
    return HERE.joinpath(*module.split(".")).with_suffix(".py")


def _digest(module: str) -> str:
    return hashlib.sha256(_source(module).read_bytes()).hexdigest()


def _built(module: str) -> bool:
    source = _source(module)
    return any(source.with_name(source.stem + s).exists() for s in importlib.machinery.EXTENSION_SUFFIXES)


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
    """Import every module from source when a build is stale, or under ``CTWATCH_PURE=1``.

    All or none: compiled modules import one another natively, past any import hook.
    """
    built = [m for m in MODULES if _built(m)]
    if not built:
        return
    if not os.environ.get("CTWATCH_PURE"):
        try:
            record = json.loads(RECORD.read_text())
        except (OSError, ValueError):
            record = {}
        stale = [str(_source(m)) for m in built if record.get(m) != _digest(m)]
        if not stale:
            return
        warnings.warn(
            f"{', '.join(stale)}: not the source of the compiled build; running the source of "
            f"{', '.join(MODULES)} (pip install -e . rebuilds it)",
            stacklevel=2,
        )
    sys.meta_path.insert(0, _SourceFirst({f"{__package__}.{m}": _source(m) for m in MODULES}))
