"""Real alert receivers on loopback, shared by the sink tests and the end-to-end CLI tests.

SMTP is aiosmtpd, HTTP is aiohttp, and hooks are real executable scripts. The in-process helpers
(``http_server``) suit tests that call a sink directly; :class:`HttpReceiver` runs in a background
thread, for tests where ``ctwatch`` runs in another process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import stat
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def smtp_server(
    port: int | None = None, inbox: Inbox | None = None, **kwargs: Any
) -> tuple[Controller, Inbox]:
    """A started aiosmtpd server on 127.0.0.1; ``port`` and ``inbox`` bring a stopped one back."""
    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller, inbox


@asynccontextmanager
async def http_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A real aiohttp server on 127.0.0.1 answering every path with ``handler``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def write_script(path: Path, body: str) -> Path:
    """An executable Python script at ``path`` (json, os, pathlib, sys and time imported)."""
    path.write_text(f"#!{sys.executable}\nimport json, os, pathlib, sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def recording_script(path: Path, out: Path) -> Path:
    """A hook that appends one JSON line per run to ``out``: its argv, environment and event file."""
    return write_script(
        path,
        f"""
env = dict(os.environ)
event = json.loads(pathlib.Path(env["JSON_FILENAME"]).read_text())
with open({str(out)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv, "env": env, "event": event}}) + "\\n")
""",
    )


def script_runs(out: Path) -> list[dict[str, Any]]:
    """What :func:`recording_script` recorded, one dict per run."""
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


class HttpReceiver:
    """An aiohttp server on 127.0.0.1, in its own thread, that records the requests it accepts.

    ``status`` is the answer (503: the receiver is down). With ``hold``, each request after the
    first ``hold_from`` accepted ones waits that long before being answered, and ``holding`` is
    set meanwhile, so a test can kill the sender
    while a delivery is in flight; a request whose sender has gone by then is not accepted, since
    the sender never learnt of it. With ``secret``, ``X-Ctwatch-Signature`` must be the HMAC of
    the body: a request without a valid one is counted in ``bad_signatures`` and refused.
    """

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.status = 200
        self.hold = 0.0
        self.hold_from = 0
        self.holding = threading.Event()
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.bad_signatures = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http-receiver", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.secret is not None:
            want = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("X-Ctwatch-Signature", ""), want):
                self.bad_signatures += 1
                return web.Response(status=401)
        if self.hold and len(self.accepted) >= self.hold_from:
            self.holding.set()
            for _ in range(int(self.hold / 0.02)):
                await asyncio.sleep(0.02)
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=499)  # the sender is gone: it never saw an answer
        if self.status != 200:
            return web.Response(status=self.status)
        self.accepted.append((dict(request.headers), body))
        return web.Response()

    def bodies(self) -> list[Any]:
        """The accepted bodies, parsed as JSON."""
        return [json.loads(body) for _, body in self.accepted]
