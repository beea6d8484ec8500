"""Follow logs: verify every tree head, rebuild every tree, report only what is proven.

One :class:`LogFollower` per log. A round takes the log's latest tree head, checks its signature
and its consistency with the last trusted one, hashes every new entry into the collapsed tree and
compares the root. Matching entries wait in ``pending`` until proven — by the rebuilt root or, if
that is far off, by an inclusion proof — and only then enter the outbox. Any failure is a
``log_misbehaviour`` event with evidence, and the log's verified position does not move.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .cttypes import STH, parse_merkle_tree_leaf
from .entries import cert_info
from .errors import DecodeError, FetchError, LogMisbehaviour, VerificationError
from .events import cert_event, health_event, malformed_event, misbehaviour_event
from .loglist import LogInfo
from .match.rules import Rules
from .merkle import CompactRange, root_from_inclusion, verify_consistency
from .scan import INDEX, LOOKALIKE, Hit, Scanner, ScanResult
from .sources.base import LogSource
from .state import LogState, StateDB
from .store.index import Index

log = logging.getLogger(__name__)

OK, MISBEHAVED, UNREACHABLE = "ok", "misbehaved", "unreachable"
CERT_EVENTS = frozenset({"discovered_cert", "lookalike"})
BAD_BODY_ATTEMPTS = 5  # a body that does not decode is fetched again this often


def leaf_body(leaf_input: bytes) -> bytes:
    """The certificate DER of an x509 leaf (precert leaves hold only a TBS)."""
    return leaf_input[15 : 15 + int.from_bytes(leaf_input[12:15], "big")]


@dataclass(slots=True)
class MonitorOptions:
    """How the followers behave (CLI flags and config)."""

    once: bool = True
    start_at_end: bool = False
    poll_interval: float = 30.0
    proof_delay: float = 2.0  # prove a pending entry by inclusion proof after this long
    save_interval: float = 1.0  # seconds between position checkpoints during a catch-up
    window: int = 8  # chunks fetched or being scanned at once per log (HTTP concurrency is capped apart)
    index_names: bool = True  # keep the names index that backfills new watch items
    unreachable_after: float = 3600.0  # seconds without success before a log_unreachable alert


@dataclass(slots=True)
class Progress:
    """What a follower reports to the progress display."""

    position: int = 0
    target: int = 0
    status: str = "starting"


@dataclass
class LogFollower:
    """Follows one log; see the module docstring."""

    info: LogInfo
    source: LogSource
    state: StateDB
    rules: Callable[[], Rules | None]
    scanner: Scanner
    options: MonitorOptions
    on_events: Callable[[], None] = lambda: None
    index: Index | None = None
    on_indexed: Callable[[], None] = lambda: None
    progress: Progress = field(default_factory=Progress)

    def __post_init__(self) -> None:
        self.log_id = self.info.log_id_b64
        self._st: LogState | None = None
        self._unflushed: list[tuple[int, bytes, dict[str, Any]]] = []
        self._unflushed_names: list[tuple[int, int, tuple[bytes, bytes]]] = []
        self._failing_since: float | None = None
        self._to_index: list[dict[str, Any]] = []

    # --- state ---------------------------------------------------------------------------------

    def _load(self) -> LogState | None:
        if self._st is None:
            self._st = self.state.load_log(self.log_id, self.info.url)
        return self._st

    def _checkpoint(self, st: LogState) -> None:
        with self.state.transaction():
            for idx, lh, ev in self._unflushed:
                self.state.add_pending(self.log_id, idx, lh, ev)
            self.state.add_name_blocks(self.log_id, self._unflushed_names)
            self.state.save_log(st)
        self._unflushed.clear()
        self._unflushed_names.clear()
        self._committed()

    def _emit(self, event: dict[str, Any], sighting: tuple[str, int, str] | None = None) -> None:
        silent = bool(event.get("_silent", False))
        if self.index is not None and event["event"] in CERT_EVENTS:
            record = {k: v for k, v in event.items() if not k.startswith("_")}
            record.update(der=event.get("_der"), chain=event.get("_chain"))
            self._to_index.append(record)
        self.state.add_event({k: v for k, v in event.items() if not k.startswith("_")}, sighting, silent)

    def _committed(self) -> None:
        """After a transaction that queued events: wake the outbox, feed the index and live feed."""
        self.on_events()
        if self.index is not None and self._to_index:
            records, self._to_index = self._to_index, []
            try:
                self.index.add(records)
            except DecodeError:  # one bad record must not keep the others out; the alerts went out
                for record in records:
                    try:
                        self.index.add([record])
                    except DecodeError as e:
                        log.error("%s: index refused entry %s: %s", self.info.url, record.get("index"), e)
            self.on_indexed()

    def _misbehaved(self, err: LogMisbehaviour) -> None:
        ev = misbehaviour_event(self.info, err.kind, str(err), err.evidence)
        with self.state.transaction():
            self._emit(ev)
        self.state.record_error(self.log_id, self.info.url, f"{err.kind}: {err}")
        self.on_events()

    # --- one round -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> str:
        """Rounds until ``stop`` (or one round with ``once``); returns OK, MISBEHAVED or UNREACHABLE."""
        while True:
            result = await self._round_or_report(stop)
            if self.options.once or stop.is_set():
                return result
            try:
                await asyncio.wait_for(stop.wait(), self.options.poll_interval)
            except TimeoutError:
                continue
            return result  # stopped while waiting: no new round, which could hang on a dead log

    async def _round_or_report(self, stop: asyncio.Event) -> str:
        try:
            await self.round(stop)
            self._failing_since = None
            return OK
        except (LogMisbehaviour, FetchError, DecodeError) as e:
            # The database is the truth: forget in-memory progress past the last checkpoint.
            self._st = None
            self._unflushed.clear()
            self._unflushed_names.clear()
            if isinstance(e, LogMisbehaviour):
                log.error("%s: log misbehaviour (%s): %s", self.info.url, e.kind, e)
                self._misbehaved(e)
                self.progress.status = f"misbehaved: {e.kind}"
                return MISBEHAVED
            log.error("%s: unreachable: %s", self.info.url, e)
            self.state.record_error(self.log_id, self.info.url, str(e))
            self.progress.status = "unreachable"
            self._check_unreachable(str(e))
            return UNREACHABLE

    def _check_unreachable(self, error: str) -> None:
        """A health alert once a log has failed for ``unreachable_after`` seconds."""
        now = time.time()
        if self._failing_since is None:
            # A log that never answered has failed since record_error made its row (updated_at).
            row = self.state.db.execute(
                "SELECT COALESCE(last_success_at, updated_at) FROM logs WHERE log_id=?", (self.log_id,)
            ).fetchone()
            self._failing_since = row[0] if row and row[0] else now
        if now - self._failing_since >= self.options.unreachable_after:
            with self.state.transaction():
                self._emit(
                    health_event(
                        self.info,
                        "log_unreachable",
                        f"unreachable since "
                        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self._failing_since))}: {error}",
                        key=str(int(self._failing_since)),
                    )
                )
            self.on_events()

    async def _trusted_sth(self) -> tuple[STH, LogState]:
        sth, _raw = await self.source.get_sth()
        self.state.record_sth(self.log_id, sth)
        age = time.time() - sth.timestamp / 1000
        if age > self.info.mmd:
            with self.state.transaction():
                self._emit(
                    health_event(
                        self.info,
                        "log_stale",
                        f"the latest tree head is {age:,.0f} s old, "
                        f"more than the log's MMD of {self.info.mmd} s",
                        key=str(sth.timestamp),
                        sth=sth.to_json(),
                    )
                )
            self.on_events()
        st = self._load()
        prev = st.sth if st else None
        if prev is not None:
            ev = {"previous_sth": prev.to_json(), "sth": sth.to_json()}
            if sth.tree_size < prev.tree_size:
                raise LogMisbehaviour(
                    "shrinking_tree", f"tree shrank from {prev.tree_size} to {sth.tree_size}", ev
                )
            if sth.timestamp < prev.timestamp:
                raise LogMisbehaviour(
                    "timestamp_regression",
                    f"STH timestamp went back from {prev.timestamp} to {sth.timestamp}",
                    ev,
                )
            if sth.tree_size == prev.tree_size:
                if sth.root_hash != prev.root_hash:
                    raise LogMisbehaviour("inconsistent_tree", f"two roots for tree size {sth.tree_size}", ev)
            elif prev.tree_size > 0:
                proof = await self.source.get_consistency_proof(prev.tree_size, sth)
                try:
                    verify_consistency(prev.tree_size, sth.tree_size, prev.root_hash, sth.root_hash, proof)
                except VerificationError as e:
                    ev["proof"] = [base64.b64encode(p).decode() for p in proof]
                    raise LogMisbehaviour("inconsistent_tree", f"consistency proof: {e}", ev) from None
        if st is None:
            st = await self._initial_state(sth)
        st.sth = sth
        return sth, st

    async def _initial_state(self, sth: STH) -> LogState:
        tree = CompactRange()
        if self.options.start_at_end and sth.tree_size:
            tree = await self.source.right_edge(sth)
            if tree.size != sth.tree_size or tree.root() != sth.root_hash:
                raise LogMisbehaviour(
                    "root_mismatch",
                    "the right edge of the tree does not match the STH root",
                    {"sth": sth.to_json(), "computed_root": base64.b64encode(tree.root()).decode()},
                )
        self._st = LogState(self.log_id, self.info.url, tree, tree.copy(), None)
        return self._st

    async def round(self, stop: asyncio.Event) -> None:
        """Verify the latest tree head, catch up to it and prove what matched."""
        self.progress.status = "get-sth"
        sth, st = await self._trusted_sth()
        with self.state.transaction():
            self.state.save_log(st)  # the trusted STH is the base of the next consistency check
        self.progress.position, self.progress.target = st.tree.size, sth.tree_size
        self.progress.status = "catching up" if st.tree.size < sth.tree_size else "up to date"
        last_save = time.monotonic()
        async for res in self._batches(st.tree.size, sth.tree_size):
            await self._process(res, st)
            self.progress.position = st.tree.size
            if time.monotonic() - last_save >= self.options.save_interval:
                self._checkpoint(st)
                await self._prove_old_pending(sth)
                last_save = time.monotonic()
            if stop.is_set():
                self._checkpoint(st)
                return
        self._checkpoint(st)
        self._verify_root(st, sth)
        self.progress.status = "verified"

    def _verify_root(self, st: LogState, sth: STH) -> None:
        root = st.tree.root()
        if root != sth.root_hash:
            verified = st.verified.size
            st.tree = st.verified.copy()
            with self.state.transaction():
                self.state.db.execute(
                    "DELETE FROM pending WHERE log_id=? AND idx>=?", (self.log_id, verified)
                )
                self.state.save_log(st)
            raise LogMisbehaviour(
                "root_mismatch",
                f"entries [0, {sth.tree_size}) hash to a root the signed tree head does not have",
                {
                    "sth": sth.to_json(),
                    "computed_root": base64.b64encode(root).decode(),
                    "verified_size": verified,
                },
            )
        st.verified = st.tree.copy()
        with self.state.transaction():
            self._promote(self.state.pending(self.log_id, below=st.tree.size))
            self.state.save_log(st)
        self._committed()

    def _promote(self, rows: list[tuple[int, bytes, dict[str, Any], float]]) -> None:
        """Move proven pending entries into the outbox (inside a transaction)."""
        for idx, _lh, ev, _t in rows:
            sighting = (
                (self.log_id, idx, str(ev.get("entry_type", ""))) if ev["event"] != "malformed_cert" else None
            )
            self._emit(ev, sighting)
        self.state.drop_pending(self.log_id, [r[0] for r in rows])

    async def _prove_old_pending(self, sth: STH) -> None:
        """Inclusion proofs for entries that have waited ``proof_delay``: alerts need not wait."""
        cutoff = time.time() - self.options.proof_delay
        due = [r for r in self.state.pending(self.log_id) if r[3] <= cutoff][:64]
        if not due:
            return
        proven = []
        for row in due:
            idx, lh = row[0], row[1]
            at, path = await self.source.get_inclusion_proof(lh, idx, sth)
            try:
                if root_from_inclusion(lh, at, sth.tree_size, path) != sth.root_hash:
                    raise VerificationError("inclusion proof does not lead to the STH root")
            except VerificationError as e:
                raise LogMisbehaviour(
                    "bad_inclusion_proof",
                    f"entry {idx}: {e}",
                    {
                        "index": idx,
                        "proof_index": at,
                        "leaf_hash": base64.b64encode(lh).decode(),
                        "audit_path": [base64.b64encode(p).decode() for p in path],
                        "sth": sth.to_json(),
                    },
                ) from None
            proven.append(row)
        with self.state.transaction():
            self._promote(proven)
        self._committed()

    # --- entries ---------------------------------------------------------------------------------

    async def _batches(self, start: int, end: int) -> AsyncIterator[ScanResult]:
        """Scanned entries [start, end) in order; up to ``window`` chunks fetched and scanned at once."""
        size = max(1, self.source.batch_hint())
        tree_size = end

        async def fetch_and_scan(pos: int, e: int) -> ScanResult:
            error = "no attempt"
            for _ in range(BAD_BODY_ATTEMPTS):
                raw = await self.source.fetch_entries(pos, e, tree_size)
                if raw.start != pos or raw.count <= 0 or pos + raw.count > e:
                    raise FetchError(
                        f"{self.info.url}: asked for entries from {pos}, got "
                        f"[{raw.start}, {raw.start + raw.count})"
                    )
                try:
                    return await self.scanner.scan(raw)
                except DecodeError as err:  # a torn body that still looked whole: fetch it again
                    error = str(err)
            raise FetchError(
                f"{self.info.url}: entries from {pos} did not decode after "
                f"{BAD_BODY_ATTEMPTS} attempts ({error})"
            )

        async def chunk(s: int, e: int) -> list[ScanResult]:
            out = []
            pos = s
            while pos < e:  # a log may answer with fewer entries than asked: continue from there
                res = await fetch_and_scan(pos, e)
                out.append(res)
                pos += res.count
            return out

        # the first chunk ends on a multiple of the batch size, so tiled logs fetch whole tiles
        edges = [start, *range(start - start % size + size, end, size), end]
        bounds = [(s, e) for s, e in itertools.pairwise(edges) if s < e]
        tasks: list[asyncio.Task[list[ScanResult]]] = []
        it = iter(bounds)
        try:
            for s, e in it:
                tasks.append(asyncio.create_task(chunk(s, e)))
                if len(tasks) >= self.options.window:
                    break
            while tasks:
                results = await tasks.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    tasks.append(asyncio.create_task(chunk(*nxt)))
                for res in results:
                    yield res
        finally:
            for t in tasks:
                t.cancel()

    async def _process(self, res: ScanResult, st: LogState) -> None:
        hashes = res.hashes
        for off, error, leaf in res.malformed:
            idx = res.start + off
            self._unflushed.append(
                (idx, hashes[off * 32 : off * 32 + 32], malformed_event(self.info, idx, error, leaf))
            )
        for hit in res.hits:
            idx = res.start + hit.offset
            if hit.kind == INDEX:
                await self._index_only(idx, hit)
                continue
            self._unflushed.append(
                (idx, hashes[hit.offset * 32 : hit.offset * 32 + 32], await self._describe(res.start, hit))
            )
        if res.names is not None:
            self._unflushed_names.append((res.start, res.count, res.names))
        st.tree.extend([hashes[i : i + 32] for i in range(0, len(hashes), 32)])

    async def _certificate(self, hit: Hit) -> tuple[dict[str, Any], dict[str, Any]]:
        """(CertInfo JSON, the DER and chain as base64) of a hit; DecodeError if it won't parse."""
        entry_type = parse_merkle_tree_leaf(hit.leaf_input).entry_type
        precert, chain = await self.source.get_chain(entry_type, hit.extra)
        info = cert_info(hit.leaf_input, precert, chain)
        blobs = {
            "der": base64.b64encode(precert or leaf_body(hit.leaf_input)).decode(),
            "chain": [base64.b64encode(c).decode() for c in chain],
        }
        return info.to_json(), blobs

    async def _index_only(self, idx: int, hit: Hit) -> None:
        """``[index] mode = "all"``: a certificate that matched nothing goes to the index only."""
        try:
            info, blobs = await self._certificate(hit)
        except DecodeError as e:  # parsable names but not a describable certificate: not indexed
            log.info("%s: entry %d not indexed: %s", self.info.url, idx, e)
            return
        self._to_index.append(cert_event("certificate", self.info, idx, info, **blobs))

    async def _describe(self, start: int, hit: Hit) -> dict[str, Any]:
        """The event for a matched entry: full certificate details and the policy's verdict."""
        idx = start + hit.offset
        try:
            info, raw = await self._certificate(hit)
        except DecodeError as e:
            return malformed_event(self.info, idx, f"matched but does not parse: {e}", hit.leaf_input)
        blobs = {"_der": raw["der"], "_chain": raw["chain"]}  # private: for the index, not the sinks
        if hit.kind == LOOKALIKE:
            assert hit.finding is not None
            return cert_event("lookalike", self.info, idx, info, **hit.finding, **blobs)
        rules = self.rules()
        extra: dict[str, Any] = {
            "watch_item": hit.watch_item,
            "unexpected": True,
            "severity": "info",
            **blobs,
        }
        if rules is not None:
            pol = rules.policy.evaluate(
                info["names"], info["issuer_spki_sha256"], info["pubkey_sha256"], info["tbs_sha256"]
            )
            if pol.watched is not None:
                extra.update(unexpected=not pol.authorised, severity=pol.severity, policy_rule=pol.rule)
                if pol.authorised and not pol.report:
                    extra["_silent"] = True
        return cert_event("discovered_cert", self.info, idx, info, **extra)
