"""``ctwatch run``: wire log list, sources, followers, outbox and progress together."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .alerts.jsonl import JsonlSink
from .alerts.base import Sink
from .alerts.outbox import Outbox
from .alerts.sinks import sinks_from_config
from .config import Config, load_config
from .errors import ConfigError, FetchError, LogListError
from .loglist import LogInfo, load_log_list_source, parse_log_list, select_logs
from .match.watchlist import Watchlist
from .monitor import MISBEHAVED, OK, UNREACHABLE, LogFollower, MonitorOptions
from .sources.base import open_source
from .sources.http import HttpClient, new_session
from .state import StateDB

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


def read_watchlist(path: Path | None) -> Watchlist | None:
    """The certspotter-format watchlist, or None."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read watchlist {path}: {e}") from None
    return Watchlist.parse(text, str(path))


class ProgressDisplay:
    """A rich progress bar per log on a terminal; nothing otherwise."""

    def __init__(self, followers: list[LogFollower], enabled: bool) -> None:
        self.followers = followers
        self.enabled = enabled

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
        with Progress(*cols, refresh_per_second=4) as bar:
            ids = [bar.add_task(f.info.description[:40], total=None, rate="", status="") for f in self.followers]
            while True:
                for tid, f in zip(ids, self.followers, strict=True):
                    p = f.progress
                    speed = bar.tasks[tid].speed
                    bar.update(tid, completed=p.position, total=p.target or None, status=p.status,
                               rate=f"{speed:,.0f}/s" if speed else "")
                if stop.is_set():
                    return
                try:
                    await asyncio.wait_for(stop.wait(), 0.25)
                except TimeoutError:
                    pass


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
    cli = {"webhook": list(opts.webhooks), "email": list(opts.emails), "script": opts.script,
           "apprise": list(opts.apprise)}
    sinks += sinks_from_config({k: v for k, v in alerts.items() if k != "jsonl"}, cli)
    return sinks


async def run(opts: RunOptions) -> int:
    """Follow the logs; return the process exit code (0, 3 misbehaviour, 4 unreachable)."""
    cfg = load_config(opts.config)
    data, where = await fetch_log_list(opts.logs, opts.contact)
    logs: list[LogInfo] = select_logs(parse_log_list(data, where), opts.all_logs)
    if not logs:
        raise LogListError(f"{where}: no logs to follow (try --all-logs)")
    watchlist = read_watchlist(opts.watch)
    state = StateDB(opts.data_dir / "state.sqlite")
    outbox = Outbox(state, build_sinks(opts, cfg))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mopts = MonitorOptions(once=opts.once, start_at_end=opts.start_at_end, poll_interval=cfg.poll_interval)
    try:
        async with new_session() as session:
            followers = []
            for info in logs:
                http = HttpClient(session, cfg.limits_for(info.url), opts.contact)
                followers.append(LogFollower(info, open_source(info, http), state, watchlist, mopts,
                                             on_events=outbox.wakeup.set))
            display = ProgressDisplay(followers, opts.progress)
            delivery = asyncio.create_task(outbox.run(stop, interval=1.0))
            shown = asyncio.create_task(display.run(stop))
            results = await asyncio.gather(*(f.run(stop) for f in followers))
            stop.set()
            await asyncio.gather(delivery, shown)
            await outbox.deliver_due()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        backlog = {k: v for k, v in outbox.backlog().items() if v}
        state.close()
    for name, n in backlog.items():
        print(f"ctwatch: {n} alert(s) not yet delivered to {name}; they will be retried", file=sys.stderr)
    if MISBEHAVED in results:
        return EXIT_CODES[MISBEHAVED]
    if UNREACHABLE in results:
        return EXIT_CODES[UNREACHABLE]
    return 0
