"""The JSONL sink: one event per line to a file (exactly once across crashes) or to stdout."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson

from ..errors import SinkError


class JsonlSink:
    """Appends events to a file; after a crash, ``recover`` finds lines written but not acknowledged.

    The cursor is the file size after the last acknowledged line. On recovery every complete line
    past it is read back for its ``id``, and a torn last line is cut off before new writes.
    """

    def __init__(self, target: str) -> None:
        self.stdout = target == "-"
        self.path = None if self.stdout else Path(target)
        self.name = "jsonl:-" if self.stdout else f"jsonl:{self.path}"
        self._offset: int | None = None

    def recover(self, cursor: str | None) -> tuple[set[str], str | None]:
        if self.path is None:
            return set(), None
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._offset = 0
            return set(), "0"
        start = int(cursor) if cursor and cursor.isdigit() and int(cursor) <= size else 0
        if cursor is None:
            start = size  # a file that predates this sink: nothing of ours is in it
        found: set[str] = set()
        with self.path.open("rb+") as f:
            f.seek(start)
            tail = f.read()
            end = start
            for line in tail.splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break
                end += len(line)
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                    found.add(obj["id"])
            if end < size:
                f.truncate(end)
        self._offset = end
        return found, str(end)

    def cursor(self) -> str | None:
        return None if self._offset is None else str(self._offset)

    async def deliver(self, event: dict[str, Any]) -> None:
        line = orjson.dumps(event) + b"\n"
        if self.path is None:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
                self._offset = os.lseek(fd, 0, os.SEEK_END)
            finally:
                os.close(fd)
        except OSError as e:
            raise SinkError(f"cannot write {self.path}: {e.strerror}") from None
