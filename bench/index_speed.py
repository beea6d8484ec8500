"""``%.domain`` lookup latency on a large SQLite index (issue 7: p50 <= 5 ms at 10 M names).

Builds (or reuses) an index of ``--names`` identities through the real ``Index.add`` — in
batches of 100,000 certificates, one transaction each, with a large page cache — about 2.6
names a certificate, spread over registrable domains the way the test log's corpus spreads them.
Then it reopens the index as ``ctwatch serve`` would (default page cache) and times
``Index.search`` for ``%.<domain>`` of random domains that exist, plus exact and substring
queries for comparison, and prints p50/p99 in milliseconds and the size on disk.

    python bench/index_speed.py --names 10000000 --dir /var/tmp/ctwatch-bench/index-10m
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

BATCH = 100_000
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


def build(path: Path, target: int, seed: int, cache_mib: int) -> None:
    """Add certificates until the index at ``path`` holds about ``target`` names."""
    index = SqliteIndex(path, cache_mib=cache_mib)
    have = index._one("SELECT COUNT(*) FROM cert_names")[0]
    done = index._one("SELECT COUNT(*) FROM certs")[0]
    rng = random.Random(f"bench:{seed}:{done}")
    t0, start = time.perf_counter(), have
    while have < target:
        recs, n = _records(rng, done, BATCH)
        index.add(recs)
        have += n
        done += len(recs)
        rate = (have - start) / max(time.perf_counter() - t0, 1e-9)
        print(f"\r  {have:,} names in {done:,} certificates ({rate:,.0f} names/s)", end="", flush=True)
    if have > start:
        print()
    index.close()  # the last connection checkpoints the WAL into index.sqlite


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
    ap.add_argument("--cache-mib", type=int, default=2048, help="page cache while building (MiB)")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "index.sqlite"
    t = time.perf_counter()
    build(path, args.names, args.seed, args.cache_mib)
    built = time.perf_counter() - t
    index = SqliteIndex(path)
    n_names = index._one("SELECT COUNT(*) FROM cert_names")[0]
    n_distinct = index._one("SELECT COUNT(*) FROM dn")[0]
    n_certs = index._one("SELECT COUNT(*) FROM certs")[0]
    print(
        f"index: {n_names:,} names ({n_distinct:,} distinct) in {n_certs:,} certificates,"
        f" {path.stat().st_size / 2**20:,.0f} MiB on disk; built (or topped up) in {built:.0f} s"
    )
    rng = random.Random(args.seed)
    domains = _domains(index, rng, args.queries)
    index.search("%." + domains[0])  # warm the connection
    for label, qs in (
        ("%.domain", ["%." + d for d in domains]),
        ("exact", domains),
        ("%substring%", ["%" + d.split(".")[0][:8] + "%" for d in domains]),
    ):
        p50, p99, hits = _time(index.search, qs)
        print(f"{label:<12} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({hits:.1f} certificates a query)")
    index.close()


if __name__ == "__main__":
    main()
