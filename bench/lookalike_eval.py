"""Measure lookalike detection on the real phishing and benign names of ``lookalike-eval``.

Prints recall per labelled technique and overall (a positive counts when it is flagged for the
labelled brand; "named" is the share of those whose finding names the labelled
technique), and the false-alarm rate on benign names, separately for two halves of the
data split by a hash of the registrable domain: tune the detector on the ``tune`` half only and
quote the ``holdout`` half. The data set is read at run time and never copied into the project.

    python bench/lookalike_eval.py [--data PATH] [--threshold X] [--show N]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path

from ctwatch.match.lookalike import Brand, LookalikeDetector

ROOT = Path(__file__).resolve().parent.parent
HALVES = ("tune", "holdout")
# The data set's technique labels, and the detector technique each corresponds to.
TECHNIQUES = {
    "homoglyph": "homoglyph",
    "typo": "typo",
    "tld-swap": "tld_swap",
    "combosquat": "combosquat",
    "brand-in-subdomain": "brand_in_subdomain",
    "other": "brand_in_subdomain",  # the brand split across labels
}


def half(registrable: str) -> str:
    """Which half a name belongs to: whole registrable domains stay together (campaigns)."""
    return HALVES[hashlib.sha1(registrable.encode()).digest()[0] & 1]


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a (gzipped) tab-separated file with a header row."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_brands(data: Path) -> list[Brand]:
    """The watch list: each brand's main domain first, then the domains it is known to own."""
    brands = []
    for row in read_tsv(data / "brands.tsv"):
        official = tuple(d for d in row["official_domains"].split(",") if d)
        brands.append(Brand(name=row["brand"], domains=(row["domain"], *official)))
    return brands


def main() -> int:
    """Run the evaluation and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "lookalike-eval")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--show", type=int, default=0, help="print N misses and false alarms per half")
    args = parser.parse_args()
    if not (args.data / "brands.tsv").exists():
        print(f"no evaluation data at {args.data} (use --data)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    detector = LookalikeDetector(load_brands(args.data), threshold=args.threshold)
    built = time.perf_counter() - started
    positives = read_tsv(args.data / "positives.tsv.gz")
    negatives = read_tsv(args.data / "negatives.tsv.gz")

    total: Counter[tuple[str, str]] = Counter()
    found: Counter[tuple[str, str]] = Counter()
    named: Counter[str] = Counter()  # detected and the labelled technique among the finding's
    misses: dict[str, list[str]] = {h: [] for h in HALVES}
    started = time.perf_counter()
    for row in positives:
        key = (half(row["registrable_domain"]), row["technique"])
        total[key] += 1
        finding = detector.check(row["name"])
        if finding is not None and finding.brand == row["brand"]:
            found[key] += 1
            named[row["technique"]] += TECHNIQUES[row["technique"]] in finding.techniques
        else:
            misses[key[0]].append(
                f"{row['technique']:<19} {row['brand']:<14} {row['name']}"
                + (f"  -> {finding.brand} {finding.score}" if finding else "")
            )
    alarms: Counter[tuple[str, bool]] = Counter()
    benign: Counter[tuple[str, bool]] = Counter()
    alarm_names: dict[str, list[str]] = {h: [] for h in HALVES}
    for row in negatives:
        key = (half(row["registrable_domain"]), row["lookalike_rule_hit"] == "-")
        benign[key] += 1
        finding = detector.check(row["name"])
        if finding is not None:
            alarms[key] += 1
            alarm_names[key[0]].append(
                f"{finding.score:.2f} {','.join(finding.techniques):<28} "
                f"{finding.brand:<12} {row['name']}  [{row['lookalike_rule_hit']}]"
            )
    elapsed = time.perf_counter() - started

    print(
        f"{len(positives):,} positives, {len(negatives):,} negatives, threshold {args.threshold}; "
        f"index built in {built:.2f} s, {(len(positives) + len(negatives)) / elapsed:,.0f} names/s"
    )
    print(f"\nrecall (flagged for the labelled brand)   {'tune':>16} {'holdout':>16} {'all':>16}  named")
    for technique in (*TECHNIQUES, None):
        cells = []
        for halves in (("tune",), ("holdout",), HALVES):
            keys = [(h, t) for h in halves for t in ((technique,) if technique else TECHNIQUES)]
            n, k = sum(total[x] for x in keys), sum(found[x] for x in keys)
            cells.append(f"{k / n:.4f} ({n:>6,})" if n else "-")
        techniques = (technique,) if technique else tuple(TECHNIQUES)
        agree = sum(named[t] for t in techniques) / max(
            1, sum(found[(h, t)] for h in HALVES for t in techniques)
        )
        print(f"  {technique or 'overall':<39} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}  {agree:.4f}")
    print(f"\nfalse alarms on benign names              {'tune':>16} {'holdout':>16} {'all':>16}")
    for label, plain in (("unrelated (no lookalike_rule_hit)", (True,)), ("all benign", (True, False))):
        cells = []
        for halves in (("tune",), ("holdout",), HALVES):
            n = sum(benign[(h, p)] for h in halves for p in plain)
            k = sum(alarms[(h, p)] for h in halves for p in plain)
            cells.append(f"{k / n:.4%} ({k:>4})")
        print(f"  {label:<39} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    if args.show:
        print("\nmisses (tune half):", *misses["tune"][: args.show], sep="\n  ")
        print("\nfalse alarms (tune half):", *sorted(alarm_names["tune"])[: args.show], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
