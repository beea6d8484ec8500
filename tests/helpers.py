"""Helpers for driving the real CLI against the local test log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CTWATCH = [sys.executable, "-m", "ctwatch"]


def ctwatch(
    *args: str | Path, timeout: float = 300, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI and return its completed process (never raises on exit codes)."""
    return subprocess.run(
        [*CTWATCH, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=input,
    )


def spawn(*args: str | Path, **kw: Any) -> subprocess.Popen[str]:
    """Start the real CLI in the background."""
    return subprocess.Popen(
        [*CTWATCH, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def only_protocol(loglist: Path, protocol: str, dest: Path) -> Path:
    """A copy of the test log's list with only its RFC 6962 (``logs``) or tiled (``tiled_logs``) log."""
    doc = json.loads(loglist.read_text())
    for op in doc["operators"]:
        if protocol == "rfc6962":
            op["tiled_logs"] = []
        else:
            op["logs"] = []
    dest.write_text(json.dumps(doc))
    return dest


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of an alerts file (every line must parse)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def planted(store_dir: Path, *, watched_suffix: str | None = None) -> dict[str, dict[str, Any]]:
    """Planted certificates of a test-log corpus by tbs_sha256 (precert and cert share it)."""
    manifest = json.loads((store_dir / "manifest.json").read_text())
    records = manifest["planted"] if isinstance(manifest, dict) else manifest
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if watched_suffix is None or any(
            n == watched_suffix.lstrip(".") or n.endswith(watched_suffix) for n in r["names"]
        ):
            out.setdefault(r["tbs_sha256"], r)
    return out
