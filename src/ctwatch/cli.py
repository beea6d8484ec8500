"""The ``ctwatch`` command line: thin wrappers that parse options and call the pipeline."""

from __future__ import annotations

import sys
from collections.abc import Callable
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


def sink_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The alert sinks shared by ``run`` and ``test-alert`` (also settable in ``[alerts]``)."""
    options = [
        click.option("--alerts-jsonl", metavar="PATH|-", help="Append events as JSON lines ('-' = stdout)."),
        click.option("--webhook", multiple=True, metavar="URL", help="POST each alert as JSON (repeatable)."),
        click.option(
            "--email",
            multiple=True,
            metavar="ADDR",
            help="Mail each alert (repeatable; SMTP from config or CTWATCH_SMTP_* variables).",
        ),
        click.option(
            "--script", metavar="PATH", help="Run PATH for each alert with certspotter's hook variables."
        ),
        click.option(
            "--apprise",
            multiple=True,
            metavar="URL",
            help="Send each alert to a chat via an Apprise URL (repeatable).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command()
@click.option(
    "--logs",
    "logs",
    metavar="SRC",
    help="Log list: a path, an http(s) URL, or 'chrome'/'apple' (bundled). Default: the bundled Chrome list.",
)
@click.option("--all-logs", is_flag=True, help="Also follow logs that are not usable, qualified or readonly.")
@click.option(
    "--watch", type=click.Path(path_type=Path, dir_okay=False), help="certspotter-format watchlist."
)
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML config file.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="State directory (default: $XDG_DATA_HOME/ctwatch).",
)
@click.option("--once", is_flag=True, help="Process each log up to its current tree head, verify, exit.")
@click.option("--start-at-end", is_flag=True, help="Start new logs at their current tree head.")
@sink_options
@click.option("--contact", metavar="STR", help="Contact (mail or URL) sent to logs in the User-Agent.")
@click.option("--listen", metavar="HOST:PORT", help="Also serve the web UI, API and certstream feed.")
@click.option("--db", metavar="URL", help="PostgreSQL index (postgresql://...) instead of index.sqlite.")
@click.option("--token", envvar="CTWATCH_TOKEN", help="Bearer token that enables editing ($CTWATCH_TOKEN).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def run(
    logs: str | None,
    all_logs: bool,
    watch: Path | None,
    config: Path | None,
    data_dir: Path | None,
    once: bool,
    start_at_end: bool,
    alerts_jsonl: str | None,
    webhook: tuple[str, ...],
    email: tuple[str, ...],
    script: str | None,
    apprise: tuple[str, ...],
    contact: str | None,
    listen: str | None,
    db: str | None,
    token: str | None,
    verbose: int,
) -> None:
    """Follow CT logs, verify them, and report certificates for watched names.

    Exit codes with --once: 0 every log verified; 3 a log misbehaved; 4 a log was unreachable.
    """
    import asyncio

    from .runner import RunOptions, default_data_dir
    from .runner import run as run_monitor

    setup_logging(verbose)
    opts = RunOptions(
        logs=logs,
        all_logs=all_logs,
        watch=watch,
        config=config,
        data_dir=data_dir or default_data_dir(),
        once=once,
        start_at_end=start_at_end,
        alerts_jsonl=alerts_jsonl,
        contact=contact,
        progress=sys.stderr.isatty(),
        webhooks=webhook,
        emails=email,
        script=script,
        apprise=apprise,
        listen=listen,
        db=db,
        token=token,
    )
    try:
        code = asyncio.run(run_monitor(opts))
    except CtwatchError as e:
        fail(e, EXIT_USAGE if isinstance(e, ConfigError) else EXIT_ERROR)
    sys.exit(code)


def setup_logging(verbose: int) -> None:
    """Warnings by default; ``-v`` info, ``-vv`` debug. Log lines go to stderr, one line each."""
    import logging

    from .logfmt import OneLineFormatter

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="State directory: index.sqlite and state.sqlite (default: $XDG_DATA_HOME/ctwatch).",
)
@click.option("--db", metavar="URL", help="PostgreSQL index (postgresql://...) instead of index.sqlite.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option("--token", envvar="CTWATCH_TOKEN", help="Bearer token that enables editing ($CTWATCH_TOKEN).")
@click.option("--watch", type=click.Path(path_type=Path, dir_okay=False), help="Watchlist file the UI edits.")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config whose [[watch]] entries the UI edits.",
)
@click.option(
    "--logs",
    "logs",
    metavar="SRC",
    help="The monitor's log list (path, URL, 'chrome'/'apple'), to name its logs and check their SCTs.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def serve(
    data_dir: Path | None,
    db: str | None,
    listen: str,
    token: str | None,
    watch: Path | None,
    config: Path | None,
    logs: str | None,
    verbose: int,
) -> None:
    """Serve the index: crt.sh-compatible search and JSON API, web UI, certstream feed at /certstream."""
    import asyncio

    from .runner import default_data_dir
    from .web.server import serve_forever

    setup_logging(verbose)
    try:
        asyncio.run(serve_forever(data_dir or default_data_dir(), db, listen, token, watch, config, logs))
    except CtwatchError as e:
        fail(e, EXIT_USAGE if isinstance(e, ConfigError) else EXIT_ERROR)


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


@main.command("test-alert")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML config ([alerts]).")
@sink_options
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def test_alert(
    config: Path | None,
    alerts_jsonl: str | None,
    webhook: tuple[str, ...],
    email: tuple[str, ...],
    script: str | None,
    apprise: tuple[str, ...],
    verbose: int,
) -> None:
    """Send one sample alert straight to every sink 'ctwatch run' would use; say which delivered it.

    Prints one line per sink: 'ok' or 'FAILED' and why. Exit codes: 0 every sink delivered;
    1 a sink failed; 2 a usage or config error (or no sink configured).
    """
    import asyncio

    from .alerts.testalert import configured_sinks, send_test_alert
    from .runner import RunOptions

    setup_logging(verbose)
    opts = RunOptions(
        config=config,
        alerts_jsonl=alerts_jsonl,
        webhooks=webhook,
        emails=email,
        script=script,
        apprise=apprise,
    )
    try:
        sinks = configured_sinks(opts)
    except CtwatchError as e:
        fail(e, EXIT_USAGE)
    results = asyncio.run(send_test_alert(sinks))
    for result in results:
        click.echo(result.line())
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_ERROR)


@main.command()
@click.argument("target", required=False, metavar="HOST[:PORT]")
@click.option("--name", metavar="NAME", help="Server name to ask for (SNI) and to validate (default: HOST).")
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Check a PEM chain (leaf first) or DER certificate instead of a server.",
)
@click.option(
    "--logs",
    "logs",
    metavar="SRC",
    help="Log list: a path, an http(s) URL, or 'chrome'/'apple' "
    "(bundled). Default: the bundled Chrome list. Logs of every state are used.",
)
@click.option(
    "--watch", type=click.Path(path_type=Path, dir_okay=False), help="certspotter-format watchlist."
)
@click.option(
    "--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML config ([[watch]] policy)."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="State directory of 'ctwatch run' (default: $XDG_DATA_HOME/ctwatch).",
)
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Validate the chain against these PEM roots instead of the system trust store.",
)
@click.option("--offline", is_flag=True, help="Do not ask logs for inclusion proofs.")
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds for the handshake and for each log request.",
)
@click.option("--contact", metavar="STR", help="Contact (mail or URL) sent to logs in the User-Agent.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check(
    target: str | None,
    name: str | None,
    cert_file: Path | None,
    logs: str | None,
    watch: Path | None,
    config: Path | None,
    data_dir: Path | None,
    ca_file: Path | None,
    offline: bool,
    timeout: float,
    contact: str | None,
    as_json: bool,
) -> None:
    """Is this server who it claims to be? Check its certificate against CT, policy and the index.

    Collects the chain and every SCT (embedded, TLS extension, stapled OCSP) in one handshake,
    validates the chain, verifies each SCT and asks its log for proof of inclusion, and compares
    the certificate with the [[watch]] policy and with what 'ctwatch run' has seen.

    \b
    Exit codes: 0 ok (logged, included, allowed, chain valid)
                10 unlogged (no valid SCT, or not included after the MMD)
                11 unexpected (logged, but not authorised by the policy)
                12 impostor-suspect (watched name, neither known nor authorised)
                13 chain invalid or key not proven (otherwise ok)
                14 inconclusive (inclusion not yet provable: log unreachable, --offline, MMD)
                1 error (server unreachable, ...), 2 usage
    """
    import orjson

    from .check import CheckOptions, run_check
    from .check.verdict import render_text
    from .runner import default_data_dir

    opts = CheckOptions(
        name=name,
        logs=logs,
        watch=watch,
        config=config,
        data_dir=data_dir or default_data_dir(),
        ca_file=ca_file,
        timeout=timeout,
        offline=offline,
        contact=contact,
    )
    try:
        report = run_check(target, cert_file, opts)
    except CtwatchError as e:
        fail(e, EXIT_USAGE if isinstance(e, ConfigError) else EXIT_ERROR)
    click.echo(
        orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode()
        if as_json
        else render_text(report.to_json())
    )
    sys.exit(report.exit_code)


@main.command()
@click.option(
    "--brand",
    "brands",
    multiple=True,
    required=True,
    metavar="DOMAIN",
    help="A brand's registrable domain, e.g. paypal.com (repeatable); its label is the brand.",
)
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Lowest score that counts as a lookalike.",
)
@click.argument("names", nargs=-1)
def lookalike(brands: tuple[str, ...], threshold: float, names: tuple[str, ...]) -> None:
    """Say whether each NAME (or each line of stdin) imitates a --brand, as JSON lines.

    Each line has name, lookalike, brand, techniques, score and explanation; a name scoring
    below the threshold still shows its closest brand, to help tune a config.
    """
    import orjson

    from .match.lookalike import Brand, LookalikeDetector

    try:
        detector = LookalikeDetector([Brand(name=d, domains=(d,)) for d in brands], threshold=0.0)
    except CtwatchError as e:
        fail(e, EXIT_USAGE)
    for name in names or (line.decode("utf-8", "replace").strip() for line in sys.stdin.buffer):
        if not name:
            continue
        finding = detector.check(name)
        if finding is None:
            row = {
                "name": name,
                "lookalike": False,
                "brand": None,
                "techniques": [],
                "score": 0.0,
                "explanation": "no configured brand is imitated",
            }
        else:
            row = {
                "name": name,
                "lookalike": finding.score >= threshold,
                "brand": finding.brand,
                "techniques": list(finding.techniques),
                "score": finding.score,
                "explanation": finding.explanation,
            }
        sys.stdout.buffer.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))


@main.group()
def testlog() -> None:
    """A local CT log (RFC 6962 and static-ct-api) with real certificates, for tests and demos.

    Generate a corpus once, then serve it: planted names show what an alert looks like, and
    --misbehave makes the log fail in the ways a verifying monitor must catch.
    """


_TESTLOG_DIR = click.option(
    "--dir",
    "directory",
    required=True,
    help="The test log directory.",
    type=click.Path(path_type=Path, file_okay=False),
)
_TESTLOG_PLANT = click.option(
    "--plant",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Plant a precert and its cert for these names (repeatable).",
)
_TESTLOG_IMPOSTOR = click.option(
    "--impostor",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Plant a pair issued by the 'Unexpected CA' (repeatable).",
)


@testlog.command("generate")
@_TESTLOG_DIR
@click.option("--count", required=True, type=click.IntRange(min=0), help="Number of log entries.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same corpus, byte for byte.")
@_TESTLOG_PLANT
@_TESTLOG_IMPOSTOR
@click.option("--rsa", is_flag=True, help="Give the RFC 6962 log an RSA-2048 key (RSA-signed STHs).")
def testlog_generate(
    directory: Path, count: int, seed: int, plant: tuple[str, ...], impostor: tuple[str, ...], rsa: bool
) -> None:
    """Write a new test log of COUNT entries (about 2/3 precertificates) into --dir.

    Planted entries are listed in DIR/manifest.json.
    """
    from .testlog.corpus import Plant, generate_corpus

    try:
        plants = [*(Plant.parse(p) for p in plant), *(Plant.parse(p, impostor=True) for p in impostor)]
        store = generate_corpus(directory, count, seed=seed, plants=plants, rsa_log=rsa)
    except CtwatchError as e:
        fail(e, EXIT_USAGE)
    click.echo(f"{directory}: {store.size} entries, {len(store.manifest)} planted (see manifest.json)")


@testlog.command("grow")
@_TESTLOG_DIR
@click.option("--count", required=True, type=click.IntRange(min=0), help="Number of entries to add.")
@_TESTLOG_PLANT
@_TESTLOG_IMPOSTOR
def testlog_grow(directory: Path, count: int, plant: tuple[str, ...], impostor: tuple[str, ...]) -> None:
    """Append COUNT entries to --dir while no server runs on it (a running one: POST /admin/grow)."""
    from .testlog.corpus import Plant, grow_corpus
    from .testlog.store import Store

    try:
        plants = [*(Plant.parse(p) for p in plant), *(Plant.parse(p, impostor=True) for p in impostor)]
        store = Store.open(directory)
        planted = grow_corpus(store, count, plants)
    except CtwatchError as e:
        fail(e, EXIT_USAGE)
    click.echo(f"{directory}: {store.size} entries, {len(planted)} newly planted")


@testlog.command("serve")
@_TESTLOG_DIR
@click.option(
    "--listen",
    default="127.0.0.1:0",
    show_default=True,
    metavar="HOST:PORT",
    help="Loopback address; port 0 picks a free one.",
)
@click.option(
    "--misbehave",
    multiple=True,
    metavar="MODE[,MODE...]",
    help="Misbehave from the start (see 'ctwatch testlog modes').",
)
@click.option(
    "--batch-max",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most entries one get-entries answer holds.",
)
@click.option(
    "--loglist",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the log list (default: DIR/loglist.json).",
)
@click.option("--no-persist", is_flag=True, help="Keep entries added by POST /admin/grow in memory only.")
def testlog_serve(
    directory: Path,
    listen: str,
    misbehave: tuple[str, ...],
    batch_max: int,
    loglist: Path | None,
    no_persist: bool,
) -> None:
    """Serve --dir as an RFC 6962 log and a static-ct-api log until SIGINT or SIGTERM.

    Writes a Chrome v3 log list naming both logs at their real URLs. Control while running:
    POST /admin/grow?count=N and POST /admin/misbehave?mode=A,B; GET /admin/status.
    """
    import asyncio

    from .testlog.server import AsyncTestLogServer, serve

    def ready(server: AsyncTestLogServer) -> None:
        click.echo(
            f"ctwatch test log: {server.tree_size} entries from {directory}\n"
            f"  RFC 6962 log:           {server.rfc6962_url}\n"
            f"  static-ct monitoring:   {server.static_url}\n"
            f"  static-ct submission:   {server.static_submission_url}\n"
            f"  log list:               {server.loglist_path}\n"
            f"  admin:                  {server.base_url}/admin/"
        )
        sys.stdout.flush()

    try:
        asyncio.run(
            serve(
                directory,
                listen=listen,
                modes=misbehave,
                batch_max=batch_max,
                loglist_path=loglist or directory / "loglist.json",
                persist=not no_persist,
                on_ready=ready,
            )
        )
    except CtwatchError as e:
        fail(e, EXIT_USAGE)


@testlog.command("modes")
def testlog_modes() -> None:
    """Describe every misbehaviour mode of the test log."""
    from .testlog import modes

    click.echo(modes.__doc__)


@main.command()
@click.option("--count", default=4000, show_default=True, help="Entries in the local log.")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the log, state and alerts here (default: a temporary directory).",
)
def demo(count: int, workdir: Path | None) -> None:
    """See ctwatch catch an impostor certificate in a local CT log, offline."""
    from .demo import demo as run_demo

    try:
        sys.exit(run_demo(count, workdir))
    except CtwatchError as e:
        fail(e)
