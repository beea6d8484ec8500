"""Names per second of the lookalike detector with 10 and with 1,000 brands.

The same names are checked against both brand lists: if the cost per name grew with the
number of brands, the 1,000-brand rate would be far lower. Brands: the evaluation set's
``brands.txt`` when ``--data`` holds it (read at run time, never copied), topped up with
generated pronounceable brand domains. Names: the evaluation set's real phishing and benign
names when present, otherwise generated ones (words, lookalikes of the brands, random labels).

    python bench/lookalike_speed.py [--data PATH] [--names N] [--brands 10,1000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import sys
import time
from pathlib import Path

from ctwatch.match.lookalike import Brand, LookalikeDetector

ROOT = Path(__file__).resolve().parent.parent
SYLLABLES = (
    "ka", "lo", "mi", "ra", "to", "ve", "zen", "tor", "bex", "qua", "lin", "dor", "sa", "ni", "pex",
    "vo", "ri", "cal", "mon", "tri", "fy", "gle", "bra", "nex", "sol", "vi", "ta", "ly", "xo", "ber",
)  # fmt: skip
SUFFIXES = ("com", "com", "com", "io", "net", "co", "app", "de", "co.uk", "com.br")
WORDS = ("mail", "cdn", "api", "shop", "news", "cloud", "static", "portal", "media", "files", "img", "app")


def generated_brands(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """Pronounceable brand domains (``vetorbex.io``) whose labels are not in ``taken``."""
    out = []
    while len(out) < count:
        label = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4)))
        if label not in taken:
            taken.add(label)
            out.append(f"{label}.{rng.choice(SUFFIXES)}")
    return out


def generated_names(rng: random.Random, brands: list[str], count: int) -> list[str]:
    """Certificate-like names: ordinary hosts, random labels, and lookalikes of the brands."""
    names = []
    for _ in range(count):
        label = brands[rng.randrange(len(brands))].split(".")[0]
        kind = rng.random()
        if kind < 0.1:
            i = rng.randrange(len(label))
            label = label[:i] + label[i + 1 :]  # omission
        elif kind < 0.2:
            label = f"{label}-{rng.choice(('login', 'secure', 'verify'))}"
        elif kind < 0.6:
            label = "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        else:
            label = "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(5, 20))
            )
        names.append(f"{rng.choice(WORDS)}.{label}.{rng.choice(SUFFIXES)}")
    return names


def eval_names(data: Path, count: int, rng: random.Random) -> list[str]:
    """A fixed sample of the evaluation set's phishing and benign names."""
    names = []
    for file in ("positives.tsv.gz", "negatives.tsv.gz"):
        with gzip.open(data / file, "rt", encoding="utf-8", newline="") as handle:
            names += [row["name"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return rng.sample(names, min(count, len(names)))


def main() -> int:
    """Build a detector per brand count and time it on the same names."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "lookalike-eval")
    parser.add_argument("--names", type=int, default=20_000, help="names to check per run")
    parser.add_argument("--brands", default="10,1000", help="comma-separated brand counts")
    args = parser.parse_args()
    counts = [int(c) for c in args.brands.split(",")]
    rng = random.Random(20260101)

    real = (args.data / "brands.txt").is_file()
    domains = (args.data / "brands.txt").read_text().split() if real else []
    domains += generated_brands(rng, max(counts) - len(domains), {d.split(".")[0] for d in domains})
    if real and (args.data / "positives.tsv.gz").is_file():
        names, source = eval_names(args.data, args.names, rng), f"names sampled from {args.data}"
    else:
        names, source = generated_names(rng, domains[: max(counts)], args.names), "generated names"
    print(f"{len(names):,} {source}; brands: {'brands.txt + ' if real else ''}generated domains")

    for count in counts:
        started = time.perf_counter()
        detector = LookalikeDetector([Brand(name=d, domains=(d,)) for d in domains[:count]])
        built = time.perf_counter() - started
        detector.check_names(names[:1000])  # warm the caches
        started = time.perf_counter()
        flagged = sum(detector.check(name) is not None for name in names)
        elapsed = time.perf_counter() - started
        rate, micros = len(names) / elapsed, elapsed / len(names) * 1e6
        print(
            f"{count:>6,} brands: {rate:>9,.0f} names/s ({micros:5.1f} µs/name), {flagged:,} flagged, "
            f"index built in {built:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
