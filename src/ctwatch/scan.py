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
import zlib
from dataclasses import dataclass, field, replace
from hashlib import sha256

import orjson

from .entries import tbs_without_sct
from .errors import DecodeError
from .identities import leaf_scan
from .match.rules import Rules
from .sources.base import RawEntries, decode_entries

WATCH, LOOKALIKE, INDEX = "watch", "lookalike", "index"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
BODY_FILE_MIN = 1 << 16  # smaller bodies go through the pool's pipe


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
    names: bytes | None = None  # zlib(JSON [[offset, entry_type, tbs hex, [names], issuer key hash], ...])

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
    hashes = b"".join([sha256(b"\x00" + li).digest() for li in leaves])
    res = ScanResult(batch.start, hashes)
    watch = rules.watchlist.match if rules is not None and rules.watchlist is not None else None
    detector = rules.detector if rules is not None else None
    rows: list[list[object]] = []
    for i, li in enumerate(leaves):
        try:
            etype, names, tbs_hash = leaf_scan(li, index_names)
            if index_names and names:
                # precerts carry their issuer's key hash in the leaf: keep it for backfill policy
                ikh = li[12:44].hex() if etype == 1 else None
                rows.append([i, etype, (tbs_hash or leaf_tbs_sha256(li)).hex(), names, ikh])
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
    if rows:
        res.names = zlib.compress(orjson.dumps(rows), 1)
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


def _scan_in_worker(raw: RawEntries, body_path: str | None) -> ScanResult:
    if body_path is not None:
        with open(body_path, "rb") as f:
            raw = replace(raw, body=f.read())
    return scan_entries(raw, _worker_rules, _worker_index_names, _worker_index_all)


def _body_file(body: bytes) -> int:
    """A memory file holding ``body``, for a worker to open as /proc/<monitor>/fd/<fd>.

    A body sent through the pool's pipe costs about 1 ms of CPU per MB (pickling, 64 KiB pipe
    writes and reads, reassembly) – a quarter of the whole scan. A memory file costs one copy in
    and one out, and vanishes with the monitor however it ends.
    """
    fd = os.memfd_create("ctwatch-entries", os.MFD_CLOEXEC)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


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
        if raw.body is None or len(raw.body) < BODY_FILE_MIN:
            return await loop.run_in_executor(self._pool, _scan_in_worker, raw, None)
        fd = _body_file(raw.body)
        try:
            path = f"/proc/{os.getpid()}/fd/{fd}"
            bare = replace(raw, body=None)
            return await loop.run_in_executor(self._pool, _scan_in_worker, bare, path)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
