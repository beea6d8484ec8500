"""The real ``ctwatch run`` CLI against the local test log on loopback (RFC 6962 and static-ct)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from ctwatch.testlog import Plant, TestLogServer

from .conftest import WATCHED
from .helpers import ctwatch, only_protocol, planted, read_events, spawn


def run_once(loglist: Path, data: Path, alerts: Path, watch: Path, *extra: str):
    return ctwatch(
        "run",
        "--once",
        "--logs",
        loglist,
        "--data-dir",
        data,
        "--alerts-jsonl",
        alerts,
        "--watch",
        watch,
        "--contact",
        "tests@ctwatch.invalid",
        *extra,
    )


def certs(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "discovered_cert"]


def assert_found_exactly_planted(events: list[dict], corpus: Path) -> None:
    found = Counter(e["tbs_sha256"] for e in certs(events))
    want = planted(corpus, watched_suffix=WATCHED)
    assert set(found) == set(want), "every planted certificate, nothing else"
    assert all(n == 1 for n in found.values()), f"an alert was repeated: {found}"
    for e in certs(events):
        assert e["watch_item"] == WATCHED
        assert any(n == "example.com" or n.endswith(".example.com") for n in e["names"])
        for f in (
            "log_url",
            "log_id",
            "index",
            "timestamp",
            "entry_type",
            "issuer",
            "serial",
            "not_before",
            "not_after",
            "tbs_sha256",
            "cert_sha256",
            "pubkey_sha256",
        ):
            assert e[f] not in (None, ""), f


def state_positions(data: Path) -> dict[str, tuple[int, int]]:
    st = json.loads(ctwatch("status", "--data-dir", data, "--json").stdout)
    return {row["url"]: (row["position"], row["verified_size"]) for row in st["logs"]}


@pytest.mark.parametrize("protocol", ["rfc6962", "static"])
def test_catch_up_100k_finds_every_planted_certificate(
    big_corpus: Path, tmp_path: Path, watchlist: Path, protocol: str
) -> None:
    with TestLogServer(big_corpus) as log:
        loglist = only_protocol(log.loglist_path, protocol, tmp_path / "list.json")
        r = run_once(loglist, tmp_path / "data", tmp_path / "alerts.jsonl", watchlist)
        assert r.returncode == 0, r.stderr
        assert_found_exactly_planted(read_events(tmp_path / "alerts.jsonl"), big_corpus)
        ((pos, verified),) = state_positions(tmp_path / "data").values()
        assert pos == verified == log.tree_size == 100_000


def test_both_protocols_in_one_run_same_certificates(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    with TestLogServer(small_corpus) as log:
        r = run_once(log.loglist_path, tmp_path / "data", tmp_path / "alerts.jsonl", watchlist)
        assert r.returncode == 0, r.stderr
        events = read_events(tmp_path / "alerts.jsonl")
        assert_found_exactly_planted(events, small_corpus)
        # each certificate was seen in both logs, as precert and as final cert: one alert, four sightings
        import sqlite3

        db = sqlite3.connect(tmp_path / "data" / "state.sqlite")
        rows = db.execute("SELECT event_id, log_id, entry_type FROM sightings").fetchall()
        per_cert = Counter(r[0] for r in rows)
        assert set(per_cert.values()) == {4}
        assert {r[1] for r in rows} == {log_id for log_id in {r[1] for r in rows}} and len(
            {r[1] for r in rows}
        ) == 2
        positions = state_positions(tmp_path / "data")
        assert set(positions) == {log.rfc6962_url, log.static_url}
        assert all(p == (3000, 3000) for p in positions.values())


def test_second_run_repeats_nothing_and_finds_new_entries(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        assert run_once(log.loglist_path, tmp_path / "d", alerts, watchlist).returncode == 0
        before = certs(read_events(alerts))
        assert run_once(log.loglist_path, tmp_path / "d", alerts, watchlist).returncode == 0
        assert certs(read_events(alerts)) == before
        new = log.grow(500, [Plant(("new.example.com",))])
        r = run_once(log.loglist_path, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 0, r.stderr
        after = certs(read_events(alerts))
        assert len(after) == len(before) + 1
        assert after[-1]["names"] == ["new.example.com"]
        assert after[-1]["tbs_sha256"] == new[0]["tbs_sha256"]


@pytest.mark.parametrize("protocol", ["rfc6962", "static"])
def test_kill_9_at_random_moments_then_resume(
    big_corpus: Path, tmp_path: Path, watchlist: Path, protocol: str
) -> None:
    rng = random.Random(1234)
    data, alerts, cfg = tmp_path / "data", tmp_path / "alerts.jsonl", tmp_path / "config.toml"
    cfg.write_text("[logs]\nrequests_per_second = 40\n")  # about 10,000 entries/s: time to be killed
    with TestLogServer(big_corpus) as log:
        loglist = only_protocol(log.loglist_path, protocol, tmp_path / "list.json")
        args = (
            "run",
            "--once",
            "--logs",
            loglist,
            "--data-dir",
            data,
            "--alerts-jsonl",
            alerts,
            "--watch",
            watchlist,
            "--config",
            cfg,
        )
        kills = 0
        for _ in range(6):
            p = spawn(*args)
            time.sleep(rng.uniform(0.5, 2.0))
            if p.poll() is not None:
                break
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
        assert kills >= 3, "the run finished too fast to be interrupted"
        r = ctwatch(*args)
        assert r.returncode == 0, r.stderr
        assert_found_exactly_planted(read_events(alerts), big_corpus)
        ((pos, verified),) = state_positions(data).values()
        assert pos == verified == 100_000


@pytest.mark.parametrize("mode", ["bad_sth_signature", "root_mismatch"])
def test_lying_from_the_start_is_misbehaviour_and_no_alert(
    small_corpus: Path, tmp_path: Path, watchlist: Path, mode: str
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus, modes=[f"rfc6962:{mode}"]) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        r = run_once(loglist, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 3, r.stderr
        events = read_events(alerts)
        assert certs(events) == []
        (mis,) = [e for e in events if e["event"] == "log_misbehaviour"]
        assert mis["kind"] == mode and mis["log_url"] == log.rfc6962_url
        assert "sth" in mis["evidence"]
        if mode == "root_mismatch":
            assert mis["evidence"]["computed_root"] != mis["evidence"]["sth"]["sha256_root_hash"]
        ((pos, verified),) = state_positions(tmp_path / "d").values()
        assert verified == 0 and pos == 0, "state must not advance past what was verified"


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("fork", "inconsistent_tree"),
        ("shrink", "shrinking_tree"),
        ("timestamp_regression", "timestamp_regression"),
        ("bad_consistency", "inconsistent_tree"),
    ],
)
def test_misbehaviour_after_an_honest_run(
    small_corpus: Path, tmp_path: Path, watchlist: Path, mode: str, kind: str
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        assert run_once(loglist, tmp_path / "d", alerts, watchlist).returncode == 0
        honest = certs(read_events(alerts))
        if mode in ("bad_consistency", "fork"):
            log.grow(300, [Plant(("after-the-fork.example.com",))])
        log.set_modes(f"rfc6962:{mode}")
        r = run_once(loglist, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 3, r.stderr
        events = read_events(alerts)
        assert certs(events) == honest, "no discovered_cert from the lying part"
        mis = [e for e in events if e["event"] == "log_misbehaviour"]
        assert [m["kind"] for m in mis] == [kind]
        assert mis[0]["evidence"]["previous_sth"]["tree_size"] == 3000
        ((pos, verified),) = state_positions(tmp_path / "d").values()
        assert pos == verified == 3000


@pytest.mark.parametrize("mode", ["rate_limit_storm", "short_batches", "truncated_bodies"])
def test_hostile_transport_survived_with_nothing_skipped(
    small_corpus: Path, tmp_path: Path, watchlist: Path, mode: str
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus, modes=[mode], batch_max=100) as log:
        r = run_once(log.loglist_path, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 0, r.stderr
        assert_found_exactly_planted(read_events(alerts), small_corpus)
        assert all(p == (3000, 3000) for p in state_positions(tmp_path / "d").values())


def test_garbage_leaf_is_a_malformed_entry_not_a_gap(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus, modes=["rfc6962:garbage_leaf"]) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        r = run_once(loglist, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 0, r.stderr
        events = read_events(alerts)
        (bad,) = [e for e in events if e["event"] == "malformed_cert"]
        assert bad["index"] == log.affected_index("rfc6962:garbage_leaf")
        assert bad["error"]
        assert not [e for e in events if e["event"] == "log_misbehaviour"]
        assert state_positions(tmp_path / "d")[log.rfc6962_url] == (3000, 3000)


def test_start_at_end_then_follow(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        r = run_once(log.loglist_path, tmp_path / "d", alerts, watchlist, "--start-at-end")
        assert r.returncode == 0, r.stderr
        assert certs(read_events(alerts)) == []
        assert all(p == (3000, 3000) for p in state_positions(tmp_path / "d").values())
        log.grow(200, [Plant(("late.example.com",))])
        r = run_once(log.loglist_path, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 0, r.stderr
        assert [e["names"] for e in certs(read_events(alerts))] == [["late.example.com"]]


def test_unreachable_log_exits_4_and_keeps_state(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        assert run_once(loglist, tmp_path / "d", alerts, watchlist).returncode == 0
        url = log.rfc6962_url
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logs]\nmax_retries = 1\ntimeout = 2\n")
    r = run_once(loglist, tmp_path / "d", alerts, watchlist, "--config", cfg)
    assert r.returncode == 4, r.stderr
    assert "127.0.0.1" in r.stderr
    assert state_positions(tmp_path / "d")[url] == (3000, 3000)


def test_daemon_follows_growth_and_stops_cleanly(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    alerts, cfg = tmp_path / "alerts.jsonl", tmp_path / "config.toml"
    cfg.write_text("[logs]\npoll_interval = 0.5\n")
    with TestLogServer(small_corpus) as log:
        p = spawn(
            "run",
            "--logs",
            log.loglist_path,
            "--data-dir",
            tmp_path / "d",
            "--alerts-jsonl",
            alerts,
            "--watch",
            watchlist,
            "--config",
            cfg,
        )
        try:
            deadline = time.time() + 60
            while len(certs(read_events(alerts))) < len(planted(small_corpus, watched_suffix=WATCHED)):
                assert time.time() < deadline and p.poll() is None
                time.sleep(0.2)
            log.grow(100, [Plant(("daemon.example.com",))])
            while not any(e["names"] == ["daemon.example.com"] for e in certs(read_events(alerts))):
                assert time.time() < deadline and p.poll() is None
                time.sleep(0.2)
            while set(state_positions(tmp_path / "d").values()) != {(3100, 3100)}:
                assert time.time() < deadline and p.poll() is None
                time.sleep(0.2)
        finally:
            p.send_signal(signal.SIGTERM)
            _out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
    assert [e["names"] for e in certs(read_events(alerts))].count(["daemon.example.com"]) == 1


def test_alerts_to_stdout(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    with TestLogServer(small_corpus) as log:
        r = ctwatch(
            "run",
            "--once",
            "--logs",
            log.loglist_path,
            "--data-dir",
            tmp_path / "d",
            "--alerts-jsonl",
            "-",
            "--watch",
            watchlist,
        )
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert_found_exactly_planted(events, small_corpus)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[logs]\nconcurrency = 'many'\n", "concurrency"),
        ("[logs\n", "line 1"),
        ("[nonsense]\n", "unknown section"),
    ],
)
def test_bad_config_is_refused_clearly(tmp_path: Path, watchlist: Path, content: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    r = ctwatch("run", "--once", "--config", cfg, "--watch", watchlist, "--data-dir", tmp_path / "d")
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_bad_watchlist_and_log_list_are_refused_clearly(tmp_path: Path) -> None:
    wl = tmp_path / "wl"
    wl.write_text("good.example\nbad name with spaces\n")
    r = ctwatch("run", "--once", "--watch", wl, "--data-dir", tmp_path / "d")
    assert r.returncode == 2 and "line 2" in r.stderr and "Traceback" not in r.stderr
    ll = tmp_path / "list.json"
    ll.write_text("{not json")
    r = ctwatch("run", "--once", "--logs", ll, "--data-dir", tmp_path / "d")
    assert r.returncode == 2 and "not JSON" in r.stderr


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("bad_checkpoint_signature", "bad_checkpoint"),
        ("root_mismatch", "root_mismatch"),
        ("wrong_leaf_index", "bad_leaf_index"),
        ("issuer_mismatch", "issuer_mismatch"),
    ],
)
def test_static_misbehaviour_from_the_start(
    small_corpus: Path, tmp_path: Path, watchlist: Path, mode: str, kind: str
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus, modes=[f"static:{mode}"]) as log:
        loglist = only_protocol(log.loglist_path, "static", tmp_path / "list.json")
        r = run_once(loglist, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 3, r.stderr
        events = read_events(alerts)
        mis = [e for e in events if e["event"] == "log_misbehaviour"]
        assert [m["kind"] for m in mis] == [kind]
        assert mis[0]["evidence"] and mis[0]["log_url"] == log.static_url
        assert certs(events) == [] or mode == "issuer_mismatch"
        ((_pos, verified),) = state_positions(tmp_path / "d").values()
        assert verified == 0


@pytest.mark.parametrize(("mode", "kind"), [("fork", "inconsistent_tree"), ("shrink", "shrinking_tree")])
def test_static_misbehaviour_after_an_honest_run(
    small_corpus: Path, tmp_path: Path, watchlist: Path, mode: str, kind: str
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    with TestLogServer(small_corpus) as log:
        loglist = only_protocol(log.loglist_path, "static", tmp_path / "list.json")
        assert run_once(loglist, tmp_path / "d", alerts, watchlist).returncode == 0
        honest = certs(read_events(alerts))
        if mode == "fork":
            log.grow(300, [Plant(("after-the-fork.example.com",))])
        log.set_modes(f"static:{mode}")
        r = run_once(loglist, tmp_path / "d", alerts, watchlist)
        assert r.returncode == 3, r.stderr
        events = read_events(alerts)
        assert certs(events) == honest
        assert [m["kind"] for m in events if m["event"] == "log_misbehaviour"] == [kind]
        ((pos, verified),) = state_positions(tmp_path / "d").values()
        assert pos == verified == 3000


def test_sigterm_stops_promptly_while_a_log_is_down(
    small_corpus: Path, tmp_path: Path, watchlist: Path
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logs]\npoll_interval = 0.5\nmax_retries = 8\n")
    with TestLogServer(small_corpus) as log:
        loglist = only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json")
        assert run_once(loglist, tmp_path / "d", tmp_path / "a.jsonl", watchlist).returncode == 0
    # the log is gone: the daemon is now backing off between retries
    p = spawn("run", "--logs", loglist, "--data-dir", tmp_path / "d", "--watch", watchlist, "--config", cfg)
    time.sleep(3)
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - started < 10, "SIGTERM must not wait for a dead log's retries"
    assert p.returncode == 0, err
    assert state_positions(tmp_path / "d") == {loglist_url(loglist): (3000, 3000)}


def loglist_url(path: Path) -> str:
    (op,) = json.loads(path.read_text())["operators"]
    return op["logs"][0]["url"]


def test_log_list_from_a_url_and_states(small_corpus: Path, tmp_path: Path, watchlist: Path) -> None:
    import http.server
    import threading

    with TestLogServer(small_corpus) as log:
        doc = json.loads(only_protocol(log.loglist_path, "rfc6962", tmp_path / "list.json").read_text())
        doc["operators"][0]["logs"][0]["state"] = {"retired": {"timestamp": "2026-01-01T00:00:00Z"}}
        (tmp_path / "retired.json").write_text(json.dumps(doc))
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            r = ctwatch("run", "--once", "--logs", f"{base}/list.json", "--data-dir", tmp_path / "d",
                        "--watch", watchlist)
            assert r.returncode == 0, r.stderr
            assert state_positions(tmp_path / "d") == {log.rfc6962_url: (3000, 3000)}
            # a retired log is followed only with --all-logs
            retired = ("run", "--once", "--logs", f"{base}/retired.json", "--data-dir", tmp_path / "d2")
            r = ctwatch(*retired)
            assert r.returncode == 2 and "--all-logs" in r.stderr
            assert ctwatch(*retired, "--all-logs").returncode == 0
            r = ctwatch("run", "--once", "--logs", f"{base}/missing.json", "--data-dir", tmp_path / "d3")
            assert r.returncode == 2 and "404" in r.stderr and "Traceback" not in r.stderr
        finally:
            server.shutdown()
