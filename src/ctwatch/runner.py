"""``ctwatch run``: wire log list, sources, followers, outbox and progress together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .alerts.base import Sink
from .alerts.jsonl import JsonlSink
from .alerts.outbox import Outbox
from .alerts.sinks import sinks_from_config
from .backfill import backfill
from .config import Config
from .errors import ConfigError, FetchError, LogListError
from .loglist import LogInfo, load_log_list_source, parse_log_list, select_logs
from .match.rules import Rules, build_rules
from .monitor import MISBEHAVED, OK, UNREACHABLE, LogFollower, MonitorOptions
from .scan import Scanner
from .sources.base import open_source
from .sources.http import HttpClient, new_session
from .state import StateDB
from .store.index import Index, open_index

log = logging.getLogger(__name__)

EXIT_CODES = {OK: 0, MISBEHAVED: 3, UNREACHABLE: 4}


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/ctwatch, or ~/.local/share/ctwatch."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ctwatch"


@dataclass(slots=True)
class RunOptions:
    """Everything ``ctwatch run`` takes from its command line."""

    logs: str | None = None
    all_logs: bool = False
    watch: Path | None = None
    config: Path | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    once: bool = False
    start_at_end: bool = False
    alerts_jsonl: str | None = None
    contact: str | None = None
    progress: bool = False
    listen: str | None = None
    db: str | None = None
    token: str | None = None
    webhooks: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    script: str | None = None
    apprise: tuple[str, ...] = ()


async def fetch_log_list(source: str | None, contact: str | None) -> tuple[bytes, str]:
    """A log list from a path, a bundled name, or an http(s) URL the user configured."""
    if source is None or not source.startswith(("http://", "https://")):
        return load_log_list_source(source)
    async with new_session() as session:
        try:
            body = await HttpClient(session, contact=contact).get(source)
        except FetchError as e:
            raise LogListError(f"cannot fetch log list: {e}") from None
    assert body is not None
    return body, source


class RulesHolder:
    """The rules in force; reloaded on SIGHUP and when the config or watchlist file changes.

    A bad file is refused with its message (naming the file and line) and the running rules stay.
    """

    def __init__(self, config: Path | None, watch: Path | None, state: StateDB) -> None:
        self.config, self.watch, self.state = config, watch, state
        self.current: Rules = build_rules(config, watch)
        self.on_reload: Callable[[Rules], None] = lambda rules: None
        self._stamp = self._mtimes()

    def __call__(self) -> Rules:
        return self.current

    def _mtimes(self) -> tuple[float | None, ...]:
        out = []
        for p in (self.config, self.watch):
            try:
                out.append(p.stat().st_mtime_ns if p else None)
            except OSError:
                out.append(None)
        return tuple(out)

    def reload(self) -> bool:
        """Build new rules; keep the running ones if the files are bad."""
        self._stamp = self._mtimes()
        try:
            rules = build_rules(self.config, self.watch)
        except ConfigError as e:
            log.error("config refused, keeping the running one: %s", e)
            print(f"ctwatch: config refused, keeping the running one: {e}", file=sys.stderr)
            return False
        self.current = rules
        self.on_reload(rules)
        n = backfill(self.state, rules)
        log.warning(
            "config reloaded (%d watch items; %d earlier certificates backfilled)", len(rules.watch_items), n
        )
        return True

    async def watch_files(
        self, stop: asyncio.Event, hup: asyncio.Event, on_change: Callable[[], None], interval: float = 1.0
    ) -> None:
        """Reload on SIGHUP or when a file's mtime changes, until ``stop``."""
        while not stop.is_set():
            waiters = [asyncio.ensure_future(hup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if hup.is_set() or self._mtimes() != self._stamp:
                hup.clear()
                if self.reload():
                    on_change()


class ProgressDisplay:
    """A rich progress bar per log on a terminal; nothing otherwise."""

    def __init__(self, followers: list[LogFollower], enabled: bool) -> None:
        self.followers = followers
        self.enabled = enabled

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        cols = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*cols, refresh_per_second=4) as bar:
            ids = [
                bar.add_task(f.info.description[:40], total=None, rate="", status="") for f in self.followers
            ]
            while True:
                for tid, f in zip(ids, self.followers, strict=True):
                    p = f.progress
                    speed = bar.tasks[tid].speed
                    bar.update(
                        tid,
                        completed=p.position,
                        total=p.target or None,
                        status=p.status,
                        rate=f"{speed:,.0f}/s" if speed else "",
                    )
                if stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)


def build_sinks(opts: RunOptions, cfg: Config) -> list[Sink]:
    """The sinks named on the command line and in the config's ``[alerts]`` table."""
    alerts = cfg.raw.get("alerts", {})
    if not isinstance(alerts, dict):
        raise ConfigError("[alerts] must be a table")
    sinks: list[Sink] = []
    jsonl = opts.alerts_jsonl or alerts.get("jsonl")
    if jsonl is not None:
        if not isinstance(jsonl, str) or not jsonl:
            raise ConfigError("alerts.jsonl must be a path or '-'")
        sinks.append(JsonlSink(jsonl))
    cli = {
        "webhook": list(opts.webhooks),
        "email": list(opts.emails),
        "script": opts.script,
        "apprise": list(opts.apprise),
    }
    sinks += sinks_from_config({k: v for k, v in alerts.items() if k != "jsonl"}, cli)
    return sinks


