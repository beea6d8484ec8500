"""The TOML config file (``--config``): log politeness, and the sections later stages read.

Parsing is strict: an unknown key or a wrong type is a ConfigError naming the file and the key,
so a typo never silently disables a setting.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .sources.http import HttpLimits

LIMIT_KEYS = {
    "concurrency": int,
    "requests_per_second": (int, float),
    "timeout": (int, float),
    "max_retries": int,
    "max_body": int,
}
TOP_KEYS = {"logs", "watch", "brand", "alerts", "lookalike", "index", "monitor"}


@dataclass(slots=True)
class Config:
    """A parsed config; sections not modelled here are kept raw for their stage to validate."""

    path: Path | None = None
    limits: HttpLimits = field(default_factory=HttpLimits)
    log_limits: dict[str, HttpLimits] = field(default_factory=dict)  # by log URL
    poll_interval: float = 30.0
    unreachable_after: float = 3600.0
    index_names: bool = True
    names_retention_days: float = 7.0
    index_all: bool = False  # [index] mode = "all": every certificate, not only matched ones
    index_db: str | None = None  # [index] db = "postgresql://..."
    raw: dict[str, Any] = field(default_factory=dict)

    def limits_for(self, url: str) -> HttpLimits:
        return self.log_limits.get(url, self.limits)


def _limits(table: dict[str, Any], base: HttpLimits, where: str) -> HttpLimits:
    kwargs: dict[str, Any] = {}
    for k, v in table.items():
        if k not in LIMIT_KEYS:
            continue
        if isinstance(v, bool) or not isinstance(v, LIMIT_KEYS[k]) or v <= 0:
            raise ConfigError(f"{where}.{k}: expected a positive number, got {v!r}")
        kwargs[k] = v
    return HttpLimits(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **kwargs})


def parse_config(text: str, source: str = "config") -> Config:
    """Parse config text; errors name the source and, for syntax errors, the line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: {e}") from None
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    cfg = Config(raw=raw)
    logs = raw.get("logs", {})
    if not isinstance(logs, dict):
        raise ConfigError(f"{source}: [logs] must be a table")
    allowed = set(LIMIT_KEYS) | {"poll_interval", "log"}
    bad = set(logs) - allowed
    if bad:
        raise ConfigError(f"{source}: unknown key(s) in [logs]: {', '.join(sorted(bad))}")
    cfg.limits = _limits(logs, HttpLimits(), f"{source}: logs")
    if "poll_interval" in logs:
        pi = logs["poll_interval"]
        if isinstance(pi, bool) or not isinstance(pi, (int, float)) or pi <= 0:
            raise ConfigError(f"{source}: logs.poll_interval must be a positive number of seconds")
        cfg.poll_interval = float(pi)
    for i, item in enumerate(logs.get("log", [])):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ConfigError(f"{source}: [[logs.log]] #{i + 1} needs a url")
        bad = set(item) - set(LIMIT_KEYS) - {"url"}
        if bad:
            raise ConfigError(f"{source}: unknown key(s) in [[logs.log]] #{i + 1}: {', '.join(sorted(bad))}")
        url = item["url"] if item["url"].endswith("/") else item["url"] + "/"
        cfg.log_limits[url] = _limits(item, cfg.limits, f"{source}: logs.log[{i + 1}]")
    mon = raw.get("monitor", {})
    if not isinstance(mon, dict):
        raise ConfigError(f"{source}: [monitor] must be a table")
    bad = set(mon) - {"unreachable_after", "index_names", "names_retention_days"}
    if bad:
        raise ConfigError(f"{source}: unknown key(s) in [monitor]: {', '.join(sorted(bad))}")
    for key in ("unreachable_after", "names_retention_days"):
        if key in mon:
            v = mon[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"{source}: monitor.{key} must be a positive number")
            setattr(cfg, key, float(v))
    if "index_names" in mon:
        if not isinstance(mon["index_names"], bool):
            raise ConfigError(f"{source}: monitor.index_names must be true or false")
        cfg.index_names = mon["index_names"]
    _index_section(raw, cfg, source)
    return cfg


def _index_section(raw: dict[str, Any], cfg: Config, source: str) -> None:
    idx = raw.get("index", {})
    if not isinstance(idx, dict) or set(idx) - {"mode", "db"}:
        raise ConfigError(f"{source}: [index] takes mode (\"matched\" or \"all\") and db")
    mode = idx.get("mode", "matched")
    if mode not in ("matched", "all"):
        raise ConfigError(f"{source}: index.mode must be \"matched\" or \"all\", not {mode!r}")
    cfg.index_all = mode == "all"
    db = idx.get("db")
    if db is not None and (not isinstance(db, str) or not db.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f"{source}: index.db must be a postgresql:// URL")
    cfg.index_db = db


def load_config(path: Path | None) -> Config:
    """Read and parse ``path``; no path means defaults."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    cfg = parse_config(text, str(path))
    cfg.path = path
    return cfg
