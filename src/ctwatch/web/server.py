"""Running the web app with uvicorn inside an existing event loop (``serve`` and ``run --listen``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from ..errors import ConfigError

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not port_s.isdigit() or not 0 < int(port_s) <= 65535:
        raise ConfigError(f"--listen {listen!r} is not HOST:PORT")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"--listen: {host!r} is not an IP address") from None
    return host, int(port_s)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns SIGINT/SIGTERM and says when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


async def serve_app(app: ASGIApp, listen: str, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``listen`` until ``stop`` is set; an address in use is a ConfigError.

    The socket is bound here, not by uvicorn, which would ``sys.exit`` on a bind failure.
    """
    sock = _bind(*parse_listen(listen))
    log.warning("ctwatch serving on http://%s/ (certstream feed at /certstream)", listen)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await task
        sock.close()


async def serve_forever(
    data_dir: Path,
    db_url: str | None,
    listen: str,
    token: str | None,
    watch_path: Path | None,
    config_path: Path | None,
    logs_source: str | None = None,
) -> None:
    """``ctwatch serve``: the index of ``data_dir`` (or ``db_url``) on ``listen`` until SIGINT/SIGTERM.

    The feed polls the index, so a ``ctwatch run`` in another process shows up within a second.
    ``logs_source`` (``--logs``: a path, URL or bundled name) adds the logs of the list the
    monitor follows to those the pages can name and check SCTs against.
    """
    from ..loglist import parse_log_list
    from ..runner import fetch_log_list
    from ..store import open_index
    from .app import create_app

    logs = parse_log_list(*await fetch_log_list(logs_source, None)) if logs_source else []
    index = open_index(data_dir, db_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        app = create_app(
            index,
            data_dir / "state.sqlite",
            token,
            watch_path=watch_path,
            config_path=config_path,
            logs=logs,
        )
        await serve_app(app, listen, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        index.close()
