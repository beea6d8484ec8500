"""Log lists: Chrome's v3 (``logs`` and ``tiled_logs``) and Apple's v5, bundled or user-given.

A log whose ``log_id`` is not SHA-256 of its key is refused: following it would mean trusting
signatures from a key the list does not vouch for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.resources
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from .errors import LogListError

RFC6962 = "rfc6962"
STATIC = "static"
FOLLOWED_STATES = frozenset({"usable", "qualified", "readonly"})
BUNDLED = {
    "chrome": "chrome_all_logs_list.json",
    "apple": "apple_current_log_list.json",
}
MAX_LIST_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class LogInfo:
    """One log as a list describes it."""

    description: str
    operator: str
    protocol: str  # RFC6962 or STATIC
    url: str  # RFC 6962 base URL, or the static-ct monitoring prefix; always ends with "/"
    key: bytes  # DER SubjectPublicKeyInfo
    log_id: bytes
    mmd: int
    state: str | None
    submission_url: str | None = None
    temporal_interval: tuple[datetime, datetime] | None = None
    log_type: str | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def log_id_b64(self) -> str:
        return base64.b64encode(self.log_id).decode()

    @property
    def origin(self) -> str:
        """The static-ct checkpoint origin: submission prefix without scheme or trailing slash."""
        base = self.submission_url or self.url
        return base.split("://", 1)[-1].rstrip("/")

    @property
    def followed_by_default(self) -> bool:
        return self.state in FOLLOWED_STATES


def _state(obj: dict) -> str | None:
    st = obj.get("state")
    if isinstance(st, dict) and st:
        return next(iter(st))
    return None


def _interval(obj: dict) -> tuple[datetime, datetime] | None:
    ti = obj.get("temporal_interval")
    if not isinstance(ti, dict):
        return None
    try:
        return (
            datetime.fromisoformat(ti["start_inclusive"].replace("Z", "+00:00")),
            datetime.fromisoformat(ti["end_exclusive"].replace("Z", "+00:00")),
        )
    except (KeyError, ValueError, AttributeError) as e:
        raise LogListError(f"bad temporal_interval {ti!r}: {e}") from None


def _norm_url(url: object, what: str, desc: str) -> str:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise LogListError(f"log {desc!r}: {what} {url!r} is not an http(s) URL")
    return url if url.endswith("/") else url + "/"


def _log(obj: object, operator: str, tiled: bool) -> LogInfo:
    if not isinstance(obj, dict):
        raise LogListError(f"operator {operator!r}: a log entry is not an object")
    desc = str(obj.get("description", "?"))
    try:
        key = base64.b64decode(obj["key"], validate=True)
        log_id = base64.b64decode(obj["log_id"], validate=True)
    except (KeyError, TypeError, binascii.Error) as e:
        raise LogListError(f"log {desc!r}: missing or invalid key/log_id ({e})") from None
    if hashlib.sha256(key).digest() != log_id:
        raise LogListError(
            f"log {desc!r}: log_id {obj['log_id']} is not the SHA-256 of its key; refusing this list"
        )
    mmd = obj.get("mmd", 86400)
    if not isinstance(mmd, int) or mmd <= 0:
        raise LogListError(f"log {desc!r}: mmd {mmd!r} is not a positive integer")
    if tiled:
        url = _norm_url(obj.get("monitoring_url"), "monitoring_url", desc)
        sub = _norm_url(obj.get("submission_url"), "submission_url", desc)
    else:
        url = _norm_url(obj.get("url"), "url", desc)
        sub = None
    known = {
        "description",
        "key",
        "log_id",
        "mmd",
        "url",
        "monitoring_url",
        "submission_url",
        "state",
        "temporal_interval",
        "log_type",
    }
    return LogInfo(
        description=desc,
        operator=operator,
        protocol=STATIC if tiled else RFC6962,
        url=url,
        key=key,
        log_id=log_id,
        mmd=mmd,
        state=_state(obj),
        submission_url=sub,
        temporal_interval=_interval(obj),
        log_type=obj.get("log_type"),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def parse_log_list(data: bytes, source: str = "log list") -> list[LogInfo]:
    """Parse a Chrome v3 or Apple v5 list (same ``operators[].logs/tiled_logs`` shape)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise LogListError(f"{source}: not JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("operators"), list):
        raise LogListError(f"{source}: no 'operators' list; not a v3/v5 log list")
    logs: list[LogInfo] = []
    for op in doc["operators"]:
        if not isinstance(op, dict):
            raise LogListError(f"{source}: an operator is not an object")
        name = str(op.get("name", "?"))
        for obj in op.get("logs") or []:
            logs.append(_log(obj, name, tiled=False))
        for obj in op.get("tiled_logs") or []:
            logs.append(_log(obj, name, tiled=True))
    return logs


def read_bundled(name: str = "chrome") -> bytes:
    """The log list shipped with ctwatch (``chrome`` or ``apple``)."""
    return importlib.resources.files("ctwatch.data.loglists").joinpath(BUNDLED[name]).read_bytes()


def load_log_list_source(source: str | None) -> tuple[bytes, str]:
    """Read a local list: None → bundled Chrome list; ``chrome``/``apple`` → bundled; else a path.

    URLs are fetched by the caller (async HTTP); see :func:`ctwatch.sources.http.fetch_log_list`.
    """
    if source is None:
        return read_bundled("chrome"), "bundled Chrome log list"
    if source in BUNDLED:
        return read_bundled(source), f"bundled {source} log list"
    path = Path(source)
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise LogListError(f"{source}: larger than {MAX_LIST_BYTES} bytes")
        return path.read_bytes(), str(path)
    except OSError as e:
        raise LogListError(f"cannot read log list {source}: {e.strerror or e}") from None


def select_logs(logs: list[LogInfo], all_logs: bool = False) -> list[LogInfo]:
    """The logs to follow: usable, qualified or readonly unless ``all_logs``; one per log_id."""
    seen: set[bytes] = set()
    out = []
    for log in logs:
        if log.log_id in seen or not (all_logs or log.followed_by_default):
            continue
        seen.add(log.log_id)
        out.append(log)
    return out
