"""Shared fixtures: the real CT data copied from ctdata, and helpers to run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

CTDATA = Path(__file__).parent / "data" / "ctdata"


@pytest.fixture(scope="session")
def ctdata() -> Path:
    """The root of the real CT test data (see its README.md)."""
    return CTDATA
