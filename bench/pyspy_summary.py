"""Summarise a ``py-spy record --format raw`` profile: where the samples fall, by function.

Each raw line is ``frame;frame;...;frame COUNT`` (outermost first). Frames are merged by
function, ignoring the line number, so a function's share does not split across its lines.
*Self* is the share of samples in which the function is the innermost frame; *inclusive* the
share in which it is anywhere on the stack (start-up, CLI and event-loop frames left out).

    python bench/pyspy_summary.py PROFILE.txt [--top 20]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r" \((.*?):\d+\)$")
_PROCESS = re.compile(r"^process \d+:")
# Frames on nearly every stack (interpreter start, CLI, event loop): left out of the inclusive list.
_PLUMBING = re.compile(r"\((<frozen runpy>|<frozen importlib\.\w+>|click/core\.py"
                       r"|asyncio/(runners|base_events|events)\.py|ctwatch/(__main__|cli)\.py)\)$")


def function(frame: str) -> str:
    """``scan_batch (ctwatch/scan.py:33)`` → ``scan_batch (ctwatch/scan.py)``."""
    return _LINE.sub(r" (\1)", frame)


@dataclass(slots=True)
class Summary:
    """Sample shares by function."""

    samples: int
    self_share: list[tuple[str, float]]
    inclusive_share: list[tuple[str, float]]
    processes: list[tuple[str, float]]

    def text(self) -> str:
        """A readable listing: processes, then self and inclusive top lists, in percent."""
        out = [f"py-spy: {self.samples:,} samples"]
        for title, rows in (("by process", self.processes), ("self (innermost frame)", self.self_share),
                            ("inclusive", self.inclusive_share)):
            out.append(f"  {title}:")
            out += [f"    {share:5.1f}%  {name}" for name, share in rows]
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        """The shares and the text, for the benchmark's JSON output."""
        return {"samples": self.samples, "self": self.self_share, "inclusive": self.inclusive_share,
                "processes": self.processes, "text": self.text()}


def summarise(raw: str, top: int = 20) -> Summary:
    """Shares of the ``top`` functions by self and inclusive samples, and of each process."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    procs: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if _PROCESS.match(frames[0]):
            procs[frames[0][:100]] += n
            frames = frames[1:]
        names = [function(f) for f in frames if f]
        if not names:
            continue
        own[names[-1]] += n
        for name in set(names):
            if not _PLUMBING.search(name):
                anywhere[name] += n

    def shares(c: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * n / total) for name, n in c.most_common(top)]

    return Summary(total, shares(own), shares(anywhere), shares(procs))


def main() -> int:
    """Print the summary of one raw profile."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    print(summarise(args.profile.read_text(), args.top).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
