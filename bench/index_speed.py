"""``%.domain`` lookup latency on a large SQLite index (issue 7: p50 <= 5 ms at 10 M names).

Builds (or reuses) an index of ``--names`` identities through the real ``Index.add`` path — about
three names a certificate, spread over registrable domains the way the test log's corpus spreads
them — then times ``Index.search("%.<domain>")`` for random domains that exist, plus exact and
substring queries for comparison, and prints p50/p99 in milliseconds.

    python bench/index_speed.py --names 10000000 --dir /var/tmp/ctwatch-bench
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from pathlib import Path
from typing import Any

from ctwatch.store.index import SqliteIndex
from ctwatch.testlog.corpus import random_names

BATCH = 5000
LOG = ("https://ct.example.net/bench/", "YmVuY2g=")


def _records(rng: random.Random, start: int, count: int) -> tuple[list[dict[str, Any]], int]:
    out = []
    n_names = 0
    for i in range(start, start + count):
        names = random_names(rng)
        n_names += len(names)
        h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        out.append(
            {
                "log_url": LOG[0],
                "log_id": LOG[1],
                "index": i,
                "timestamp": 1748736000000 + i,
                "entry_type": "precert",
                "names": names,
                "subject": f"CN={names[0]}",
                "issuer": "CN=Bench CA,O=ctwatch",
                "serial": h[:32],
                "not_before": "2025-06-01T00:00:00Z",
                "not_after": "2025-08-30T00:00:00Z",
                "tbs_sha256": h,
                "cert_sha256": None,
                "pubkey_sha256": h,
                "issuer_spki_sha256": "00" * 32,
            }
        )
    return out, n_names


def build(index: SqliteIndex, target: int, seed: int) -> None:
    """Add certificates until the index holds about ``target`` names."""
    have = index._one("SELECT COUNT(*) FROM cert_names")[0]
    done = index._one("SELECT COUNT(*) FROM certs")[0]
    rng = random.Random(f"bench:{seed}:{done}")
    t0 = time.perf_counter()
    while have < target:
        recs, n = _records(rng, done, BATCH)
        index.add(recs)
        have += n
        done += len(recs)
        rate = (have) / max(time.perf_counter() - t0, 1e-9)
        print(f"\r  {have:,} names in {done:,} certificates ({rate:,.0f} names/s)", end="", flush=True)
    print()


def _domains(index: SqliteIndex, rng: random.Random, k: int) -> list[str]:
    """``k`` random registrable domains present in the index (from random dn ids)."""
    (max_id,) = index._one("SELECT MAX(id) FROM dn")
    out: list[str] = []
    while len(out) < k:
        row = index._one("SELECT rev FROM dn WHERE id >= ? ORDER BY id LIMIT 1", (rng.randint(1, max_id),))
        labels = row[0][::-1].split(".")
        out.append(".".join(labels[-2:]))
    return out


def _time(fn: Any, queries: list[str]) -> tuple[float, float, float]:
    lat = []
    hits = 0
    for q in queries:
        t = time.perf_counter()
        hits += len(fn(q))
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))], hits / len(queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=10_000_000, help="identities in the index (default 10 M)")
    ap.add_argument("--queries", type=int, default=1000, help="lookups to time per kind")
    ap.add_argument(
        "--dir", type=Path, default=Path("bench-index"), help="where index.sqlite is built or reused"
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    index = SqliteIndex(args.dir / "index.sqlite")
    t = time.perf_counter()
    build(index, args.names, args.seed)
    n_names = index._one("SELECT COUNT(*) FROM cert_names")[0]
    n_distinct = index._one("SELECT COUNT(*) FROM dn")[0]
    size = (args.dir / "index.sqlite").stat().st_size
    print(
        f"index: {n_names:,} names ({n_distinct:,} distinct), {size / 2**20:,.0f} MiB; built in "
        f"{time.perf_counter() - t:.0f} s"
    )
    rng = random.Random(args.seed)
    domains = _domains(index, rng, args.queries)
    index.search("%." + domains[0])  # warm the connection
    for label, fn, qs in (
        ("%.domain", index.search, ["%." + d for d in domains]),
        ("exact", index.search, domains),
        ("%substring%", index.search, ["%" + d.split(".")[0][:8] + "%" for d in domains]),
    ):
        p50, p99, hits = _time(fn, qs)
        print(f"{label:<12} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({hits:.1f} certificates a query)")
    index.close()


if __name__ == "__main__":
    main()
