"""``ctwatch run --listen``: the monitor feeds its index, the crt.sh-style API and the certstream feed."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx

from ctwatch.testlog import Plant, TestLogServer

from .conftest import WATCHED
from .helpers import planted, spawn
from .test_certstream import Listener
from .test_run import state_positions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_monitor_feeds_api_and_certstream(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logs]\npoll_interval = 0.5\n")
    want = planted(small_corpus, watched_suffix=WATCHED)
    with TestLogServer(small_corpus) as log:
        p = spawn(
            "run",
            "--logs",
            log.loglist_path,
            "--data-dir",
            tmp_path / "d",
            "--watch",
            watchlist,
            "--config",
            cfg,
            "--listen",
            f"127.0.0.1:{port}",
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            rows: list[dict] = []
            while len(rows) < len(want):
                assert time.time() < deadline and p.poll() is None, "the planted certificates never appeared"
                time.sleep(0.3)
                try:
                    rows = httpx.get(base + "/", params={"q": "%.example.com", "output": "json"}).json()
                except httpx.TransportError:
                    continue
            names = {n for r in rows for n in r["name_value"].split("\n")}
            assert names == {n for rec in want.values() for n in rec["names"]}
            while set(state_positions(tmp_path / "d").values()) != {(3000, 3000)}:
                assert time.time() < deadline
                time.sleep(0.2)
            # a live client sees the certificate the monitor finds after it connected: precert and
            # final certificate, in both logs
            listener = Listener(f"ws://127.0.0.1:{port}/certstream", want=4)
            log.grow(50, [Plant(("live.example.com",))])
            msgs = listener.wait(30)
            assert len(msgs) == 4
            assert all(m["message_type"] == "certificate_update" for m in msgs)
            assert all(m["data"]["leaf_cert"]["all_domains"] == ["live.example.com"] for m in msgs)
            assert {m["data"]["source"]["url"] for m in msgs} == {log.rfc6962_url, log.static_url}
            assert {m["data"]["update_type"] for m in msgs} == {"X509LogEntry", "PrecertLogEntry"}
        finally:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err


def test_index_mode_all_keeps_every_certificate(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    from ctwatch.identities import leaf_identities
    from ctwatch.store import open_index
    from ctwatch.testlog import Store

    from .helpers import ctwatch, only_protocol

    cfg = tmp_path / "config.toml"
    cfg.write_text('[index]\nmode = "all"\n')
    with TestLogServer(small_corpus) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        r = ctwatch("run", "--once", "--logs", loglist, "--data-dir", tmp_path / "d", "--watch", watchlist,
                    "--config", cfg)
        assert r.returncode == 0, r.stderr
    store = Store.open(small_corpus)
    index = open_index(tmp_path / "d")
    try:
        for i in range(0, store.size, 97):  # a sample of ordinary, unwatched entries
            _, _, names = leaf_identities(store.leaf_inputs[i])
            hits = index.search(names[0])
            assert hits, f"entry {i} ({names[0]}) is not in the index"
            sightings = [s for h in hits for s in index.get(h["id"])["sightings"]]
            assert any(s["index"] == i for s in sightings)
    finally:
        index.close()
