"""ctwatch against certspotter on one local log, plus the other headline figures of issue 4.

One run: generate (or reuse from ``--cache-dir``, keyed by entries and seed) a reproducible test
log with planted certificates, serve it from a separate ``ctwatch testlog serve`` process, warm
the server's response cache once, then alternate certspotter and ``ctwatch run --once`` over the
RFC 6962 log for ``--rounds`` rounds with the same watchlist, each with fresh state. Per run:
wall time, entries/s, CPU seconds of the process tree, peak RSS, the server's CPU meanwhile, and
whether the tool reported exactly the planted certificates for the watched names. Then
ctwatch's rate on the same entries served as static-ct-api, lookalike names/s with 1,000 brands
(``lookalike_speed.py``) and the index's ``%.domain`` latency (``index_speed.py``).

ctwatch gets a config lifting its politeness limit (20 requests/s by default, which alone caps
it at 5,120 entries/s); certspotter 0.16 has no such limit. ``--profile`` adds one ctwatch run
under py-spy and prints where its time goes.

    python bench/run_bench.py [--entries 1000000] [--rounds 3] [--json-out FILE] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from procstat import Measured, Usage, proc_cpu_seconds, proc_rss_kb
from pyspy_summary import summarise

BENCH = Path(__file__).resolve().parent
PY = sys.executable
CORPUS_VERSION = 1  # bump when the plants below change: the cache key includes it
WATCHLIST = "watched.example\n.watched-domain.test\n.ctwatch-bank.example\n"
PLANTS = (  # (names, issued by the unexpected CA, matched by WATCHLIST)
    ("watched.example", False, True),
    ("a.watched-domain.test,b.watched-domain.test", False, True),
    ("unwatched.example", False, False),
    ("login.ctwatch-bank.example", True, True),
)
TARGETS = {"rate": 5.0, "cpu_per_entry": 0.25, "rss_mb": 100.0}


@dataclass(slots=True)
class Run:
    """One measured run of one tool."""

    tool: str
    protocol: str
    round: int
    usage: Usage
    server_cpu: float
    entries: int
    found: list[str] = field(default_factory=list)  # TBS SHA-256 of each certificate reported
    reports: int = 0  # alerts as the tool counts them (certspotter: per entry; ctwatch: per TBS)
    verified: bool = False

    @property
    def rate(self) -> float:
        """Entries per wall-clock second."""
        return self.entries / self.usage.wall

    @property
    def cpu_us_per_entry(self) -> float:
        """CPU microseconds of the whole process tree per entry."""
        return self.usage.cpu / self.entries * 1e6

    def to_json(self, expected: set[str]) -> dict[str, Any]:
        """Every figure of the run, and whether it found exactly ``expected``."""
        return {
            "tool": self.tool, "protocol": self.protocol, "round": self.round, "entries": self.entries,
            **asdict(self.usage), "cpu": self.usage.cpu, "entries_per_s": self.rate,
            "cpu_us_per_entry": self.cpu_us_per_entry, "server_cpu": self.server_cpu,
            "reports": self.reports, "found_tbs_sha256": sorted(self.found), "verified": self.verified,
            "same_as_planted": set(self.found) == expected,
        }


# --- the test log -------------------------------------------------------------------------------


def corpus(cache: Path, entries: int, seed: int) -> tuple[Path, float | None]:
    """The cached log directory for (entries, seed), generated on first use; generation seconds."""
    directory = cache / f"log-v{CORPUS_VERSION}-n{entries}-s{seed}"
    if (directory / "testlog.json").is_file():
        return directory, None
    tmp = cache / f".{directory.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    argv = [PY, "-m", "ctwatch", "testlog", "generate", "--dir", str(tmp), "--count", str(entries),
            "--seed", str(seed)]
    for names, impostor, _ in PLANTS:
        argv += ["--impostor" if impostor else "--plant", names]
    print(f"generating {entries:,} entries into {directory} ...", flush=True)
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    tmp.rename(directory)
    return directory, time.monotonic() - started


class Server:
    """``ctwatch testlog serve`` in its own process, so its CPU is not the monitor's."""

    def __init__(self, directory: Path, work: Path) -> None:
        self.loglist = work / "loglist.json"
        self.out = work / "server.out"
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "ctwatch", "testlog", "serve", "--dir", str(directory), "--listen", "127.0.0.1:0",
                 "--loglist", str(self.loglist)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while "log list:" not in (text := self.out.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test log server did not start: {text[-2000:]}")
            time.sleep(0.2)
        self.rfc6962_url = re.search(r"RFC 6962 log:\s+(\S+)", text).group(1)
        self.base_url = self.rfc6962_url.rsplit("/", 2)[0]

    def cpu(self) -> float:
        """CPU seconds the server has used so far."""
        return proc_cpu_seconds(self.proc.pid)

    def list_for(self, protocol: str, path: Path) -> Path:
        """Write a copy of the log list naming only the RFC 6962 or only the static-ct log."""
        doc = orjson.loads(self.loglist.read_bytes())
        for op in doc["operators"]:
            op["logs" if protocol == "static" else "tiled_logs"] = []
        path.write_bytes(orjson.dumps(doc))
        return path

    def root_hash(self) -> str:
        """The RFC 6962 log's current root (base64), as certspotter's state records it."""
        import urllib.request

        with urllib.request.urlopen(f"{self.rfc6962_url}ct/v1/get-sth", timeout=30) as resp:
            return orjson.loads(resp.read())["sha256_root_hash"]

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 30 s)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _warm(url: str, size: int, batch: int = 256, parallel: int = 4) -> None:
    """Fetch every entry once and one inclusion proof, so every measured run meets the same server.

    ctwatch asks for inclusion proofs of its hits; the server's first get-proof-by-hash builds its
    leaf-hash index (about 1 s of CPU at 1M entries), which would otherwise land on one run.
    """
    async with aiohttp.ClientSession() as session:
        starts = iter(range(0, size, batch))

        async def worker() -> None:
            for start in starts:
                end = min(size, start + batch) - 1
                async with session.get(f"{url}ct/v1/get-entries?start={start}&end={end}") as resp:
                    resp.raise_for_status()
                    await resp.read()

        await asyncio.gather(*(worker() for _ in range(parallel)))
        async with session.get(f"{url}ct/v1/get-entries?start=0&end=0") as resp:
            leaf = base64.b64decode(orjson.loads(await resp.read())["entries"][0]["leaf_input"])
        leaf_hash = base64.b64encode(hashlib.sha256(b"\x00" + leaf).digest()).decode()
        params = {"hash": leaf_hash, "tree_size": str(size)}
        async with session.get(f"{url}ct/v1/get-proof-by-hash", params=params) as resp:
            resp.raise_for_status()


