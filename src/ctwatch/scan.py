"""The per-entry hot path, in worker processes: decode, hash, pull out identities, match.

:func:`scan_entries` is pure over one fetched batch, so a :class:`Scanner` runs it on every core
while the monitor's process fetches, rebuilds the tree and writes state. Only what the monitor
needs comes back: the leaf hashes (one bytes object), the few hits with their raw entry, the
unparsable entries, and the batch's names for the backfill index, compressed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass, field, replace
from hashlib import sha256

from .entries import tbs_without_sct
from .errors import DecodeError
from .identities import leaf_scan
from .match.rules import Rules
from .merkle import leaf_hashes
from .nameblocks import BlockBuilder
from .sources.base import RawEntries, decode_entries

WATCH, LOOKALIKE, INDEX = "watch", "lookalike", "index"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
BODY_FILE_MIN = 1 << 16  # smaller bodies go through the pool's pipe
MEMORY_FILES = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")  # Linux
IOV_MAX = 1024  # pieces one pwritev takes (Linux)
MAX_FREE_FILES = 16  # memory files kept for reuse (each as large as the largest body it held)


@dataclass(slots=True)
class Hit:
    """An entry that matched a watch item or a brand, with what describing it needs."""

    offset: int
    kind: str  # WATCH, LOOKALIKE, or INDEX (no match; for an index that keeps everything)
    leaf_input: bytes
    extra: bytes | str
    watch_item: str | None = None
    finding: dict[str, object] | None = None


@dataclass(slots=True)
class ScanResult:
    """What one batch yields; offsets are relative to ``start``."""

    start: int
    hashes: bytes  # 32 bytes per entry, in order
    hits: list[Hit] = field(default_factory=list)
    malformed: list[tuple[int, str, bytes]] = field(default_factory=list)  # (offset, error, leaf_input)
    names: tuple[bytes, bytes] | None = None  # the batch's names index block (ctwatch.nameblocks)

    @property
    def count(self) -> int:
        return len(self.hashes) // 32


def leaf_tbs_sha256(leaf_input: bytes) -> bytes:
    """SHA-256 of the entry's TBS as a precert carries it (a final cert without its SCT list)."""
    if leaf_input[11] == 1:  # precert: issuer_key_hash, then the TBS
        n = int.from_bytes(leaf_input[44:47], "big")
        return sha256(leaf_input[47 : 47 + n]).digest()
    n = int.from_bytes(leaf_input[12:15], "big")
    return sha256(tbs_without_sct(leaf_input[15 : 15 + n])).digest()


def scan_entries(
    raw: RawEntries, rules: Rules | None, index_names: bool, index_all: bool = False
) -> ScanResult:
    """Decode and scan one batch. Raises DecodeError for a torn body (fetch it again).

    With ``index_all`` every parsable entry that matched nothing comes back as an INDEX hit.
    """
    batch = decode_entries(raw)
    leaves, extras = batch.leaf_inputs, batch.extras
    hashes = leaf_hashes(leaves)
    res = ScanResult(batch.start, hashes)
    watch = rules.watchlist.match if rules is not None and rules.watchlist is not None else None
    detector = rules.detector if rules is not None else None
    block = BlockBuilder()
    for i, li in enumerate(leaves):
        try:
            etype, names, tbs_hash = leaf_scan(li, index_names)
            if index_names and names:
                # precerts carry their issuer's key hash in the leaf: keep it for backfill policy
                block.add(i, etype, names, tbs_hash or leaf_tbs_sha256(li), li[12:44] if etype == 1 else None)
        except DecodeError as e:
            res.malformed.append((i, str(e), li))
            continue
        item = watch(names) if watch is not None else None
        if item is not None:
            res.hits.append(Hit(i, WATCH, li, extras[i], watch_item=item))
        elif detector is not None:
            findings = detector.check_names(names)
            if findings:
                best = findings[0]
                res.hits.append(
                    Hit(
                        i,
                        LOOKALIKE,
                        li,
                        extras[i],
                        finding={
                            "brand": best.brand,
                            "techniques": list(best.techniques),
                            "score": best.score,
                            "explanation": best.explanation,
                            "lookalike_name": best.name,
                            "findings": [
                                {
                                    "name": f.name,
                                    "brand": f.brand,
                                    "techniques": list(f.techniques),
                                    "score": f.score,
                                }
                                for f in findings
                            ],
                        },
                    )
                )
            elif index_all:
                res.hits.append(Hit(i, INDEX, li, extras[i]))
        elif index_all:
            res.hits.append(Hit(i, INDEX, li, extras[i]))
    res.names = block.finish()
    return res


