"""The ``ctwatch`` command line: thin wrappers that parse options and call the pipeline."""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import CtwatchError

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
