"""Editing the watchlist file and the config's ``[[watch]]`` policy entries from the web UI.

A change is validated with the same parsers the monitor uses (the ``[[watch]]`` tables by
:meth:`Policy.from_config`, the whole config by :func:`parse_config`) and written atomically (a
temporary file in the same directory, fsync, rename), so the monitor — which reloads on file
change — only ever sees the old file or a valid new one. In the config only the ``[[watch]]``
tables (and their sub-tables) are replaced; every other line stays byte for byte, and the result
is checked to mean the same as before outside ``watch``.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from ..config import parse_config
from ..errors import ConfigError
from ..match.policy import Policy
from ..match.watchlist import Watchlist

MAX_EDIT = 1 << 20
_HEADER = re.compile(r"\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(?:#.*)?")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _check_size(text: str) -> None:
    if len(text) > MAX_EDIT:
        raise ConfigError(f"larger than {MAX_EDIT} characters")


def read_watchlist(path: Path) -> str:
    """The watchlist file as it is (empty if it does not exist yet)."""
    return _read(path)


def write_watchlist(path: Path, text: str) -> list[str]:
    """Validate ``text`` as a certspotter watchlist, write it; returns the normalised items."""
    _check_size(text)
    items = Watchlist.parse(text, path.name).items
    atomic_write(path, text if text.endswith("\n") or not text else text + "\n")
    return list(items)


def _is_watch_header(line: str) -> bool | None:
    """True for a ``[[watch]]``/``[watch.x]`` header, False for another header, None otherwise."""
    m = _HEADER.fullmatch(line)
    if m is None:
        return None
    key = m.group(1).strip().strip("\"'")
    return key == "watch" or key.startswith("watch.") or key.startswith("watch ")


def split_policy(text: str) -> tuple[str, str]:
    """(the config without its watch tables, the watch tables' text)."""
    kept: list[str] = []
    watch: list[str] = []
    in_watch = False
    for line in text.splitlines(keepends=True):
        header = _is_watch_header(line)
        if header is not None:
            in_watch = header
        (watch if in_watch else kept).append(line)
    return "".join(kept), "".join(watch)


def read_policy(path: Path) -> str:
    """The ``[[watch]]`` entries of the config file, as written there."""
    return split_policy(_read(path))[1]


def _toml(text: str, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what}: {e}") from None


def write_policy(path: Path, watch_text: str) -> int:
    """Replace the config's watch tables with ``watch_text``; returns how many ``[[watch]]`` entries.

    Refused (ConfigError naming the table and key, file untouched) unless ``watch_text`` holds
    only ``watch`` tables that the monitor's policy reader accepts, the whole new config passes
    the config parser, and everything outside ``watch`` is unchanged.
    """
    _check_size(watch_text)
    new_watch = _toml(watch_text, "policy")
    if set(new_watch) - {"watch"}:
        raise ConfigError(
            f"policy: only [[watch]] tables belong here, not {', '.join(sorted(set(new_watch) - {'watch'}))}"
        )
    policy = Policy.from_config(new_watch, "policy")
    old_text = _read(path)
    kept, _ = split_policy(old_text)
    body = watch_text.strip()
    new_text = kept.rstrip() + ("\n\n" + body if body else "") + "\n"
    new = _toml(new_text, str(path))
    old = _toml(old_text, str(path))
    if {k: v for k, v in new.items() if k != "watch"} != {
        k: v for k, v in old.items() if k != "watch"
    } or new.get("watch") != new_watch.get("watch"):
        raise ConfigError(
            f"{path}: cannot replace its [[watch]] tables without changing other settings; edit the file"
        )
    parse_config(new_text, str(path))
    atomic_write(path, new_text)
    return len(policy.entries)
