"""The web app: crt.sh-compatible search, a JSON API, the UI pages and the certstream feed.

Pages are rendered on the server by Jinja2 with autoescaping on for every template, so whatever a
certificate carries reaches the browser as text; the Content-Security-Policy (scripts only from
``/static``, no inline script, no inline handlers) is the second line of defence. The only
script edits the watchlist and policy through the API with the bearer token the user types in,
which also keeps those writes safe from cross-site requests (a custom header needs CORS, which
this app never grants).

Routes: ``/`` (search page; with ``output=json`` crt.sh's JSON), ``/cert/{id}``,
``/cert/{id}/pem``, ``/alerts``, ``/watchlist``, ``/logs``; ``/api/search``, ``/api/cert/{id}``,
``/api/alerts``, ``/api/logs``, ``/api/watchlist`` and ``/api/policy`` (``PUT`` with the token);
WebSockets ``/certstream``, ``/certstream/lite`` (or ``?lite``) and ``/domains-only``.
"""

from __future__ import annotations

import base64
import hmac
import inspect
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..errors import ConfigError, CtwatchError
from ..loglist import LogInfo
from ..status import collect_status
from ..store.index import MAX_LIMIT, Index, QueryError, unix_to_iso
from . import editing
from .certstream import DOMAINS, FULL, LITE, LiveFeed
from .decode import bundled_logs, describe, embedded_sct_checks, log_name, pem