# --- worker processes -----------------------------------------------------------------------------

_worker_rules: Rules | None = None
_worker_index_names = False
_worker_index_all = False


def _init_worker(parent: int, rules: Rules | None, index_names: bool, index_all: bool) -> None:
    global _worker_rules, _worker_index_names, _worker_index_all
    _worker_rules, _worker_index_names, _worker_index_all = rules, index_names, index_all
    # A worker must not outlive a monitor killed with SIGKILL (it would hold its stdout open).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _scan_in_worker(raw: RawEntries, body_file: tuple[str, int] | None) -> ScanResult:
    if body_file is not None:
        path, size = body_file
        with open(path, "rb", buffering=0) as f:
            body = f.read(size)
        if len(body) != size:
            raise DecodeError(f"entries file holds {len(body)} of {size} bytes")
        raw = replace(raw, body=body)
    return scan_entries(raw, _worker_rules, _worker_index_names, _worker_index_all)


class Scanner:
    """Runs :func:`scan_entries` in worker processes (inline when ``workers`` is 0).

    Workers hold the rules they were started with; :meth:`update` replaces the pool on reload.
    """

    def __init__(
        self, rules: Rules | None, index_names: bool, workers: int | None = None, index_all: bool = False
    ) -> None:
        self.workers = min(2, os.cpu_count() or 1) if workers is None else workers
        self.index_names = index_names
        self.index_all = index_all
        self.rules = rules
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._files: list[int] = []  # memory files free for the next body
        self._start()

    def _start(self) -> None:
        # fork: workers share the parent's imported modules (memory) and, being its children, are
        # waited for, so their CPU time is the monitor's. All workers are forked at the first
        # submit, done here, while the process has no other threads.
        if self.workers > 0:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_worker,
                initargs=(os.getpid(), self.rules, self.index_names, self.index_all),
            )
            self._pool.submit(int).result()

    def update(self, rules: Rules | None) -> None:
        """Use new rules from now on (scans already running finish with the old ones)."""
        old, self.rules = self._pool, rules
        self._start()
        if old is not None:
            old.shutdown(wait=False, cancel_futures=False)

    async def scan(self, raw: RawEntries) -> ScanResult:
        if self._pool is None:
            return scan_entries(raw, self.rules, self.index_names, self.index_all)
        loop = asyncio.get_running_loop()
        parts = [raw.body] if isinstance(raw.body, bytes) else raw.body
        if parts is not None and len(parts) > IOV_MAX:
            parts = [b"".join(parts)]
        size = sum(map(len, parts or ()))
        if parts is None or size < BODY_FILE_MIN or not MEMORY_FILES:
            return await loop.run_in_executor(self._pool, _scan_in_worker, raw, None)
        # The body reaches the worker as a memory file it opens as /proc/<monitor>/fd/<fd>: one
        # copy in and one out, where the pool's pipe would pickle it and move it 64 KiB at a time.
        # Files are reused (their pages with them) and vanish with the monitor however it ends.
        fd = self._files.pop() if self._files else os.memfd_create("ctwatch-entries", os.MFD_CLOEXEC)
        try:
            if os.pwritev(fd, parts, 0) != size:  # a memory file takes all at once, or says why
                raise OSError(f"short write to a memory file of {size} bytes")
            body_file = (f"/proc/{os.getpid()}/fd/{fd}", size)
            res = await loop.run_in_executor(self._pool, _scan_in_worker, replace(raw, body=None), body_file)
        except BaseException:
            os.close(fd)
            raise
        if len(self._files) < MAX_FREE_FILES:
            self._files.append(fd)
        else:
            os.close(fd)
        return res

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        while self._files:
            os.close(self._files.pop())