async def run(opts: RunOptions) -> int:
    """Follow the logs; return the process exit code (0, 3 misbehaviour, 4 unreachable)."""
    data, where = await fetch_log_list(opts.logs, opts.contact)
    logs: list[LogInfo] = select_logs(parse_log_list(data, where), opts.all_logs)
    if not logs:
        raise LogListError(f"{where}: no logs to follow (try --all-logs)")
    with contextlib.ExitStack() as resources:
        state = StateDB(opts.data_dir / "state.sqlite")
        resources.callback(state.close)
        rules = RulesHolder(opts.config, opts.watch, state)
        cfg = rules.current.config  # politeness and [monitor] settings apply from start to exit
        outbox = Outbox(state, build_sinks(opts, cfg))
        backfill(state, rules.current)  # after the sinks are registered, so new ones get these too
        index = open_index(opts.data_dir, opts.db or cfg.index_db)
        resources.callback(index.close)
        scanner = Scanner(rules.current, cfg.index_names, index_all=cfg.index_all)
        resources.callback(scanner.close)
        rules.on_reload = scanner.update
        state.prune_names(time.time() - cfg.names_retention_days * 86400)
        mopts = MonitorOptions(
            once=opts.once,
            start_at_end=opts.start_at_end,
            poll_interval=cfg.poll_interval,
            index_names=cfg.index_names,
            unreachable_after=cfg.unreachable_after,
        )
        results = await _follow(opts, logs, state, rules, scanner, outbox, index, mopts, cfg)
        backlog = {k: v for k, v in outbox.backlog().items() if v}
    for name, n in backlog.items():
        print(f"ctwatch: {n} alert(s) not yet delivered to {name}; they will be retried", file=sys.stderr)
    if MISBEHAVED in results:
        return EXIT_CODES[MISBEHAVED]
    if UNREACHABLE in results:
        return EXIT_CODES[UNREACHABLE]
    return 0


async def _follow(
    opts: RunOptions,
    logs: list[LogInfo],
    state: StateDB,
    rules: RulesHolder,
    scanner: Scanner,
    outbox: Outbox,
    index: Index,
    mopts: MonitorOptions,
    cfg: Config,
) -> list[str]:
    """Run one follower per log (and the outbox, progress, reload and web tasks) until done."""
    stop, hup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    feed = None
    if opts.listen:
        from .web import LiveFeed

        feed = LiveFeed(index)
    try:
        async with new_session() as session:
            followers = [
                LogFollower(
                    info,
                    open_source(
                        info,
                        HttpClient(session, cfg.limits_for(info.url), opts.contact),
                        opts.data_dir / "issuers",
                    ),
                    state,
                    rules,
                    scanner,
                    mopts,
                    on_events=outbox.wakeup.set,
                    index=index,
                    on_indexed=feed.notify if feed else lambda: None,
                )
                for info in logs
            ]
            helpers = [
                asyncio.create_task(outbox.run(stop, interval=1.0)),
                asyncio.create_task(ProgressDisplay(followers, opts.progress).run(stop)),
                asyncio.create_task(rules.watch_files(stop, hup, outbox.wakeup.set)),
            ]
            if opts.listen and feed is not None:
                from .web import create_app, serve_app

                app = create_app(
                    index,
                    state.path,
                    opts.token,
                    feed=feed,
                    watch_path=opts.watch,
                    config_path=opts.config,
                    logs=logs,
                )
                helpers.append(asyncio.create_task(serve_app(app, opts.listen, stop)))
            results = await _until_done_or_stopped(
                [asyncio.create_task(f.run(stop)) for f in followers], stop
            )
            stop.set()
            await asyncio.gather(*helpers)
            await outbox.deliver_due()
            return list(results)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


STOP_GRACE = 3.0  # seconds a follower may take to reach its next checkpoint after SIGINT/SIGTERM


async def _until_done_or_stopped(tasks: list[asyncio.Task[str]], stop: asyncio.Event) -> list[str]:
    """Each follower's result; after a stop, followers still busy (say, retrying a dead log)
    are cancelled after STOP_GRACE. The state database holds their last checkpoint, so a
    cancelled round loses nothing and repeats nothing; it counts as OK (the user asked to stop).
    """
    stopped = asyncio.ensure_future(stop.wait())
    try:
        pending = set(tasks)
        while pending and not stop.is_set():
            _, pending = await asyncio.wait(pending | {stopped}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopped)
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
    finally:
        stopped.cancel()
    return [t.result() if not t.cancelled() else OK for t in tasks]
