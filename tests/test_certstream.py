"""The live feed, read by the unchanged ``certstream`` client from PyPI over a real WebSocket.

Records of the local test log reach the index the way the monitor delivers them (``index.add``
then ``feed.notify()``, here from another thread); the client must get each one, promptly, in
log order, and a client that reconnects with the last cursor it saw must get exactly the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certstream
import pytest

from ctwatch.store import open_index
from ctwatch.store.index import SqlIndex
from ctwatch.web import LiveFeed, create_app

from .index_records import HOSTILE, log_records, real_records, serving


class Listener:
    """The certstream client in a thread, stopping itself after ``want`` messages (or on timeout)."""

    def __init__(self, url: str, want: int, skip_heartbeats: bool = True) -> None:
        self.messages: list[dict[str, Any]] = []
        self.want = want
        self.opened = threading.Event()
        self.done = threading.Event()
        self.client = certstream.core.CertStreamClient(
            self._on_message, url, skip_heartbeats=skip_heartbeats, on_open=self.opened.set
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.opened.wait(10), "the certstream client did not connect"

    def _run(self) -> None:
        self.client.run_forever(ping_interval=15)
        self.done.set()

    def _on_message(self, message: dict[str, Any], _context: Any) -> None:
        self.messages.append(message)
        if len(self.messages) >= self.want:
            self.client.close()

    def wait(self, timeout: float = 15) -> list[dict[str, Any]]:
        self.done.wait(timeout)
        if not self.done.is_set():
            self.client.close()
            self.thread.join(5)
        return self.messages


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return real_records()[:3] + log_records(tmp_path_factory.mktemp("testlog") / "log", 40, [[HOSTILE]])


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[tuple[str, SqlIndex, LiveFeed]]:
    index = open_index(tmp_path)
    # A long poll interval: only notify() can deliver within the test's deadlines.
    feed = LiveFeed(index, poll_interval=30.0, heartbeat_interval=0.5)
    with serving(create_app(index, None, None, feed=feed)) as base:
        yield base.replace("http://", "ws://"), index, feed
    index.close()


def _publish(index: SqlIndex, feed: LiveFeed, records: list[dict[str, Any]]) -> None:
    """What the monitor does after proving entries: add them, then tell the feed (another thread)."""
    t = threading.Thread(target=lambda: (index.add(records), feed.notify()))
    t.start()
    t.join()


def test_client_receives_every_record_and_resumes_without_a_gap(
    feed_server: tuple[str, SqlIndex, LiveFeed], records: list[dict[str, Any]]
) -> None:
    ws, index, feed = feed_server
    first, second, third = records[:10], records[10:25], records[25:]
    _publish(index, feed, first)
    a = Listener(f"{ws}/certstream?cursor=0", want=len(first) + 5)
    start = time.monotonic()
    _publish(index, feed, second)  # live, while connected
    got_a = a.wait()
    assert time.monotonic() - start < 10  # promptly, not at the 30 s poll
    assert len(got_a) == len(first) + 5
    _publish(index, feed, third)  # while the client is away
    last = got_a[-1]["cursor"]
    b = Listener(f"{ws}/certstream?cursor={last}", want=len(records) - len(got_a))
    got_b = b.wait()
    seen = [(m["data"]["source"]["url"], m["data"]["cert_index"]) for m in got_a + got_b]
    assert seen == [(r["log_url"], r["index"]) for r in records]  # all, once, in order
    cursors = [m["cursor"] for m in got_a + got_b]
    assert cursors == sorted(set(cursors))


def test_message_format_matches_certstream(
    feed_server: tuple[str, SqlIndex, LiveFeed], records: list[dict[str, Any]]
) -> None:
    ws, index, feed = feed_server
    _publish(index, feed, records[:3])
    full = Listener(f"{ws}/certstream?cursor=0", want=3).wait()
    for msg, rec in zip(full, records[:3], strict=True):
        assert msg["message_type"] == "certificate_update"
        data = msg["data"]
        assert data["update_type"] == (
            "PrecertLogEntry" if rec["entry_type"] == "precert" else "X509LogEntry"
        )
        leaf = data["leaf_cert"]
        assert leaf["all_domains"] == rec["names"]
        assert data["cert_index"] == rec["index"] and data["source"]["url"] == rec["log_url"]
        assert isinstance(data["seen"], float) and data["cert_link"].endswith(
            f"/cert/{data['cert_link'].split('/')[-1]}"
        )
        assert isinstance(leaf["not_before"], int) and isinstance(leaf["not_after"], int)
        assert leaf["subject"]["aggregated"] and "CN" in leaf["subject"]
        assert set(leaf["extensions"]) >= {"subjectAltName"} and leaf["as_der"] == rec["der"]
        assert len(leaf["fingerprint"].split(":")) == 20 and leaf["serial_number"].lstrip("0") == rec[
            "serial"
        ].upper().lstrip("0")
        assert [c["as_der"] for c in data["chain"]] == rec["chain"]
    assert full[0]["data"]["leaf_cert"]["extensions"]["ctlPoisonByte"] is True  # Argon's precert
    lite = Listener(f"{ws}/certstream/lite?cursor=0", want=3).wait()
    assert [m["cursor"] for m in lite] == [m["cursor"] for m in full]
    assert all("as_der" not in m["data"]["leaf_cert"] and "chain" not in m["data"] for m in lite)
    also_lite = Listener(f"{ws}/certstream?lite&cursor=0", want=1).wait()
    assert "chain" not in also_lite[0]["data"]
    domains = Listener(f"{ws}/domains-only?cursor=0", want=3).wait()
    assert [(m["message_type"], m["data"]) for m in domains] == [
        ("dns_entries", r["names"]) for r in records[:3]
    ]


def test_new_clients_start_at_the_head_and_heartbeats_are_skipped(
    feed_server: tuple[str, SqlIndex, LiveFeed], records: list[dict[str, Any]]
) -> None:
    ws, index, feed = feed_server
    _publish(index, feed, records[:5])
    beats = Listener(f"{ws}/certstream", want=1, skip_heartbeats=False).wait()
    assert beats[0]["message_type"] == "heartbeat"  # nothing new: only a heartbeat arrives
    live = Listener(f"{ws}/domains-only", want=2)
    time.sleep(1.2)  # heartbeats pass meanwhile; the client's default skips them
    _publish(index, feed, records[5:7])
    got = live.wait()
    assert [m["data"] for m in got] == [r["names"] for r in records[5:7]]


def test_bad_cursor_is_refused(feed_server: tuple[str, SqlIndex, LiveFeed]) -> None:
    ws, _, _ = feed_server
    errors: list[Exception] = []
    client = certstream.core.CertStreamClient(
        lambda m, c: None, f"{ws}/certstream?cursor=-5", on_error=errors.append
    )
    client.run_forever()
    assert errors and "403" in str(errors[0])
