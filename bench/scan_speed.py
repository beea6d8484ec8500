"""CPU per entry of the scan hot path (:func:`ctwatch.scan.scan_entries`), whole and by stage.

One process, no network: get-entries bodies are built the way the test log serves them
(``{"entries": [{"leaf_input": b64, "extra_data": b64}, ...]}``, 256 entries a body) from a
generated test-log corpus, and separately from the real entries in ``tests/data/ctdata`` (the
RFC 6962 get-entries files and the Navigli data tiles). Each figure is the best of ``--rounds``
runs of process CPU time, so other load on the machine inflates it less.

    python bench/scan_speed.py [--entries 20000] [--rounds 5] [--top 25] [--cache-dir DIR]

Reports µs/entry for ``scan_entries`` with and without the names index, then the same work
split into stages (JSON + base64, leaf hash, identities, the TBS hash they add, the general TBS
hash for comparison, watchlist match, index rows), and a cProfile summary of ``scan_entries``
with the index over the corpus (``--top 0``: none).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import functools
import io
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import orjson

from ctwatch.cttypes import PRECERT_ENTRY, Reader, TimestampedEntry, merkle_tree_leaf
from ctwatch.identities import leaf_scan
from ctwatch.match.rules import Rules, build_rules
from ctwatch.nameblocks import BlockBuilder
from ctwatch.scan import leaf_tbs_sha256, scan_entries
from ctwatch.sources.base import RawEntries, decode_entries
from ctwatch.testlog import Plant, Store, generate_corpus

ROOT = Path(__file__).resolve().parent.parent
CTDATA = ROOT / "tests" / "data" / "ctdata"
BODY_ENTRIES = 256
WATCHLIST = "watched.example\n.watched-domain.test\n.ctwatch-bank.example\n"
PLANTS = (
    Plant.parse("watched.example"),
    Plant.parse("a.watched-domain.test,b.watched-domain.test"),
    Plant.parse("unwatched.example"),
    Plant.parse("login.ctwatch-bank.example", impostor=True),
)


def corpus_entries(cache: Path, count: int) -> list[tuple[bytes, bytes]]:
    """(leaf_input, extra_data) of a seed-1 test log of ``count`` entries, generated once into ``cache``."""
    directory = cache / f"scan-n{count}-s1"
    if not directory.exists():
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=cache))
        generate_corpus(tmp, count, seed=1, plants=PLANTS)
        tmp.rename(directory)
    store = Store.open(directory)
    return list(zip(store.leaf_inputs, store.extras, strict=True))


def real_entries() -> list[tuple[bytes, bytes]]:
    """Every real logged entry in tests/data/ctdata: get-entries responses and the Navigli tiles."""
    out = []
    for path in sorted((CTDATA / "rfc6962").glob("*/get-entr*.json")):
        doc = json.loads(path.read_text())
        for e in doc.get("entries", [doc]):
            out.append((base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])))
    for tile in sorted((CTDATA / "static-ct" / "navigli2025h2" / "tile" / "data").glob("00?")):
        r = Reader(tile.read_bytes())
        while not r.done():
            entry = TimestampedEntry.read(r)
            precert = r.vec(3) if entry.entry_type == PRECERT_ENTRY else b""
            r.vec(2)  # issuer fingerprints
            out.append((merkle_tree_leaf(entry), precert))
    return out


def bodies(entries: list[tuple[bytes, bytes]]) -> list[RawEntries]:
    """get-entries bodies of BODY_ENTRIES entries each, as the test log's server writes them."""
    out = []
    b64 = base64.b64encode
    for start in range(0, len(entries), BODY_ENTRIES):
        chunk = entries[start : start + BODY_ENTRIES]
        doc = {"entries": [{"leaf_input": b64(li).decode(), "extra_data": b64(x).decode()}
                           for li, x in chunk]}
        out.append(RawEntries(start, len(chunk), body=orjson.dumps(doc)))
    return out


def best_cpu(fn: Callable[[], object], rounds: int) -> float:
    """The least process CPU time of ``rounds`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def stages(raws: list[RawEntries], rules: Rules, rounds: int) -> dict[str, float]:
    """Seconds per stage of scan_entries' work, each stage timed on its own over all bodies."""
    assert rules.watchlist is not None
    match = rules.watchlist.match
    batches = [decode_entries(r) for r in raws]
    leaves = [li for b in batches for li in b.leaf_inputs]
    scanned = [leaf_scan(li, True) for li in leaves]

    def index_rows() -> None:
        for start in range(0, len(leaves), BODY_ENTRIES):
            block = BlockBuilder()
            for i in range(start, min(start + BODY_ENTRIES, len(leaves))):
                li, (et, names, tbs) = leaves[i], scanned[i]
                block.add(i - start, et, names, tbs or leaf_tbs_sha256(li), li[12:44] if et == 1 else None)
            block.finish()

    names_only = best_cpu(lambda: [leaf_scan(li, False) for li in leaves], rounds)
    with_hash = best_cpu(lambda: [leaf_scan(li, True) for li in leaves], rounds)
    return {
        "JSON + base64 (decode_entries)": best_cpu(lambda: [decode_entries(r) for r in raws], rounds),
        "leaf hash": best_cpu(lambda: [sha256(b"\x00" + li).digest() for li in leaves], rounds),
        "identities (leaf_scan)": names_only,
        "TBS hash (leaf_scan's extra)": with_hash - names_only,
        "  general path (leaf_tbs_sha256)": best_cpu(lambda: [leaf_tbs_sha256(li) for li in leaves], rounds),
        "watchlist match": best_cpu(lambda: [match(s[1]) for s in scanned], rounds),
        "names index block (nameblocks)": best_cpu(index_rows, rounds),
    }


def scan_all(raws: list[RawEntries], rules: Rules, index_names: bool) -> None:
    for r in raws:
        scan_entries(r, rules, index_names)


def report(label: str, raws: list[RawEntries], rules: Rules, rounds: int) -> None:
    n = sum(r.count for r in raws)
    print(f"\n{label}: {n} entries in {len(raws)} bodies")
    for index in (True, False):
        secs = best_cpu(functools.partial(scan_all, raws, rules, index), rounds)
        print(f"  scan_entries, names index {'on ' if index else 'off'}: {secs / n * 1e6:6.2f} µs/entry")
    for name, secs in stages(raws, rules, rounds).items():
        print(f"    {name:32s} {secs / n * 1e6:6.2f} µs/entry")


def profile(raws: list[RawEntries], rules: Rules, top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    scan_all(raws, rules, True)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print("\ncProfile of scan_entries (names index on), by own time:")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=20_000, help="test-log corpus size")
    ap.add_argument("--rounds", type=int, default=5, help="runs per figure; the least CPU counts")
    ap.add_argument("--top", type=int, default=25, help="functions in the cProfile summary")
    ap.add_argument("--cache-dir", type=Path, default=Path("/var/tmp/ctwatch-bench"))
    args = ap.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        watch = Path(tmp) / "watchlist"
        watch.write_text(WATCHLIST)
        rules = build_rules(None, watch)
    corpus = bodies(corpus_entries(args.cache_dir, args.entries))
    report("test-log corpus", corpus, rules, args.rounds)
    report("real entries (tests/data/ctdata)", bodies(real_entries()), rules, args.rounds)
    if args.top > 0:
        profile(corpus, rules, args.top)


if __name__ == "__main__":
    main()
