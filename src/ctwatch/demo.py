"""``ctwatch demo``: the whole pipeline on a local log, offline, in well under a minute.

A test log with a few thousand real certificates is generated and served on loopback. The owner
of example.com authorises only their own CA; among the certificates is one for
login.example.com from another CA. ctwatch follows both logs (RFC 6962 and static-ct), verifies
every tree head and root, and prints the one alert that matters.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import click
import orjson

from .alerts.render import render_text
from .runner import RunOptions, run
from .testlog import Plant, TestLogServer, generate_corpus

LEGIT = (("www.example.com", "example.com"), ("shop.example.com",), ("api.example.com",))
IMPOSTOR = ("login.example.com",)


def demo(count: int = 4000, workdir: Path | None = None) -> int:
    """Run the demo; returns the monitor's exit code."""
    with tempfile.TemporaryDirectory(prefix="ctwatch-demo-") as tmp:
        root = workdir or Path(tmp)
        started = time.monotonic()
        click.echo(f"1. Generating a CT log of {count:,} real certificates (a test CA, precerts, SCTs)…")
        store = generate_corpus(
            root / "log",
            count,
            seed=2014,
            plants=[Plant(n) for n in LEGIT] + [Plant(IMPOSTOR, impostor=True)],
        )
        own_ca = store.keys.test_ca.issuer_key_hash.hex()
        config = root / "ctwatch.toml"
        config.write_text(
            "# example.com's owner: only our own CA may issue for us\n"
            "[[watch]]\n"
            'name = ".example.com"\n'
            f'authorised_issuers = ["{own_ca}"]  # SPKI SHA-256 of our issuing CA\n'
            'severity = "critical"\n'
        )
        alerts = root / "alerts.jsonl"
        with TestLogServer(root / "log") as log:
            click.echo(f"2. Serving it on loopback as an RFC 6962 log ({log.rfc6962_url})")
            click.echo(f"   and as a static-ct-api log ({log.static_url}).")
            click.echo("3. Following both logs: every tree head signature, every Merkle root rebuilt from")
            click.echo("   every entry, every certificate parsed and matched against the policy…")
            code = asyncio.run(
                run(
                    RunOptions(
                        logs=str(log.loglist_path),
                        config=config,
                        data_dir=root / "data",
                        once=True,
                        alerts_jsonl=str(alerts),
                    )
                )
            )
        events = [orjson.loads(line) for line in alerts.read_bytes().splitlines()]
        elapsed = time.monotonic() - started
        click.echo(
            f"4. Done in {elapsed:.1f} s: {2 * count:,} entries verified in 2 logs, exit code {code}.\n"
        )
        shown = [e for e in events if e.get("unexpected")]
        if not shown:
            click.echo("No unexpected certificate was found (this should not happen in the demo).")
            return code or 1
        for e in shown:
            click.secho(
                "ALERT: a certificate for a watched name from a CA the owner did not authorise",
                fg="red",
                bold=True,
            )
            click.echo(render_text(e))
        authorised = len(LEGIT)
        click.echo(
            f"\n{authorised} certificates from the owner's own CA were recorded silently (authorised)."
        )
        click.echo(f"Alerts as JSON lines: {alerts if workdir else '(temporary directory, now removed)'}")
        return code