PAGE_SIZE = 100
JSON_PAGE = 1000
MAX_BODY = editing.MAX_EDIT + 4096
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        b" connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class _SecurityHeaders:
    """Adds the CSP and friends to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, wrapped)


@dataclass(slots=True)
class _Ctx:
    """What the handlers share."""

    index: Index
    state_path: Path | None
    token: str | None
    feed: LiveFeed
    watch_path: Path | None
    config_path: Path | None
    env: Environment
    logs: dict[bytes, LogInfo]  # by log ID: to name logs and check SCT signatures


def _crtsh_time(iso: str | None) -> str | None:
    return iso.removesuffix("Z") if iso else None


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def crtsh_row(c: dict[str, Any]) -> dict[str, Any]:
    """One result in crt.sh's JSON shape (``result_count``: the certificate's identities)."""
    serial = c["serial"]
    return {
        "issuer_ca_id": c["issuer_ca_id"],
        "issuer_name": c["issuer"],
        "common_name": c["common_name"] or "",
        "name_value": "\n".join(c["names"]),
        "id": c["id"],
        "entry_timestamp": _ms_iso(c["entry_timestamp"]),
        "not_before": _crtsh_time(c["not_before"]),
        "not_after": _crtsh_time(c["not_after"]),
        "serial_number": ("0" + serial if len(serial) % 2 else serial),
        "result_count": len(c["names"]),
    }


@dataclass(frozen=True, slots=True)
class SearchParams:
    """A search as crt.sh's query string spells it."""

    q: str
    issuer: str | None
    exclude_expired: bool
    dedupe: bool
    after: int | None
    limit: int | None

    @classmethod
    def from_request(cls, request: Request, default_limit: int | None) -> SearchParams:
        p = request.query_params
        q = p.get("q") or p.get("identity") or p.get("Identity") or ""
        for key, prefix in (("sha256", "sha256:"), ("serial", "serial:"), ("id", "id:")):
            if p.get(key):
                q = prefix + p[key]
        return cls(
            q=q,
            issuer=p.get("issuer") or None,
            exclude_expired=p.get("exclude", "").lower() == "expired",
            dedupe=p.get("deduplicate", "Y").upper() != "N",
            after=_int_param(p.get("after"), "after"),
            limit=_int_param(p.get("limit"), "limit") or default_limit,
        )

    @property
    def empty(self) -> bool:
        return not self.q.strip() and not self.issuer

    def search(
        self, index: Index, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return index.search(
            self.q,
            issuer=self.issuer,
            exclude_expired=self.exclude_expired,
            dedupe=self.dedupe,
            after=after if after is not None else self.after,
            limit=min(limit or self.limit or PAGE_SIZE, MAX_LIMIT),
        )


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise QueryError(f"{name} must be a non-negative integer")
    return int(value)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(request: Request, ctx: _Ctx, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/") or request.query_params.get("output") == "json":
        return _json({"error": message}, status)
    return _page(ctx, "error.html", {"message": message}, status)


def _page(ctx: _Ctx, name: str, data: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(ctx.env.get_template(name).render(**data), status_code=status)


def _names(c: dict[str, Any]) -> list[tuple[str, str]]:
    """(display name, ASCII name) pairs of a certificate."""
    uni = c.get("names_unicode") or c["names"]
    return list(zip(uni, c["names"], strict=False))


def _read_alerts(state_path: Path | None, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Alerts from the monitor's outbox, newest first, read-only."""
    if state_path is None or not state_path.exists():
        return []
    try:
        db = sqlite3.connect(f"{state_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise ConfigError(f"cannot open {state_path}: {e}") from None
    try:
        db.execute("PRAGMA busy_timeout=5000")
        rows = db.execute(
            "SELECT seq, id, event, created_at FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before if before is not None else 1 << 62, limit),
        ).fetchall()
    except sqlite3.Error as e:
        raise ConfigError(f"cannot read alerts from {state_path}: {e}") from None
    finally:
        db.close()
    out = []
    for seq, eid, event, created in rows:
        try:
            ev = orjson.loads(event)
        except orjson.JSONDecodeError:
            ev = {"event": "unreadable"}
        if not isinstance(ev, dict):
            ev = {"event": "unreadable"}
        out.append({"seq": seq, "id": eid, "created_at": created, "event": ev})
    return out


def create_app(
    index: Index,
    state_path: Path | None,
    token: str | None,
    *,
    feed: LiveFeed | None = None,
    watch_path: Path | None = None,
    config_path: Path | None = None,
    logs: Iterable[LogInfo] = (),
) -> Starlette:
    """The ASGI app over ``index``; ``state_path`` is the monitor's state.sqlite (alerts, log health).

    ``token`` enables the write endpoints (``Authorization: Bearer``); without it they refuse.
    Pass a ``feed`` to share it with the monitor, which calls ``feed.notify()`` after each
    ``index.add`` (``app.state.feed`` holds the one used either way). ``logs`` are known besides
    the bundled lists (the monitor's own ``--logs`` list: a private or test log), so that their
    names show and their SCTs can be checked.
    """
    env = Environment(
        loader=PackageLoader("ctwatch.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso_ms"] = _ms_iso
    env.filters["iso"] = lambda ts: unix_to_iso(int(ts)) if ts is not None else ""
    known = bundled_logs() | {info.log_id: info for info in logs}
    env.globals["log_name"] = lambda log_id_b64: log_name(log_id_b64, known)
    ctx = _Ctx(index, state_path, token, feed or LiveFeed(index), watch_path, config_path, env, known)

    def guarded(fn: Callable[[Request, _Ctx], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                if inspect.iscoroutinefunction(fn):
                    return await fn(request, ctx)  # type: ignore[no-any-return]
                return await run_in_threadpool(fn, request, ctx)
            except QueryError as e:
                return _error(request, ctx, 400, str(e))
            except ConfigError as e:
                return _error(request, ctx, 422 if request.method == "PUT" else 503, str(e))
            except CtwatchError as e:
                return _error(request, ctx, 500, str(e))

        return endpoint

    def ws(variant: str) -> Callable[[WebSocket], Any]:
        async def endpoint(websocket: WebSocket) -> None:
            chosen = LITE if variant == FULL and "lite" in websocket.query_params else variant
            await ctx.feed.serve(websocket, chosen)

        return endpoint

    routes = [
        Route("/", guarded(_home)),
        Route("/cert/{cert_id:int}", guarded(_cert_page)),
        Route("/cert/{cert_id:int}/pem", guarded(_cert_pem)),
        Route("/alerts", guarded(_alerts_page)),
        Route("/watchlist", guarded(_watchlist_page)),
        Route("/logs", guarded(_logs_page)),
        Route("/api/search", guarded(_api_search)),
        Route("/api/cert/{cert_id:int}", guarded(_api_cert)),
        Route("/api/alerts", guarded(_api_alerts)),
        Route("/api/logs", guarded(_api_logs)),
        Route("/api/watchlist", guarded(_api_watchlist), methods=["GET", "PUT"]),
        Route("/api/policy", guarded(_api_policy), methods=["GET", "PUT"]),
        WebSocketRoute("/certstream", ws(FULL)),
        WebSocketRoute("/certstream/lite", ws(LITE)),
        WebSocketRoute("/domains-only", ws(DOMAINS)),
        WebSocketRoute("/certstream/domains-only", ws(DOMAINS)),
        Mount("/static", StaticFiles(packages=[("ctwatch.web", "static")]), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.feed = ctx.feed
    app.add_middleware(_SecurityHeaders)
    return app


# --- search --------------------------------------------------------------------------------------


async def _home(request: Request, ctx: _Ctx) -> Response:
    """crt.sh's front door: the search page, its results, or (``output=json``) crt.sh's JSON."""
    params = SearchParams.from_request(request, None)
    if request.query_params.get("output") == "json":
        if params.empty:
            raise QueryError("give q (or identity, sha256, serial, id, issuer)")
        return await _crtsh_json(ctx, params)
    if params.empty:
        return _page(ctx, "search.html", {"params": params, "results": None})
    results = await run_in_threadpool(params.search, ctx.index)
    if len(results) == 1 and params.q.split(":", 1)[0] in ("id", "sha256") and params.after is None:
        return RedirectResponse(f"/cert/{results[0]['id']}", status_code=303)
    limit = params.limit or PAGE_SIZE
    nxt = None
    if results and len({r["id"] for r in results}) >= limit:
        query = dict(request.query_params) | {"after": str(results[-1]["id"])}
        nxt = request.url.include_query_params(**query)
    return _page(ctx, "search.html", {"params": params, "results": results, "next": nxt, "names": _names})


async def _crtsh_json(ctx: _Ctx, params: SearchParams) -> Response:
    """The whole result set, streamed page by page: no cap, constant memory."""
    first = await run_in_threadpool(params.search, ctx.index, None, params.limit or JSON_PAGE)

    async def body() -> AsyncIterator[bytes]:
        page, sent = first, 0
        yield b"["
        while page:
            for row in page:
                yield (b"," if sent else b"") + orjson.dumps(crtsh_row(row))
                sent += 1
            if params.limit is not None and sent >= params.limit:
                break
            page = await run_in_threadpool(params.search, ctx.index, page[-1]["id"], JSON_PAGE)
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")


def _api_search(request: Request, ctx: _Ctx) -> Response:
    params = SearchParams.from_request(request, PAGE_SIZE)
    if params.empty:
        raise QueryError("give q (or sha256, serial, id, issuer)")
    results = params.search(ctx.index)
    more = len({r["id"] for r in results}) >= (params.limit or PAGE_SIZE)
    return _json({"results": results, "next_after": results[-1]["id"] if results and more else None})


# --- certificates --------------------------------------------------------------------------------


def _load_cert(request: Request, ctx: _Ctx) -> dict[str, Any] | None:
    cert_id = int(request.path_params["cert_id"])
    return ctx.index.get(cert_id) if cert_id < 1 << 62 else None


def _api_cert(request: Request, ctx: _Ctx) -> Response:
    cert = _load_cert(request, ctx)
    if cert is None:
        return _json({"error": "no such certificate"}, 404)
    return _json({**cert, "embedded_scts": _scts(cert, ctx)})


def _scts(cert: dict[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """The final certificate's embedded SCTs, checked over the precertificate entry they sign.

    The issuer key hash is the index's: the precert entry's own, from the verified tree, or that
    of the stored chain's first certificate when it signed the certificate.
    """
    if not cert["cert_der"]:
        return []
    issuer = bytes.fromhex(cert["issuer_spki_sha256"]) if cert["issuer_spki_sha256"] else None
    return embedded_sct_checks(base64.b64decode(cert["cert_der"]), issuer, ctx.logs)


def _chain_of(cert: dict[str, Any], kind: str = "x509") -> list[bytes]:
    """The issuer chain of the first sighting that has one, sightings of entry type ``kind`` first."""
    for s in sorted(cert["sightings"], key=lambda s: s["entry_type"] != kind):
        if s["chain"]:
            return [base64.b64decode(c) for c in s["chain"]]
    return []


def _cert_page(request: Request, ctx: _Ctx) -> Response:
    cert = _load_cert(request, ctx)
    if cert is None:
        return _error(request, ctx, 404, "no such certificate")
    variants = []
    for kind, key in (("x509", "cert_der"), ("precert", "precert_der")):
        if cert[key]:
            variants.append({"kind": kind, "decoded": describe(base64.b64decode(cert[key]))})
    chain = [describe(der) for der in _chain_of(cert)]
    return _page(
        ctx,
        "cert.html",
        {"c": cert, "variants": variants, "chain": chain, "names": _names(cert), "scts": _scts(cert, ctx)},
    )


def _cert_pem(request: Request, ctx: _Ctx) -> Response:
    cert = _load_cert(request, ctx)
    kind = request.query_params.get("type", "x509")
    key = "precert_der" if kind == "precert" else "cert_der"
    if cert is None or not cert[key]:
        return _error(
            request, ctx, 404, f"no {'precertificate' if kind == 'precert' else 'certificate'} DER stored"
        )
    ders = [base64.b64decode(cert[key]), *_chain_of(cert, "precert" if kind == "precert" else "x509")]
    name = f"ctwatch-{cert['id']}{'-precert' if kind == 'precert' else ''}.pem"
    return Response(
        pem(ders),
        media_type="application/x-pem-file",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


# --- alerts and logs -----------------------------------------------------------------------------


def _alerts(request: Request, ctx: _Ctx) -> tuple[list[dict[str, Any]], int | None]:
    before = _int_param(request.query_params.get("before"), "before")
    limit = min(_int_param(request.query_params.get("limit"), "limit") or PAGE_SIZE, MAX_LIMIT)
    rows = _read_alerts(ctx.state_path, before, limit)
    return rows, rows[-1]["seq"] if len(rows) == limit else None


def _alerts_page(request: Request, ctx: _Ctx) -> Response:
    rows, nxt = _alerts(request, ctx)
    return _page(
        ctx,
        "alerts.html",
        {"alerts": rows, "next": nxt, "has_state": ctx.state_path is not None and ctx.state_path.exists()},
    )


def _api_alerts(request: Request, ctx: _Ctx) -> Response:
    rows, nxt = _alerts(request, ctx)
    return _json({"alerts": rows, "next_before": nxt})


def _status(ctx: _Ctx) -> dict[str, Any]:
    if ctx.state_path is None:
        raise ConfigError("no monitor state: start ctwatch serve with --data-dir")
    return collect_status(ctx.state_path.parent)


def _logs_page(request: Request, ctx: _Ctx) -> Response:
    try:
        st, error = _status(ctx), None
    except ConfigError as e:
        st, error = None, str(e)
    return _page(ctx, "logs.html", {"status": st, "error": error})


def _api_logs(request: Request, ctx: _Ctx) -> Response:
    return _json(_status(ctx))


# --- watchlist and policy ------------------------------------------------------------------------


async def _authorised_body(request: Request, ctx: _Ctx) -> str | Response:
    """The ``text`` of a JSON write request, or the error response (token, size, shape)."""
    if not ctx.token:
        return _json({"error": "editing is disabled: start the server with --token"}, 403)
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), ctx.token.encode()):
        return Response(
            orjson.dumps({"error": "a valid bearer token is required"}),
            status_code=401,
            media_type="application/json",
            headers={"www-authenticate": "Bearer"},
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _json({"error": "request too large"}, 413)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return _json({"error": 'send JSON {"text": "..."}'}, 400)
    return str(data["text"])


async def _api_watchlist(request: Request, ctx: _Ctx) -> Response:
    if ctx.watch_path is None:
        return _json({"error": "no watchlist file: start the server with --watch FILE"}, 404)
    if request.method == "PUT":
        text = await _authorised_body(request, ctx)
        if isinstance(text, Response):
            return text
        items = await run_in_threadpool(editing.write_watchlist, ctx.watch_path, text)
        return _json({"saved": True, "items": items})
    return _json({"text": editing.read_watchlist(ctx.watch_path)})


async def _api_policy(request: Request, ctx: _Ctx) -> Response:
    if ctx.config_path is None:
        return _json({"error": "no config file: start the server with --config FILE"}, 404)
    if request.method == "PUT":
        text = await _authorised_body(request, ctx)
        if isinstance(text, Response):
            return text
        count = await run_in_threadpool(editing.write_policy, ctx.config_path, text)
        return _json({"saved": True, "entries": count})
    return _json({"text": editing.read_policy(ctx.config_path)})


def _watchlist_page(request: Request, ctx: _Ctx) -> Response:
    return _page(
        ctx,
        "watchlist.html",
        {
            "watch_path": ctx.watch_path,
            "watchlist": editing.read_watchlist(ctx.watch_path) if ctx.watch_path else None,
            "config_path": ctx.config_path,
            "policy": editing.read_policy(ctx.config_path) if ctx.config_path else None,
            "editable": bool(ctx.token),
        },
    )
