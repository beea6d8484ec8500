"""certspotter 0.16 (Debian's package) against the local RFC 6962 test log.

An independent monitor must accept the honest log without a single verification error and report
exactly the planted certificates for the watched names; and it must notice the misbehaviour the
test log claims to produce. certspotter is a daemon: the test polls its state directory (or its
error output) until it has got as far as it will, then terminates it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from ctwatch.testlog import Plant, TestLogServer, generate_corpus

COUNT = 3000
WATCHLIST = "watched.example\n.watched-domain.test\n.ctwatch-bank.example\n"
PLANTS = [
    Plant(("watched.example",)),
    Plant(("a.watched-domain.test", "b.watched-domain.test")),
    Plant(("unwatched.example",)),
    Plant(("login.ctwatch-bank.example",), impostor=True),
]
WATCHED = {"watched.example", "a.watched-domain.test", "login.ctwatch-bank.example"}
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def certspotter() -> str:
    path = shutil.which("certspotter")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("certspotter is not installed (CI installs Debian's package)")
        pytest.skip("certspotter is not installed (apt-get install certspotter)")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("csp") / "log"
    generate_corpus(directory, COUNT, seed=11, plants=PLANTS)
    return directory


class Certspotter:
    """One certspotter daemon watching the test log's list, with its own state and config dirs."""

    def __init__(self, binary: str, loglist: Path, workdir: Path) -> None:
        self.state = workdir / "state"
        watchlist = workdir / "watchlist"
        watchlist.write_text(WATCHLIST)
        self.stdout_path, self.stderr_path = workdir / "stdout", workdir / "stderr"
        env = {**os.environ, "HOME": str(workdir), "CERTSPOTTER_CONFIG_DIR": str(workdir / "config")}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [binary, "-logs", str(loglist), "-watchlist", str(watchlist), "-stdout",
                 "-state_dir", str(self.state), "-batch_size", "256"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
            )

    def log_state(self) -> dict | None:
        states = list(self.state.glob("logs/*/state.json"))
        return orjson.loads(states[0].read_bytes()) if states else None

    def wait_for(self, done: callable) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert self.proc.poll() is None, f"certspotter exited: {self.stderr_path.read_text()}"
            assert time.monotonic() < deadline, f"certspotter got stuck: {self.stderr_path.read_text()}"
            time.sleep(0.1)

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return self.stdout_path.read_text(), self.stderr_path.read_text()


@pytest.fixture
def run(certspotter: str, tmp_path: Path):
    started: list[Certspotter] = []

    def start(server: TestLogServer) -> Certspotter:
        cs = Certspotter(certspotter, server.loglist_path, tmp_path)
        started.append(cs)
        return cs

    yield start
    for cs in started:
        if cs.proc.poll() is None:
            cs.stop()


def reports(stdout: str) -> dict[str, int]:
    """certspotter's stdout → {certificate SHA-256: log entry index}."""
    found = {}
    for block in stdout.split("\n\n"):
        head = re.match(r"([0-9a-f]{64}):", block.strip())
        if head:
            entry = re.search(r"Log Entry = (\d+) @", block)
            assert entry, block
            found[head.group(1)] = int(entry.group(1))
    return found


def test_certspotter_accepts_the_log_and_finds_the_planted(corpus: Path, run) -> None:
    with TestLogServer(corpus) as server:
        cs = run(server)
        cs.wait_for(lambda: (st := cs.log_state()) is not None and st["verified_position"]["size"] == COUNT)
        state = cs.log_state()
        stdout, stderr = cs.stop()
        served = server.status()["rfc6962"]["last_served"]
        manifest = server.store.manifest
    assert state["verified_sth"]["sha256_root_hash"] == served["sha256_root_hash"]
    expected = {rec["cert_sha256"]: rec["index"] for rec in manifest if rec["names"][0] in WATCHED}
    assert len(expected) == 6  # three planted pairs are watched, one is not
    assert reports(stdout) == expected
    errors = [line for line in stderr.splitlines()
              if "error" in line.lower() and "context canceled" not in line]  # the SIGTERM's own message
    assert errors == []
    log_dir = next(cs.state.glob("logs/*"))
    assert not any((log_dir / "malformed_entries").iterdir())
    assert not any((cs.state / "healthchecks").iterdir())


def test_certspotter_reports_the_garbage_leaf_as_malformed(corpus: Path, run) -> None:
    with TestLogServer(corpus, modes=["garbage_leaf"]) as server:
        cs = run(server)
        cs.wait_for(lambda: (st := cs.log_state()) is not None and st["verified_position"]["size"] == COUNT)
        stdout, _ = cs.stop()
        index = server.affected_index("garbage_leaf")
    malformed = sorted(p.name for p in next(cs.state.glob("logs/*")).joinpath("malformed_entries").iterdir())
    assert malformed == [f"{index}.json", f"{index}.txt"]  # a malformed entry, and the log still verifies
    assert len(reports(stdout)) == 6


@pytest.mark.parametrize(("mode", "message"), [
    ("root_mismatch", "does not match the entries returned by the log"),
    ("bad_sth_signature", "invalid signature"),
])
def test_certspotter_notices_misbehaviour(corpus: Path, run, mode: str, message: str) -> None:
    with TestLogServer(corpus, modes=[mode]) as server:
        cs = run(server)
        cs.wait_for(lambda: message in cs.stderr_path.read_text())
        cs.stop()
    state = cs.log_state()
    assert state is None or state["verified_position"]["size"] == 0