# --- the two monitors ---------------------------------------------------------------------------


def certspotter_reports(stdout: str) -> list[str]:
    """certspotter's ``-stdout`` → the SHA-256 of each certificate it reported (one per entry)."""
    return re.findall(r"^([0-9a-f]{64}):", stdout, re.MULTILINE)


def run_certspotter(binary: str, loglist: Path, watchlist: Path, work: Path, entries: int, root: str,
                    timeout: float) -> tuple[Usage, list[str], bool]:
    """certspotter until its state says the whole tree is verified; (usage, reported hashes, verified)."""
    state = work / "state"
    env = {**os.environ, "HOME": str(work), "CERTSPOTTER_CONFIG_DIR": str(work / "config")}

    def log_state() -> dict[str, Any] | None:
        files = list(state.glob("logs/*/state.json"))
        try:
            return orjson.loads(files[0].read_bytes()) if files else None
        except orjson.JSONDecodeError:
            return None  # caught mid-write

    def done() -> bool:
        st = log_state()
        return st is not None and st["verified_position"]["size"] == entries

    m = Measured([binary, "-logs", str(loglist), "-watchlist", str(watchlist), "-stdout", "-state_dir",
                  str(state), "-batch_size", "256"], stdout=work / "stdout", stderr=work / "stderr", env=env)
    usage = m.run(done, timeout)
    st = log_state()
    verified = st is not None and st["verified_sth"]["sha256_root_hash"] == root
    return usage, certspotter_reports((work / "stdout").read_text()), verified


