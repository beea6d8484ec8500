"""Shared fixtures: the real CT data copied from ctdata, and helpers to run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

CTDATA = Path(__file__).parent / "data" / "ctdata"


@pytest.fixture(scope="session")
def ctdata() -> Path:
    """The root of the real CT test data (see its README.md)."""
    return CTDATA


WATCHED = ".example.com"
PLANTS = ("www.example.com", "shop.example.com,example.com", "api.example.com")
IMPOSTORS = ("login.example.com",)
DECOYS = ("example.com.evil.test", "notexample.com")


def _corpus(root: Path, name: str, count: int) -> Path:
    from ctwatch.testlog import Plant, generate_corpus

    d = root / name
    plants = [Plant.parse(p) for p in PLANTS + DECOYS] + [Plant.parse(p, impostor=True) for p in IMPOSTORS]
    generate_corpus(d, count, seed=7, plants=plants)
    return d


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 entries with planted certificates for .example.com (and decoys that must not match)."""
    return _corpus(tmp_path_factory.mktemp("corpus"), "small", 3000)


@pytest.fixture(scope="session")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 entries, the same planted certificates spread over the log."""
    return _corpus(tmp_path_factory.mktemp("corpus"), "big", 100_000)


@pytest.fixture
def watchlist(tmp_path: Path) -> Path:
    p = tmp_path / "watchlist"
    p.write_text(f"# the planted names\n{WATCHED}\n")
    return p
