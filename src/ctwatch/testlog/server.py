"""The test log's HTTP server (aiohttp, loopback only), for tests, demos and benchmarks.

One server serves both logs of a store directory:

* ``<base>/rfc6962/ct/v1/…`` — RFC 6962 (get-sth, get-entries, get-sth-consistency,
  get-proof-by-hash, get-entry-and-proof, get-roots);
* ``<base>/static/…`` — the static-ct-api monitoring prefix (checkpoint, tiles, issuers); the
  submission prefix ``<base>/static-ct/`` (only get-roots) names the checkpoint origin;
* ``POST <base>/admin/grow?count=N``, ``POST <base>/admin/misbehave?mode=A,B``,
  ``GET <base>/admin/status`` — control for tests.

:class:`AsyncTestLogServer` runs on the caller's event loop; :class:`TestLogServer` runs one in a
background thread with a blocking API. The tree head advances only when the log is grown.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import gzip
import ipaddress
import os
import random
import re
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import ConfigError
from .ca import Issuer, PrivateKey
from .corpus import Plant, foreign_pair, make_entries
from .modes import RFC6962, STATIC, parse_modes
from .store import Store, log_list_json
from .views import LogView, Rfc6962View, StaticView

RFC6962_PATH = "/rfc6962/"
STATIC_PATH = "/static/"
STATIC_SUBMISSION_PATH = "/static-ct/"
DEFAULT_BATCH_MAX = 256
MAX_GROW = 10_000_000
STORM_FRACTION = 0.5
TRUNCATE_FRACTION = 0.25
T = TypeVar("T")
_TILE_INDEX = re.compile(r"((?:x\d{3}/)*)(\d{3})(?:\.p/([1-9]\d{0,2}))?")


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); the host must be a loopback address (or ``localhost``)."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not port_s.isdigit() or int(port_s) > 65535:
        raise ConfigError(f"--listen {listen!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"the test log listens on loopback addresses only, not {host!r}")
    return host, int(port_s)


def parse_tile_index(path: str) -> tuple[int, int | None] | None:
    """``x001/x234/067[.p/W]`` → (1234067, W or None); None unless canonically encoded."""
    m = _TILE_INDEX.fullmatch(path)
    if m is None:
        return None
    groups = [g[1:] for g in m.group(1).split("/") if g] + [m.group(2)]
    if len(groups) > 1 and groups[0] == "000":
        return None
    width = int(m.group(3)) if m.group(3) else None
    if width is not None and width > 255:
        return None
    return int("".join(groups)), width


def _json(obj: object) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")


def _int_param(request: web.Request, name: str) -> int:
    value = request.query.get(name, "")
    if not value.isdigit() or len(value) > 20:
        raise web.HTTPBadRequest(text=f"parameter {name} must be a non-negative decimal integer\n")
    return int(value)


class AsyncTestLogServer:
    """Both test logs of ``directory`` served over HTTP on the running event loop.

    ``persist=False`` (the default) keeps grown entries in memory, so one generated directory can
    back many tests; ``loglist_path=None`` writes the log list to a private temporary file.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path | str, *, listen: str = "127.0.0.1:0", modes: Iterable[str] = (),
                 batch_max: int = DEFAULT_BATCH_MAX, persist: bool = False,
                 loglist_path: Path | str | None = None, rng_seed: int = 0) -> None:
        if batch_max < 1:
            raise ConfigError("batch_max must be at least 1")
        self.host, self.port = parse_listen(listen)
        self.store = Store.open(Path(directory))
        self.batch_max = batch_max
        self.persist = persist
        self.rfc6962 = Rfc6962View(self.store)
        self.static = StaticView(self.store)
        self._initial_modes = parse_modes(modes)
        self._rng = random.Random(rng_seed)
        self._grow_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.loglist_path = Path(loglist_path) if loglist_path is not None else None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind, serve, write the log list with the real port."""
        app = web.Application(middlewares=[self._misbehaviour])
        r, s = RFC6962_PATH + "ct/v1/", STATIC_PATH
        app.router.add_get(r + "get-sth", self._get_sth)
        app.router.add_get(r + "get-entries", self._get_entries)
        app.router.add_get(r + "get-sth-consistency", self._get_consistency)
        app.router.add_get(r + "get-proof-by-hash", self._get_proof_by_hash)
        app.router.add_get(r + "get-entry-and-proof", self._get_entry_and_proof)
        app.router.add_get(r + "get-roots", self._get_roots)
        app.router.add_get(STATIC_SUBMISSION_PATH + "ct/v1/get-roots", self._get_roots)
        app.router.add_get(s + "checkpoint", self._checkpoint)
        app.router.add_get(s + "tile/{level:data|[0-5]}/{index:.+}", self._tile)
        app.router.add_get(s + "issuer/{fp}", self._issuer)
        app.router.add_post("/admin/grow", self._admin_grow)
        app.router.add_post("/admin/misbehave", self._admin_misbehave)
        app.router.add_get("/admin/status", self._admin_status)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}") from None
        self.port = self._runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{host}:{self.port}"
        self.static.origin = self.static_submission_url.split("://", 1)[1].rstrip("/")
        if self.loglist_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="ctwatch-testlog-")
            self.loglist_path = Path(self._tmpdir.name) / "loglist.json"
        tmp = self.loglist_path.with_name(self.loglist_path.name + ".tmp")
        try:
            tmp.write_bytes(log_list_json(self.store.keys, self.rfc6962_url, self.static_url,
                                          self.static_submission_url))
            os.replace(tmp, self.loglist_path)
        except OSError as e:
            await self.stop()
            raise ConfigError(f"cannot write the log list {self.loglist_path}: {e.strerror or e}") from None
        self._apply_modes(self._initial_modes)

    async def stop(self) -> None:
        """Stop serving and remove a private log list."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> AsyncTestLogServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- URLs and control ------------------------------------------------------------------

    @property
    def rfc6962_url(self) -> str:
        """The RFC 6962 log's base URL (what a log list's ``url`` holds), ending with ``/``."""
        return self.base_url + RFC6962_PATH

    @property
    def static_url(self) -> str:
        """The static-ct-api monitoring prefix, ending with ``/``."""
        return self.base_url + STATIC_PATH

    @property
    def static_submission_url(self) -> str:
        """The static-ct-api submission prefix; its schemeless form is the checkpoint origin."""
        return self.base_url + STATIC_SUBMISSION_PATH

    @property
    def tree_size(self) -> int:
        """Entries in both logs (the size of the honest current tree head)."""
        return self.store.size

    async def grow(self, count: int, plants: Sequence[Plant] = ()) -> list[dict[str, object]]:
        """Append ``count`` entries to both logs and sign new heads; returns new manifest records."""
        if not 0 <= count <= MAX_GROW:
            raise ConfigError(f"grow count must be between 0 and {MAX_GROW}")
        async with self._grow_lock:
            store = self.store
            entries, planted = await asyncio.get_running_loop().run_in_executor(
                None, make_entries, store.keys, store.seed, store.size, count, list(plants))
            store.append(entries, planted, self.persist)
            self.rfc6962.sync()
            self.static.sync()
            return planted

    async def log_certificate(self, names: Sequence[str], issuer: Issuer,
                              subject_key: PrivateKey | None = None) -> list[dict[str, object]]:
        """Log a precert and its cert for ``names`` issued by any CA; returns their manifest records.

        For policy tests a corpus cannot express: an ``issuer`` outside the test PKI (one that copies
        the test CA's name under another key) or a chosen leaf key. Its chain is served by the static
        log's issuer endpoint; the entries stay in memory, so a persisting server refuses.
        """
        if self.persist:
            raise ConfigError("certificates from outside the corpus are kept in memory: use persist=False")
        async with self._grow_lock:
            entries, planted = foreign_pair(self.store.keys, self.store.size, names, issuer, subject_key)
            self.store.append(entries, planted, persist=False)
            self.static.add_issuers(issuer.chain)
            self.rfc6962.sync()
            self.static.sync()
            return planted

    def set_modes(self, *specs: str) -> None:
        """Replace the misbehaviour modes of both logs (see :mod:`ctwatch.testlog.modes`)."""
        self._apply_modes(parse_modes(specs))

    def _apply_modes(self, modes: dict[str, frozenset[str]]) -> None:
        self.rfc6962.set_modes(modes[RFC6962])
        self.static.set_modes(modes[STATIC])

    def affected_index(self, mode: str) -> int | None:
        """The entry index a content mode alters (``garbage_leaf``, ``static:wrong_leaf_index``, ``fork``)."""
        log, sep, name = mode.partition(":")
        views = [self._view(log)] if sep else [self.rfc6962, self.static]
        name = name if sep else mode
        for view in views:
            if name in view.targets:
                return view.targets[name]
        return None

    def status(self) -> dict[str, object]:
        """Both logs' sizes, modes, altered indexes and last served heads."""
        return {RFC6962: self.rfc6962.status(), STATIC: self.static.status()}

    def _view(self, protocol: str) -> LogView:
        if protocol == RFC6962:
            return self.rfc6962
        if protocol == STATIC:
            return self.static
        raise ConfigError(f"unknown log {protocol!r}")

    # --- misbehaviour on the HTTP layer ----------------------------------------------------

    @web.middleware
    async def _misbehaviour(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        view = (self.rfc6962 if path.startswith(RFC6962_PATH)
                else self.static if path.startswith((STATIC_PATH, STATIC_SUBMISSION_PATH)) else None)
        if view is None:
            return await handler(request)
        if "rate_limit_storm" in view.modes and self._rng.random() < STORM_FRACTION:
            retry = "1" if self._rng.random() < 0.125 else "0"
            return web.Response(status=429, text="rate limited (test log storm)\n",
                                headers={"Retry-After": retry})
        response = await handler(request)
        if ("truncated_bodies" in view.modes and isinstance(response, web.Response) and response.status == 200
                and isinstance(response.body, bytes) and len(response.body) > 1
                and self._rng.random() < TRUNCATE_FRACTION):
            return await self._truncate(request, response, short_read=self._rng.random() < 0.5)
        return response

    @staticmethod
    async def _truncate(request: web.Request, response: web.Response, short_read: bool) -> web.StreamResponse:
        """Cut ``response`` in half: with ``short_read``, under the full Content-Length, then hang up."""
        body = response.body
        assert isinstance(body, bytes)
        cut = body[: len(body) // 2]
        if not short_read:
            response.body = cut
            return response
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(cut)
        if request.transport is not None:
            request.transport.close()
        return stream

    # --- RFC 6962 --------------------------------------------------------------------------

    async def _get_sth(self, request: web.Request) -> web.Response:
        return _json(self.rfc6962.served_head().to_json())

    async def _get_entries(self, request: web.Request) -> web.Response:
        start, end = _int_param(request, "start"), _int_param(request, "end")
        size = self.rfc6962.tree.size
        if start > end or start >= size:
            raise web.HTTPBadRequest(text=f"need start <= end and start < tree size {size}\n")
        end = min(end, size - 1, start + self.batch_max - 1)
        if "short_batches" in self.rfc6962.modes:
            end = start + self._rng.randrange(end - start + 1)
        return web.Response(body=b'{"entries":[' + b",".join(self.rfc6962.fragments(start, end + 1)) + b"]}",
                            content_type="application/json")

    async def _get_consistency(self, request: web.Request) -> web.Response:
        first, second = _int_param(request, "first"), _int_param(request, "second")
        view = self.rfc6962
        if not 0 < first <= second <= view.tree.size:
            raise web.HTTPBadRequest(text=f"need 0 < first <= second <= {view.tree.size}\n")
        proof = view.tree.consistency_proof(first, second) if first < second else []
        if "bad_consistency" in view.modes:
            proof = [h[:-1] + bytes((h[-1] ^ 0x01,)) for h in proof]
        return _json({"consistency": [base64.b64encode(h).decode() for h in proof]})

    async def _get_proof_by_hash(self, request: web.Request) -> web.Response:
        size = _int_param(request, "tree_size")
        try:
            leaf_hash = base64.b64decode(request.query.get("hash", ""), validate=True)
        except binascii.Error:
            raise web.HTTPBadRequest(text="hash is not base64\n") from None
        view = self.rfc6962
        if len(leaf_hash) != 32 or not 0 < size <= view.tree.size:
            raise web.HTTPBadRequest(text=f"need a 32-byte hash and 0 < tree_size <= {view.tree.size}\n")
        index = view.index_of(leaf_hash)
        if index is None or index >= size:
            raise web.HTTPNotFound(text="no such leaf in a tree of that size\n")
        path = view.tree.inclusion_proof(index, size)
        return _json({"leaf_index": index, "audit_path": [base64.b64encode(h).decode() for h in path]})

    async def _get_entry_and_proof(self, request: web.Request) -> web.Response:
        index, size = _int_param(request, "leaf_index"), _int_param(request, "tree_size")
        view = self.rfc6962
        if not index < size <= view.tree.size:
            raise web.HTTPBadRequest(text=f"need leaf_index < tree_size <= {view.tree.size}\n")
        leaf, extra = view.entry(index)
        path = view.tree.inclusion_proof(index, size)
        return _json({"leaf_input": base64.b64encode(leaf).decode(),
                      "extra_data": base64.b64encode(extra).decode(),
                      "audit_path": [base64.b64encode(h).decode() for h in path]})

    async def _get_roots(self, request: web.Request) -> web.Response:
        return _json({"certificates": [base64.b64encode(c).decode() for c in self.store.keys.roots]})

    # --- static-ct-api ---------------------------------------------------------------------

    async def _checkpoint(self, request: web.Request) -> web.Response:
        return web.Response(body=self.static.checkpoint(), content_type="text/plain", charset="utf-8")

    async def _tile(self, request: web.Request) -> web.Response:
        level_s = request.match_info["level"]
        parsed = parse_tile_index(request.match_info["index"])
        if parsed is None:
            raise web.HTTPNotFound(text="malformed tile path\n")
        n, width = parsed
        view = self.static
        level = 0 if level_s == "data" else int(level_s)
        available = view.tree.size >> (8 * level)
        full = 256 * (n + 1) <= available
        if width is None:
            if not full:
                raise web.HTTPNotFound(text="no such full tile\n")
            width = 256
        elif full or 256 * n + width > available:
            raise web.HTTPNotFound(text="no such partial tile\n")
        body = view.data_tile(n, width) if level_s == "data" else view.tree.nodes(8 * level, 256 * n, width)
        headers = {}
        if n % 2:  # some tiles gzip-encoded, with no negotiation, as the spec allows
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers, content_type="application/octet-stream")

    async def _issuer(self, request: web.Request) -> web.Response:
        fp_hex = request.match_info["fp"]
        if not re.fullmatch(r"[0-9a-f]{64}", fp_hex):
            raise web.HTTPNotFound(text="issuer names are 64 lowercase hex digits\n")
        der = self.static.issuer(bytes.fromhex(fp_hex))
        if der is None:
            raise web.HTTPNotFound(text="no such issuer\n")
        return web.Response(body=der, content_type="application/pkix-cert")

    # --- admin -----------------------------------------------------------------------------

    async def _admin_grow(self, request: web.Request) -> web.Response:
        count = _int_param(request, "count")
        try:
            plants = [*(Plant.parse(p) for p in request.query.getall("plant", [])),
                      *(Plant.parse(p, impostor=True) for p in request.query.getall("impostor", []))]
            planted = await self.grow(count, plants)
        except ConfigError as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None
        return _json({"tree_size": self.tree_size, "planted": planted})

    async def _admin_misbehave(self, request: web.Request) -> web.Response:
        try:
            self.set_modes(*request.query.getall("mode", []))
        except ConfigError as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None
        return _json(self.status())

    async def _admin_status(self, request: web.Request) -> web.Response:
        return _json(self.status())


class TestLogServer:
    """An :class:`AsyncTestLogServer` on its own event loop in a background thread.

    Use as a context manager; every method is safe to call from the test's thread.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path | str, *, listen: str = "127.0.0.1:0", modes: Iterable[str] = (),
                 batch_max: int = DEFAULT_BATCH_MAX, persist: bool = False,
                 loglist_path: Path | str | None = None, rng_seed: int = 0) -> None:
        self._make = functools.partial(AsyncTestLogServer, directory, listen=listen, modes=tuple(modes),
                                       batch_max=batch_max, persist=persist, loglist_path=loglist_path,
                                       rng_seed=rng_seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ctwatch-testlog", daemon=True)
        self._server: AsyncTestLogServer | None = None

    def start(self) -> TestLogServer:
        """Start the thread and the server; raises what the server's start raised."""
        self._thread.start()

        async def create() -> AsyncTestLogServer:
            server = self._make()
            await server.start()
            return server

        try:
            self._server = self._call(create())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def close(self) -> None:
        """Stop the server and its thread."""
        if self._server is not None:
            self._call(self._server.stop())
            self._server = None
        self._shutdown_loop()

    def __enter__(self) -> TestLogServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _shutdown_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def server(self) -> AsyncTestLogServer:
        """The served instance (its views and store; read them only, between requests)."""
        if self._server is None:
            raise RuntimeError("the test log server is not running")
        return self._server

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (admin endpoints live under ``/admin/``)."""
        return self.server.base_url

    @property
    def rfc6962_url(self) -> str:
        """The RFC 6962 log's URL, as in the log list (``…/rfc6962/``)."""
        return self.server.rfc6962_url

    @property
    def static_url(self) -> str:
        """The static-ct-api monitoring prefix (``…/static/``)."""
        return self.server.static_url

    @property
    def static_submission_url(self) -> str:
        """The static-ct-api submission prefix; the checkpoint origin is it without scheme and slash."""
        return self.server.static_submission_url

    @property
    def loglist_path(self) -> Path:
        """The Chrome v3 log list naming both logs at their real URLs."""
        path = self.server.loglist_path
        assert path is not None
        return path

    @property
    def store(self) -> Store:
        """The served store: its ``manifest`` lists the planted entries."""
        return self.server.store

    @property
    def tree_size(self) -> int:
        """Entries in both logs."""
        return self.server.tree_size

    def grow(self, count: int, plants: Sequence[Plant] = ()) -> list[dict[str, object]]:
        """Append ``count`` entries (with ``plants``) and advance both heads; new manifest records."""
        return self._call(self.server.grow(count, plants))

    def log_certificate(self, names: Sequence[str], issuer: Issuer,
                        subject_key: PrivateKey | None = None) -> list[dict[str, object]]:
        """See :meth:`AsyncTestLogServer.log_certificate`."""
        return self._call(self.server.log_certificate(names, issuer, subject_key))

    def set_modes(self, *specs: str) -> None:
        """Replace the misbehaviour modes (``"fork"``, ``"static:issuer_mismatch"``, …)."""
        self._on_loop(lambda: self.server.set_modes(*specs))

    def affected_index(self, mode: str) -> int | None:
        """See :meth:`AsyncTestLogServer.affected_index`."""
        return self._on_loop(lambda: self.server.affected_index(mode))

    def status(self) -> dict[str, object]:
        """See :meth:`AsyncTestLogServer.status`."""
        return self._on_loop(self.server.status)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop: views are only ever touched from there."""

        async def run() -> T:
            return fn()

        return self._call(run())


async def serve(directory: Path, *, listen: str, modes: Sequence[str], batch_max: int, loglist_path: Path,
                persist: bool, on_ready: Callable[[AsyncTestLogServer], None]) -> None:
    """Serve until SIGINT or SIGTERM (the ``ctwatch testlog serve`` command)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncTestLogServer(directory, listen=listen, modes=modes, batch_max=batch_max, persist=persist,
                                  loglist_path=loglist_path) as server:
        on_ready(server)
        await stop.wait()
