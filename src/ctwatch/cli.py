"""The ``ctwatch`` command line: thin wrappers that parse options and call the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import ConfigError, CtwatchError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MISBEHAVIOUR = 3
EXIT_UNREACHABLE = 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ctwatch")
def main() -> None:
    """ctwatch: a verifying Certificate Transparency monitor."""


def fail(err: CtwatchError, code: int = EXIT_ERROR) -> None:
    """Print a user-facing error (never a traceback) and exit."""
    click.echo(f"ctwatch: error: {err}", err=True)
    sys.exit(code)


@main.command()
@click.option("--logs", "logs", metavar="SRC", help="Log list: a path, an http(s) URL, or 'chrome'/'apple' "
              "(bundled). Default: the bundled Chrome list.")
@click.option("--all-logs", is_flag=True, help="Also follow logs that are not usable, qualified or readonly.")
@click.option("--watch", type=click.Path(path_type=Path, dir_okay=False), help="certspotter-format watchlist.")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML config file.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="State directory "
              "(default: $XDG_DATA_HOME/ctwatch).")
@click.option("--once", is_flag=True, help="Process each log up to its current tree head, verify, exit.")
@click.option("--start-at-end", is_flag=True, help="Start new logs at their current tree head.")
@click.option("--alerts-jsonl", metavar="PATH|-", help="Append events as JSON lines ('-' = stdout).")
@click.option("--webhook", multiple=True, metavar="URL", help="POST each alert as JSON (repeatable).")
@click.option("--email", multiple=True, metavar="ADDR", help="Mail each alert (repeatable; SMTP from config "
              "or CTWATCH_SMTP_* variables).")
@click.option("--script", metavar="PATH", help="Run PATH for each alert with certspotter's hook variables.")
@click.option("--apprise", multiple=True, metavar="URL", help="Send each alert to a chat via an Apprise URL "
              "(repeatable).")
@click.option("--contact", metavar="STR", help="Contact (mail or URL) sent to logs in the User-Agent.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def run(logs: str | None, all_logs: bool, watch: Path | None, config: Path | None, data_dir: Path | None,
        once: bool, start_at_end: bool, alerts_jsonl: str | None, webhook: tuple[str, ...],
        email: tuple[str, ...], script: str | None, apprise: tuple[str, ...], contact: str | None,
        verbose: int) -> None:
    """Follow CT logs, verify them, and report certificates for watched names.

    Exit codes with --once: 0 every log verified; 3 a log misbehaved; 4 a log was unreachable.
    """
    import asyncio

    from .runner import RunOptions, default_data_dir
    from .runner import run as run_monitor

    setup_logging(verbose)
    opts = RunOptions(logs=logs, all_logs=all_logs, watch=watch, config=config,
                      data_dir=data_dir or default_data_dir(), once=once, start_at_end=start_at_end,
                      alerts_jsonl=alerts_jsonl, contact=contact, progress=sys.stderr.isatty(),
                      webhooks=webhook, emails=email, script=script, apprise=apprise)
    try:
        code = asyncio.run(run_monitor(opts))
    except CtwatchError as e:
        fail(e, EXIT_USAGE if isinstance(e, ConfigError) else EXIT_ERROR)
    sys.exit(code)


def setup_logging(verbose: int) -> None:
    """Warnings by default; ``-v`` info, ``-vv`` debug. Log lines go to stderr."""
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="State directory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Per log position, tree size, lag, last verified STH and its age, errors; per sink backlog."""
    import orjson

    from .runner import default_data_dir
    from .status import collect_status, render_status

    try:
        st = collect_status(data_dir or default_data_dir())
    except CtwatchError as e:
        fail(e)
    click.echo(orjson.dumps(st, option=orjson.OPT_INDENT_2).decode() if as_json else render_status(st))