def run_ctwatch(loglist: Path, watchlist: Path, config: Path, work: Path, timeout: float,
                wrap: list[str] | None = None) -> tuple[Usage, list[str]]:
    """``ctwatch run --once``; (usage, TBS SHA-256 of each discovered_cert event)."""
    alerts = work / "alerts.jsonl"
    argv = [*(wrap or []), PY, "-m", "ctwatch", "run", "--once", "--config", str(config),
            "--logs", str(loglist), "--watch", str(watchlist), "--data-dir", str(work / "data"),
            "--alerts-jsonl", str(alerts)]
    usage = Measured(argv, stdout=work / "stdout", stderr=work / "stderr").run(timeout=timeout)
    if usage.returncode != 0:
        raise RuntimeError(f"ctwatch exited {usage.returncode}: {(work / 'stderr').read_text()[-2000:]}")
    events = [orjson.loads(line) for line in alerts.read_bytes().splitlines()] if alerts.exists() else []
    return usage, [e["tbs_sha256"] for e in events if e["event"] == "discovered_cert"]


# --- the other figures --------------------------------------------------------------------------


def lookalike_rate(brands: int) -> dict[str, Any]:
    """Names/s of the lookalike detector with ``brands`` brands (``lookalike_speed.py``)."""
    out = subprocess.run([PY, str(BENCH / "lookalike_speed.py"), "--brands", str(brands)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^\s*{brands:,} brands:\s+([\d,]+) names/s", out, re.MULTILINE)
    return {"brands": brands, "names_per_s": int(m.group(1).replace(",", "")) if m else None, "output": out}


def index_latency(names: int, cache: Path) -> dict[str, Any]:
    """``%.domain`` p50/p99 ms at ``names`` identities (``index_speed.py``), or why it was skipped."""
    script = BENCH / "index_speed.py"
    if not script.is_file():
        return {"skipped": f"{script.name} not present"}
    proc = subprocess.run([PY, str(script), "--names", str(names), "--dir", str(cache / f"index-{names}")],
                          capture_output=True, text=True)
    if proc.returncode:
        return {"skipped": f"{script.name} failed: {proc.stderr[-1000:]}"}
    m = re.search(r"^%\.domain\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", proc.stdout, re.MULTILINE)
    if m is None:
        return {"names": names, "p50_ms": None, "output": proc.stdout}
    return {"names": names, "p50_ms": float(m.group(1)), "p99_ms": float(m.group(2)), "output": proc.stdout}


# --- report -------------------------------------------------------------------------------------


def median_of(runs: list[Run], fn: Callable[[Run], float]) -> float:
    """The median of one figure over the rounds: robust to one disturbed round."""
    return statistics.median(fn(r) for r in runs)


def summary(runs: list[Run]) -> dict[str, float]:
    """Medians over the rounds of one tool and protocol."""
    return {
        "wall": median_of(runs, lambda r: r.usage.wall),
        "entries_per_s": median_of(runs, lambda r: r.rate),
        "cpu": median_of(runs, lambda r: r.usage.cpu),
        "cpu_us_per_entry": median_of(runs, lambda r: r.cpu_us_per_entry),
        "max_rss_mb": max(r.usage.max_rss_kb for r in runs) / 1024,
        "peak_tree_rss_mb": max(r.usage.peak_tree_rss_kb for r in runs) / 1024,
        "peak_tree_pss_mb": max(r.usage.peak_tree_pss_kb for r in runs) / 1024,
        "server_cpu": median_of(runs, lambda r: r.server_cpu),
    }


def table(runs: list[Run], expected: set[str]) -> str:
    """One line per run under a header, for the terminal."""
    head = (f"{'tool':<12}{'log':<9}{'round':>5}{'wall s':>9}{'entries/s':>11}{'CPU s':>8}{'µs/entry':>10}"
            f"{'RSS MB':>8}{'tree MB':>9}{'PSS MB':>8}{'server s':>10}  found")
    lines = [head, "-" * len(head)]
    for r in runs:
        ok = "same" if set(r.found) == expected else f"DIFFERENT ({len(set(r.found))})"
        u = r.usage
        lines.append(
            f"{r.tool:<12}{r.protocol:<9}{r.round:>5}{u.wall:>9.2f}{r.rate:>11,.0f}{u.cpu:>8.2f}"
            f"{r.cpu_us_per_entry:>10.1f}{u.max_rss_kb / 1024:>8.1f}{u.peak_tree_rss_kb / 1024:>9.1f}"
            f"{u.peak_tree_pss_kb / 1024:>8.1f}{r.server_cpu:>10.2f}  {ok}, {r.reports} reports"
            f"{'' if r.verified else ', NOT VERIFIED'}")
    return "\n".join(lines)


def measure_monitors(args: argparse.Namespace, directory: Path, expected: set[str],
                     result: dict[str, Any]) -> list[Run]:
    """Serve the log, warm it, and run both monitors in alternation (and ctwatch over static-ct)."""
    manifest = orjson.loads((directory / "manifest.json").read_bytes())["planted"]
    tbs_of = {rec["cert_sha256"]: rec["tbs_sha256"] for rec in manifest}
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="ctwatch-bench-") as tmp:
        work = Path(tmp)
        watchlist = work / "watchlist"
        watchlist.write_text(WATCHLIST)
        config = work / "ctwatch.toml"
        extra = args.ctwatch_config.read_text() if args.ctwatch_config else ""
        config.write_text(f"[logs]\nrequests_per_second = {args.requests_per_second}\n{extra}")
        started = time.monotonic()
        server = Server(directory, work)
        try:
            result["server"] = {"start_seconds": time.monotonic() - started,
                                "rss_mb_loaded": proc_rss_kb(server.proc.pid) / 1024}
            lists = {p: server.list_for(p, work / f"{p}.json") for p in ("rfc6962", "static")}
            cpu0, started = server.cpu(), time.monotonic()
            asyncio.run(_warm(server.rfc6962_url, args.entries))
            result["server"]["warmup"] = {"seconds": time.monotonic() - started,
                                          "server_cpu": server.cpu() - cpu0}
            root = server.root_hash()

            def measure(tool: str, protocol: str, rnd: int) -> None:
                run_dir = Path(tempfile.mkdtemp(prefix=f"{tool}-{protocol}-{rnd}-", dir=work))
                cpu0 = server.cpu()
                if tool == "certspotter":
                    usage, hashes, verified = run_certspotter(args.certspotter, lists["rfc6962"], watchlist,
                                                              run_dir, args.entries, root, args.timeout)
                    found = [tbs_of.get(h, f"unplanted cert {h}") for h in hashes]
                else:
                    usage, found = run_ctwatch(lists[protocol], watchlist, config, run_dir, args.timeout)
                    hashes, verified = found, True  # exit status 0: every head verified, the tree rebuilt
                run = Run(tool, protocol, rnd, usage, server.cpu() - cpu0, args.entries, found, len(hashes),
                          verified)
                runs.append(run)
                print(table([run], expected).splitlines()[-1], flush=True)
                shutil.rmtree(run_dir)

            print(table([], expected), flush=True)
            for rnd in range(1, args.rounds + 1):
                order = ("certspotter", "ctwatch") if rnd % 2 else ("ctwatch", "certspotter")
                for tool in order:
                    measure(tool, "rfc6962", rnd)
            if not args.no_static:
                for rnd in range(1, args.rounds + 1):
                    measure("ctwatch", "static", rnd)
            if args.profile:
                result["profile"] = profile(args.profile, lists["rfc6962"], watchlist, config, work, args)
            result["server"]["rss_mb_end"] = proc_rss_kb(server.proc.pid) / 1024
            result["server"]["rss_mb_peak"] = proc_rss_kb(server.proc.pid, "VmHWM") / 1024
        finally:
            server.stop()
    return runs


def expected_tbs(directory: Path) -> set[str]:
    """TBS SHA-256 of the planted certificates the watchlist matches: what both tools must report."""
    manifest = orjson.loads((directory / "manifest.json").read_bytes())["planted"]
    watched = {n for names, _, w in PLANTS if w for n in names.split(",")}
    return {rec["tbs_sha256"] for rec in manifest if rec["names"][0] in watched}


def main() -> int:
    """Parse arguments, run everything, print the table and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000, help="log size (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating certspotter/ctwatch rounds")
    ap.add_argument("--cache-dir", type=Path, default=Path("/var/tmp/ctwatch-bench"),
                    help="where generated logs and indexes are kept between runs")
    ap.add_argument("--json-out", type=Path, help="write every figure and run here")
    ap.add_argument("--certspotter", default=shutil.which("certspotter") or "/usr/bin/certspotter")
    ap.add_argument("--requests-per-second", type=float, default=1e6,
                    help="ctwatch's per-log request limit (its default is 20)")
    ap.add_argument("--ctwatch-config", type=Path, metavar="TOML",
                    help="a file appended to ctwatch's generated config, e.g. [monitor] index_names = false")
    ap.add_argument("--no-static", action="store_true", help="skip ctwatch over static-ct-api")
    ap.add_argument("--lookalike-brands", type=int, default=1000, help="0 skips the lookalike figure")
    ap.add_argument("--index-names", type=int, default=10_000_000, help="0 skips the index figure")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="also run ctwatch once under py-spy; raw profile and summary go into DIR")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds one run may take")
    args = ap.parse_args()
    command = shlex.join(["python", *sys.argv])
    result: dict[str, Any] = {
        "command": command, "entries": args.entries, "rounds": args.rounds, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_at_start": os.getloadavg()},
        "certspotter": subprocess.run([args.certspotter, "-version"], capture_output=True,
                                      text=True).stdout.strip(),
        "ctwatch_requests_per_second": args.requests_per_second,
        "ctwatch_config_extra": args.ctwatch_config.read_text() if args.ctwatch_config else None,
    }
    directory, gen_seconds = corpus(args.cache_dir, args.entries, args.seed)
    result["corpus"] = {"dir": str(directory), "generated_seconds": gen_seconds,
                        "bytes": (directory / "entries.bin").stat().st_size}
    expected = expected_tbs(directory)
    runs = measure_monitors(args, directory, expected, result)
    groups = {(t, p): [r for r in runs if (r.tool, r.protocol) == (t, p)] for t, p in
              (("certspotter", "rfc6962"), ("ctwatch", "rfc6962"), ("ctwatch", "static"))}
    medians = {f"{t}/{p}": summary(rs) for (t, p), rs in groups.items() if rs}
    cs, ct = medians["certspotter/rfc6962"], medians["ctwatch/rfc6962"]
    ratios = {
        "entries_per_s": ct["entries_per_s"] / cs["entries_per_s"],
        "cpu_per_entry": ct["cpu_us_per_entry"] / cs["cpu_us_per_entry"],
        "max_rss": ct["max_rss_mb"] / cs["max_rss_mb"],
        "peak_tree_rss": ct["peak_tree_rss_mb"] / cs["peak_tree_rss_mb"],
    }
    result.update(runs=[r.to_json(expected) for r in runs], medians=medians, ratios=ratios,
                  table=table(runs, expected), expected_tbs_sha256=sorted(expected),
                  all_same=all(set(r.found) == expected for r in runs))
    if args.lookalike_brands:
        print("lookalike ...", flush=True)
        result["lookalike"] = lookalike_rate(args.lookalike_brands)
    if args.index_names:
        print("index ...", flush=True)
        result["index"] = index_latency(args.index_names, args.cache_dir)
    result["machine"]["loadavg_at_end"] = os.getloadavg()

    print()
    print(report(result))
    if args.json_out:
        args.json_out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if result["all_same"] else 1


def profile(out: Path, loglist: Path, watchlist: Path, config: Path, work: Path,
            args: argparse.Namespace) -> dict[str, Any]:
    """One ctwatch run under ``py-spy record`` (subprocesses too); returns the top functions."""
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "ctwatch.pyspy.txt"
    run_dir = Path(tempfile.mkdtemp(prefix="profile-", dir=work))
    wrap = ["py-spy", "record", "--format", "raw", "--rate", "250", "--subprocesses", "--output", str(raw),
            "--"]
    usage, _ = run_ctwatch(loglist, watchlist, config, run_dir, args.timeout, wrap)
    top = summarise(raw.read_text())
    (out / "summary.txt").write_text(top.text())
    return {"raw": str(raw), "wall_under_profiler": usage.wall, **top.to_json()}


def report(result: dict[str, Any]) -> str:
    """The human summary: medians, ratios against the targets, the other figures, the command."""
    med, ratios = result["medians"], result["ratios"]
    lines = [result["table"], "",
             f"N = {result['entries']:,} entries, {result['rounds']} rounds, "
             f"{result['machine']['cpus']} CPUs; medians (RSS: max over rounds)",
             f"{'':<22}{'entries/s':>11}{'µs CPU/entry':>14}{'RSS MB':>8}{'tree MB':>9}{'PSS MB':>8}"
             f"{'server CPU s':>14}"]
    for key, m in med.items():
        lines.append(f"{key:<22}{m['entries_per_s']:>11,.0f}{m['cpu_us_per_entry']:>14.1f}{m['max_rss_mb']:>8.1f}"
                     f"{m['peak_tree_rss_mb']:>9.1f}{m['peak_tree_pss_mb']:>8.1f}{m['server_cpu']:>14.2f}")
    rss, pss = med["ctwatch/rfc6962"]["peak_tree_rss_mb"], med["ctwatch/rfc6962"]["peak_tree_pss_mb"]
    lines.append(
        f"ctwatch/certspotter: entries/s x{ratios['entries_per_s']:.2f} (target >= {TARGETS['rate']:g}), "
        f"CPU/entry x{ratios['cpu_per_entry']:.2f} (target <= {TARGETS['cpu_per_entry']:g}), "
        f"RSS x{ratios['max_rss']:.2f}; ctwatch tree PSS {pss:.0f} MB, RSS {rss:.0f} MB "
        f"(target <= {TARGETS['rss_mb']:g})")
    lines.append("every run reported exactly the planted watched certificates" if result["all_same"]
                 else "SOME RUNS REPORTED DIFFERENT CERTIFICATES (see the table)")
    la = result.get("lookalike")
    if la:
        lines.append(f"lookalike: {la['names_per_s'] or '?':,} names/s with {la['brands']:,} brands")
    ix = result.get("index")
    if ix:
        if "skipped" in ix:
            lines.append(f"index: skipped ({ix['skipped']})")
        else:
            lines.append(f"index: %.domain p50 {ix['p50_ms']} ms, p99 {ix.get('p99_ms')} ms "
                         f"on {ix['names']:,} names")
    srv = result["server"]
    lines.append(f"server: RSS {srv['rss_mb_peak']:,.0f} MB peak; warm-up {srv['warmup']['seconds']:.1f} s")
    if "profile" in result:
        lines.append(result["profile"]["text"])
    lines.append(f"command: {result['command']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
