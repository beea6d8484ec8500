"""Everything a monitor matches against, built from the watchlist file and the config.

One immutable :class:`Rules` object; a reload builds a new one and swaps it in whole, so a bad
config never leaves the monitor half-updated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, load_config
from ..errors import ConfigError

if TYPE_CHECKING:
    from .lookalike import LookalikeDetector
from .policy import Policy
from .watchlist import Watchlist


@dataclass(frozen=True)
class Rules:
    """The watchlist (file items and ``[[watch]]`` names), the policy and the lookalike detector."""

    config: Config
    watchlist: Watchlist | None
    policy: Policy
    detector: LookalikeDetector | None = None
    sources: tuple[Path, ...] = field(default=())

    @property
    def watch_items(self) -> list[str]:
        return list(self.watchlist.items) if self.watchlist else []


def read_watchlist(path: Path) -> Watchlist:
    """A certspotter-format watchlist file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read watchlist {path}: {e}") from None
    return Watchlist.parse(text, str(path))


def build_rules(config_path: Path | None, watch_path: Path | None) -> Rules:
    """Read and check everything; raises ConfigError naming the file and line or key."""
    cfg = load_config(config_path)
    source = str(config_path) if config_path else "config"
    policy = Policy.from_config(cfg.raw, source)
    items = list(read_watchlist(watch_path).items) if watch_path else []
    items += [i for i in policy.watch_items if i not in items]
    watchlist = Watchlist(items) if items else None
    detector = _detector(cfg.raw, source)
    paths = tuple(p for p in (config_path, watch_path) if p is not None)
    return Rules(cfg, watchlist, policy, detector, paths)


def _detector(raw: dict[str, Any], source: str) -> LookalikeDetector | None:
    """The lookalike detector for ``[[brand]]`` tables and ``lookalike = true`` watch entries.

    Imported only when brands are configured: its word list and indexes cost memory and time.
    """
    tables = raw.get("brand", [])
    watched = [t for t in raw.get("watch", []) if isinstance(t, dict) and t.get("lookalike") is True]
    look = raw.get("lookalike", {})
    if not isinstance(look, dict) or set(look) - {"threshold"}:
        raise ConfigError(f"{source}: [lookalike] takes only threshold")
    threshold = look.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ConfigError(f"{source}: lookalike.threshold must be a number in [0, 1]")
    if not tables and not watched:
        return None
    from .lookalike import Brand, LookalikeDetector, brands_from_config

    brands = brands_from_config(tables)
    for table in watched:
        domain = str(table["name"]).lstrip(".")
        brands.append(Brand(name=domain.split(".")[0], domains=(domain,)))
    return LookalikeDetector(brands, float(threshold))
