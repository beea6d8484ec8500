"""The web UI in a real browser (Debian's chromium driven by Playwright): search, open a certificate,
edit the watchlist, see an alert; a certificate named ``<img src=x onerror=alert(1)>.example.com``
shows as text and no script of its runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctwatch.state import StateDB
from ctwatch.store import open_index
from ctwatch.web import create_app

from .index_records import HOSTILE, log_records, real_records, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-token"

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    d = tmp_path_factory.mktemp("site")
    records: list[dict[str, Any]] = real_records()[:4] + log_records(
        d / "log", 20, [[HOSTILE, "www.example.com"]]
    )
    index = open_index(d)
    index.add(records)
    hostile = next(r for r in records if HOSTILE in r["names"])
    state = StateDB(d / "state.sqlite")
    with state.transaction():
        state.add_event(
            {
                **hostile,
                "event": "discovered_cert",
                "id": "discovered_cert:" + hostile["tbs_sha256"],
                "time": "2025-06-01T00:00:05Z",
                "watch_item": ".example.com",
                "unexpected": True,
            }
        )
    state.close()
    watch = d / "watchlist"
    watch.write_text(".example.com\n")
    with serving(create_app(index, d / "state.sqlite", TOKEN, watch_path=watch)) as base:
        yield base, watch, d
    index.close()


@pytest.fixture(scope="module")
def page(site: tuple[str, Path, Path]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page()
        pg.set_default_timeout(15000)
        yield pg
        browser.close()


@pytest.fixture
def dialogs(page: Any) -> Iterator[list[str]]:
    """Every alert()/confirm() the page opens; the tests require none."""
    seen: list[str] = []

    def on_dialog(d: Any) -> None:
        seen.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    yield seen
    page.remove_listener("dialog", on_dialog)


def test_search_and_open_a_hostile_certificate(
    site: tuple[str, Path, Path], page: Any, dialogs: list[str]
) -> None:
    base, _, _ = site
    page.goto(base + "/")
    page.fill("#q", "%.example.com")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#results")
    names = page.locator("#results .name").all_inner_texts()
    assert HOSTILE in names
    assert page.locator("#results img, main img").count() == 0
    page.locator("#results tr", has_text="onerror").locator("a.cert-link").click()
    page.wait_for_selector("#summary")
    assert HOSTILE in page.locator("#summary .names").inner_text()
    assert page.locator("img").count() == 0
    assert "Log sightings" in page.content()
    assert dialogs == []


def test_open_a_real_certificate_and_its_details(
    site: tuple[str, Path, Path], page: Any, dialogs: list[str]
) -> None:
    base, _, _ = site
    page.goto(base + "/?q=%25.google.com")
    page.locator("#results tr", has_text="appengine.google.com").locator("a.cert-link").click()
    page.wait_for_selector("#summary")
    assert "Google Trust Services" in page.locator("#summary").inner_text()
    assert page.locator("#sightings tr").count() >= 2
    scts = page.locator("#scts tr.sct").all_inner_texts()  # checked over the rebuilt precert entry
    assert len(scts) == 2 and all(row.endswith("verified") for row in scts), scts
    assert any("Argon 2025H2" in row for row in scts)
    assert dialogs == []


def test_edit_the_watchlist(site: tuple[str, Path, Path], page: Any, dialogs: list[str]) -> None:
    base, watch, _ = site
    page.goto(base + "/watchlist")
    assert page.input_value("#watchlist") == ".example.com\n"
    page.fill("#token", "wrong")
    page.fill("#watchlist", ".example.com\n.example.org\n")
    page.click("#save-watchlist")
    status = playwright_api.expect(page.locator("#watchlist-status"))
    status.to_contain_text("not saved: a valid bearer token is required")
    assert watch.read_text() == ".example.com\n"
    page.fill("#token", TOKEN)
    page.click("#save-watchlist")
    status.to_have_text("saved")
    assert watch.read_text() == ".example.com\n.example.org\n"
    page.fill("#watchlist", "not a name!\n")
    page.click("#save-watchlist")
    status.to_contain_text("line 1")
    assert watch.read_text() == ".example.com\n.example.org\n"
    page.reload()
    assert page.input_value("#watchlist") == ".example.com\n.example.org\n"
    assert dialogs == []


def test_see_the_alert(site: tuple[str, Path, Path], page: Any, dialogs: list[str]) -> None:
    base, _, _ = site
    page.goto(base + "/alerts")
    row = page.locator("#alerts tr.alert").first
    text = row.inner_text()
    assert "discovered_cert" in text and "unexpected" in text and ".example.com" in text and HOSTILE in text
    assert page.locator("img").count() == 0
    row.locator("a.cert-link").click()
    page.wait_for_selector("#summary")
    assert HOSTILE in page.locator("#summary").inner_text()
    assert dialogs == []
