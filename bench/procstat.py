"""What one benchmarked process tree costs: wall time, CPU seconds and peak memory, from the kernel.

CPU and ``ru_maxrss`` come from ``os.wait4`` on the child, which folds in every descendant the
child reaped, so worker processes are counted (``ru_maxrss`` is then the largest single process,
not a sum). Because workers run side by side, a sampler thread also sums the memory of the whole
live tree every ``interval`` seconds and keeps the peak of that sum, twice: as RSS, which counts a
page shared by forked processes once per process, and as PSS (``smaps_rollup``), which splits it
between them, so that the PSS sum is the memory the tree really holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(slots=True)
class Usage:
    """Resources one process tree used from start to exit."""

    wall: float  # seconds from start until the work was done (not until the process was reaped)
    user: float
    sys: float
    max_rss_kb: int  # largest single process of the tree (ru_maxrss)
    peak_tree_rss_kb: int  # largest sampled sum over the live tree
    peak_tree_pss_kb: int  # the same for PSS: shared pages counted once in all
    returncode: int

    @property
    def cpu(self) -> float:
        """User plus system seconds of the whole tree."""
        return self.user + self.sys


def proc_cpu_seconds(pid: int) -> float:
    """User plus system seconds a live process (not its children) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15


def proc_rss_kb(pid: int, key: str = "VmRSS") -> int:
    """A memory figure of a live process from /proc/PID/status (VmRSS now, VmHWM its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (threads' child lists included)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue  # gone meanwhile
    return out


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over the live tree."""
    rss = pss = 0
    for p in _tree(pid):
        try:
            rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_KB
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                    break
        except (OSError, IndexError, ValueError):
            continue
    return rss, pss


class Measured:
    """Run ``argv`` and measure it; ``done`` (polled) says when a daemon has finished its work.

    Without ``done`` the run ends when the process exits; with it the process gets SIGTERM once
    ``done()`` is true, and the wall time stops at that moment.
    """

    def __init__(self, argv: Sequence[str], *, stdout: Path, stderr: Path, env: dict[str, str] | None = None,
                 interval: float = 0.1) -> None:
        self.argv = list(argv)
        self.stdout, self.stderr, self.env, self.interval = stdout, stderr, env, interval
        self._peak = self._peak_pss = 0
        self._stop = threading.Event()

    def _sample(self, pid: int) -> None:
        while not self._stop.is_set():
            rss, pss = _tree_memory_kb(pid)
            self._peak, self._peak_pss = max(self._peak, rss), max(self._peak_pss, pss)
            self._stop.wait(self.interval)

    def run(self, done: Callable[[], bool] | None = None, timeout: float = 3600.0) -> Usage:
        """Start, wait (for exit or ``done``), reap; raises TimeoutError past ``timeout`` seconds."""
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env)
        sampler = threading.Thread(target=self._sample, args=(proc.pid,), daemon=True)
        sampler.start()
        finished = done or (lambda: _exited(proc.pid))
        try:
            while not finished():
                if done is not None and _exited(proc.pid):
                    raise RuntimeError(f"{self.argv[0]} exited early: {self.stderr.read_text()[-2000:]}")
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{self.argv[0]} did not finish in {timeout:.0f} s")
                time.sleep(0.02)
            wall = time.monotonic() - started
            if done is not None:
                proc.send_signal(signal.SIGTERM)
            _, status, ru = os.wait4(proc.pid, 0)  # Popen.poll/wait would reap and lose the rusage
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            self._stop.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        return Usage(wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, self._peak, self._peak_pss,
                     proc.returncode)


def _exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
