"""StaticSource against a loopback static-ct-api log serving the real Navigli2025h2 tiles.

No checkpoint of Navigli2025h2 exists, so the tests sign checkpoints over the real tree heads
with a key of their own; the real Sycamore and Arche checkpoints are checked with their real keys.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ctwatch.checkpoint import Checkpoint, NoteSignature
from ctwatch.cttypes import (
    HASH_SHA256,
    SIG_ECDSA,
    DigitallySigned,
    Reader,
    TimestampedEntry,
    parse_merkle_tree_leaf,
    tree_head_signature_input,
)
from ctwatch.errors import FetchError, LogMisbehaviour
from ctwatch.loglist import STATIC, LogInfo, parse_log_list
from ctwatch.merkle import CompactRange, leaf_hash, root_from_hashes, verify_consistency, verify_inclusion
from ctwatch.sources.base import open_source
from ctwatch.sources.http import HttpClient, HttpLimits, new_session
from ctwatch.sources.static import StaticSource, tile_index_path, tile_path
from ctwatch.verify import note_key_id

STATIC_CT = Path(__file__).parent / "data" / "ctdata" / "static-ct"
NAV = STATIC_CT / "navigli2025h2"
SUBMISSION = "https://navigli2025h2.sunlight.geomys.org/"
ORIGIN = "navigli2025h2.sunlight.geomys.org"
TS = 1746292800000


def _read_files() -> dict[str, bytes]:
    return {p.relative_to(NAV).as_posix(): p.read_bytes()
            for p in NAV.rglob("*") if p.is_file() and "names" not in p.parts and p.name != "log.json"}


FILES = _read_files()
HASHES = [h for n in range(4) for h in (FILES[f"tile/0/00{n}"][i:i + 32] for i in range(0, 8192, 32))]
TILE_ROOTS = [root_from_hashes(HASHES[i:i + 256]) for i in range(0, 1024, 256)]
# An honest log also serves level-1 tiles; these real tiles have none, so they are derived here.
FILES["tile/1/000.p/4"] = b"".join(TILE_ROOTS)
FILES["tile/1/000.p/3"] = b"".join(TILE_ROOTS[:3])
KEY = ec.generate_private_key(ec.SECP256R1())


def mth(n: int) -> bytes:
    return root_from_hashes(HASHES[:n])


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_checkpoint(size: int, key: ec.EllipticCurvePrivateKey = KEY, origin: str = ORIGIN,
                    ts: int = TS) -> bytes:
    """A checkpoint as a static-ct log signs it, plus a witness cosignature we have no key for."""
    root = mth(size)
    sig = key.sign(tree_head_signature_input(ts, size, root), ec.ECDSA(hashes.SHA256()))
    blob = ts.to_bytes(8, "big") + DigitallySigned(HASH_SHA256, SIG_ECDSA, sig).encode()
    log_id = hashlib.sha256(spki(key)).digest()
    lines = NoteSignature(origin, note_key_id(origin, log_id), blob).line()
    lines += NoteSignature("witness.example.org", b"wit!", os.urandom(64)).line()
    return Checkpoint.make_body(origin, size, root) + b"\n" + lines.encode()


class Log:
    """A loopback static-ct-api server: ``files`` maps a path to a body, or (body, headers)."""

    def __init__(self, files: dict[str, bytes | tuple[bytes, dict[str, str]]]) -> None:
        self.files = files
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.requests.append(path)
        item = self.files.get(path)
        if item is None:
            return web.Response(status=404)
        body, headers = item if isinstance(item, tuple) else (item, {})
        return web.Response(body=body, headers=headers)


@asynccontextmanager
async def serve(files: dict, *, info: LogInfo | None = None, limits: HttpLimits | None = None,
                issuer_cache_dir: Path | None = None) -> AsyncIterator[tuple[Log, StaticSource]]:
    """Start ``files`` on 127.0.0.1 and yield it with a StaticSource reading it."""
    log = Log(files)
    app = web.Application()
    app.router.add_get("/{path:.*}", log.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/"
    if info is None:
        key = spki(KEY)
        info = LogInfo("test Navigli2025h2", "test", STATIC, url, key, hashlib.sha256(key).digest(), 60,
                       "usable", submission_url=SUBMISSION)
    else:
        info = dataclasses.replace(info, url=url)
    try:
        async with new_session() as session:
            http = HttpClient(session, limits or HttpLimits(requests_per_second=0, max_retries=0))
            yield log, StaticSource(info, http, issuer_cache_dir)
    finally:
        await runner.cleanup()


def run(coro) -> object:
    return asyncio.run(coro)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


async def read_all(src: StaticSource, start: int, size: int) -> tuple[list[bytes], list[bytes]]:
    leaves: list[bytes] = []
    extras: list[bytes] = []
    while start < size:
        batch = await src.get_entries(start, size, size)
        assert batch.start == start and 0 < len(batch) <= size - start
        leaves += batch.leaf_inputs
        extras += batch.extras
        start = batch.end
    return leaves, extras


def tamper_leaf_index(tile: bytes, entry: int, value: int) -> bytes:
    """Rewrite one entry's 5-byte leaf_index (every Navigli entry is a precert)."""
    r = Reader(tile)
    for _ in range(entry):
        TimestampedEntry.read(r)
        r.vec(3)
        r.vec(2)
    TimestampedEntry.read(r)
    return tile[:r.pos - 5] + value.to_bytes(5, "big") + tile[r.pos:]


def test_the_real_tiles_give_the_real_tree_heads() -> None:
    assert base64.b64encode(mth(1024)).decode() == "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA="
    assert base64.b64encode(mth(778)).decode() == "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U="


def test_tile_paths() -> None:
    assert tile_index_path(1234067) == "x001/x234/067"
    assert tile_index_path(0) == "000"
    assert tile_index_path(999) == "999"
    assert tile_index_path(1000) == "x001/000"
    assert tile_path("data", 3, 10) == "tile/data/003.p/10"
    assert tile_path(2, 1234067) == "tile/2/x001/x234/067"
    with pytest.raises(ValueError):
        tile_path(0, 1, 0)


def test_open_source_builds_a_static_source() -> None:
    async def go() -> None:
        async with serve(dict(FILES)) as (_, src):
            assert isinstance(open_source(src.info, src.http), StaticSource)
            assert src.batch_hint() == 256
    run(go())


def test_reads_every_entry_gzipped_or_not_and_rebuilds_the_root() -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)
    files["tile/data/000"] = (gz(FILES["tile/data/000"]), {"Content-Encoding": "gzip"})
    files["tile/data/001"] = gz(FILES["tile/data/001"])  # gzip without the header
    files["tile/0/002"] = (gz(FILES["tile/0/002"]), {"Content-Encoding": "gzip"})
    files["tile/0/003"] = gz(FILES["tile/0/003"])

    async def go() -> None:
        async with serve(files) as (log, src):
            sth, evidence = await src.get_sth()
            assert (sth.tree_size, sth.timestamp, sth.root_hash) == (1024, TS, mth(1024))
            assert "witness.example.org" in str(evidence["checkpoint"])
            assert evidence["sth"] == sth.to_json()
            leaves, extras = await read_all(src, 0, 1024)
            assert [leaf_hash(x) for x in leaves] == HASHES
            assert all(x[:2] == b"\x00\x00" for x in leaves) and len(extras) == 1024
            cr = CompactRange()
            cr.extend(leaf_hash(x) for x in leaves)
            assert cr.root() == sth.root_hash
            assert (await src.right_edge(sth)).root() == sth.root_hash
            # a range starting mid-tile starts where asked
            batch = await src.get_entries(300, 1024, 1024)
            assert batch.start == 300 and batch.leaf_inputs[0] == leaves[300] and batch.end == 1024
            fetched = [p for p in log.requests if p.startswith("tile/")]
            assert len(fetched) == len(set(fetched))  # nothing fetched twice
            # the gzipped level-0 hash tiles (right_edge of 1024 needs only the level-1 tile)
            at, proof = await src.get_inclusion_proof(HASHES[900], 900, sth)
            verify_inclusion(HASHES[900], at, 1024, proof, sth.root_hash)
            assert {"tile/0/003", "tile/1/000.p/4"} <= set(log.requests)
    run(go())


def test_partial_tiles_growth_and_fallback() -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(778)

    async def go() -> None:
        async with serve(files) as (log, src):
            sth, _ = await src.get_sth()
            assert sth.tree_size == 778 and sth.root_hash == mth(778)
            leaves, _ = await read_all(src, 700, 778)
            assert [leaf_hash(x) for x in leaves] == HASHES[700:778]
            assert (await src.right_edge(sth)).root() == mth(778)
            assert "tile/data/003.p/10" in log.requests and "tile/data/003" not in log.requests
            assert {"tile/0/003.p/10", "tile/1/000.p/3"} <= set(log.requests)
            # the tree has not grown: nothing is fetched again
            seen = len(log.requests)
            await read_all(src, 768, 778)
            assert (await src.right_edge(sth)).root() == mth(778)
            await src.get_inclusion_proof(HASHES[777], 777, sth)
            assert len(log.requests) == seen
            # the tree grows to 1024: the partial is superseded by the full tile
            files["checkpoint"] = sign_checkpoint(1024, ts=TS + 1)
            new, _ = await src.get_sth()
            leaves, _ = await read_all(src, 778, 1024)
            assert [leaf_hash(x) for x in leaves] == HASHES[778:]
            assert "tile/data/003" in log.requests
            proof = await src.get_consistency_proof(778, new)
            verify_consistency(778, 1024, mth(778), new.root_hash, proof)

        # the log deleted its partial tiles once full: the full tiles stand in, cut to size
        for path in ("tile/data/003.p/10", "tile/0/003.p/10"):
            del files[path]
        files["checkpoint"] = sign_checkpoint(778)
        async with serve(files) as (log, src):
            sth, _ = await src.get_sth()
            leaves, _ = await read_all(src, 768, 778)
            assert [leaf_hash(x) for x in leaves] == HASHES[768:778]
            assert (await src.right_edge(sth)).root() == mth(778)
            assert log.requests.index("tile/data/003.p/10") < log.requests.index("tile/data/003")
            assert log.requests.index("tile/0/003.p/10") < log.requests.index("tile/0/003")
    run(go())


@pytest.mark.parametrize("size", [1024, 778])
def test_proofs_from_hash_tiles_verify(size: int) -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(size)

    async def go() -> None:
        async with serve(files) as (_, src):
            sth, _ = await src.get_sth()
            for i in sorted({0, 1, 2, 255, 256, 511, 512, 767, 768, 777, size - 1}):
                at, proof = await src.get_inclusion_proof(HASHES[i], i, sth)
                assert at == i
                verify_inclusion(HASHES[i], i, size, proof, sth.root_hash)
            for old in sorted({1, 2, 3, 255, 256, 257, 500, 512, 777, 778, size}):
                proof = await src.get_consistency_proof(old, sth)
                verify_consistency(old, size, mth(old), sth.root_hash, proof)
    run(go())


def test_issuers_verify_and_are_cached(tmp_path: Path) -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)

    async def go() -> None:
        async with serve(files, issuer_cache_dir=tmp_path / "issuers") as (log, src):
            leaves, extras = await read_all(src, 0, 1024)
            for leaf, extra in zip(leaves, extras, strict=True):
                entry = parse_merkle_tree_leaf(leaf)
                precert, chain = await src.get_chain(entry.entry_type, extra)
                assert precert is not None and x509.load_der_x509_certificate(precert)
                issuer = x509.load_der_x509_certificate(chain[0])
                issuer_spki = issuer.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                assert hashlib.sha256(issuer_spki).digest() == entry.issuer_key_hash
            fetched = [p for p in log.requests if p.startswith("issuer/")]
            assert sorted(fetched) == sorted(p for p in FILES if p.startswith("issuer/"))
            assert {p.name for p in (tmp_path / "issuers").iterdir()} == {p.split("/")[1] for p in fetched}
            for p in fetched:
                assert hashlib.sha256(files[p]).hexdigest() == p.split("/")[1]

        async with serve(files, issuer_cache_dir=tmp_path / "issuers") as (log, src):
            await src.get_chain(parse_merkle_tree_leaf(leaves[0]).entry_type, extras[0])
            assert not [p for p in log.requests if p.startswith("issuer/")]
    run(go())


def test_issuer_with_wrong_content_or_missing() -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)
    names = sorted(p for p in FILES if p.startswith("issuer/"))

    async def go() -> None:
        async with serve(files) as (_, src):
            batch = await src.get_entries(0, 1, 1024)
            entry_type = parse_merkle_tree_leaf(batch.leaf_inputs[0]).entry_type
            _, chain = await src.get_chain(entry_type, batch.extras[0])
        name = "issuer/" + hashlib.sha256(chain[0]).hexdigest()
        files[name] = files[next(n for n in names if n != name)]
        async with serve(files) as (_, src):
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_chain(entry_type, batch.extras[0])
            assert e.value.kind == "issuer_mismatch" and e.value.evidence["fingerprint"] == name[7:]
        del files[name]
        async with serve(files) as (_, src):
            with pytest.raises(FetchError, match="does not serve an issuer"):
                await src.get_chain(entry_type, batch.extras[0])
    run(go())


def test_wrong_leaf_index_is_misbehaviour() -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)
    files["tile/data/001"] = tamper_leaf_index(FILES["tile/data/001"], 5, 7)

    async def go() -> None:
        async with serve(files) as (_, src):
            await src.get_entries(0, 256, 1024)
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_entries(256, 512, 1024)
            assert e.value.kind == "bad_leaf_index"
            assert e.value.evidence["index"] == 261 and e.value.evidence["leaf_index"] == 7
            assert str(e.value.evidence["tile"]).endswith("tile/data/001")
            orjson.dumps(e.value.evidence)
    run(go())


@pytest.mark.parametrize("body", [
    FILES["tile/data/000"][:-1],  # truncated
    FILES["tile/data/000"] + b"\x00",  # trailing bytes
    FILES["tile/data/000"][:8] + b"\x00\x07" + FILES["tile/data/000"][10:],  # unknown entry_type
    b"\x1f\x8b" + os.urandom(200),  # gzip magic, not gzip
    b"",
])
def test_unparsable_data_tile_is_misbehaviour(body: bytes) -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)
    files["tile/data/000"] = body

    async def go() -> None:
        async with serve(files) as (_, src):
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_entries(0, 256, 1024)
            assert e.value.kind == "bad_entries"
            assert str(e.value.evidence["tile"]).endswith("tile/data/000")
            assert e.value.evidence["prefix_hex"] == body[:64].hex()
    run(go())


def test_hostile_sizes_are_refused() -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = sign_checkpoint(1024)
    files["tile/data/000"] = gz(bytes(4 << 20))  # a gzip bomb served without the header
    files["tile/0/000"] = FILES["tile/0/000"][:-32]
    files["tile/0/001"] = gz(FILES["tile/0/001"] + bytes(32))

    async def go() -> None:
        limits = HttpLimits(requests_per_second=0, max_retries=0, max_body=1 << 20)
        async with serve(files, limits=limits) as (_, src):
            sth, _ = await src.get_sth()
            with pytest.raises(FetchError, match="cap"):
                await src.get_entries(0, 1, 1024)
            with pytest.raises(FetchError, match="8160 bytes"):
                await src.get_inclusion_proof(HASHES[0], 0, sth)
            with pytest.raises(FetchError, match="cap"):
                await src.get_inclusion_proof(HASHES[300], 300, sth)
    run(go())


@pytest.mark.parametrize("checkpoint", [
    sign_checkpoint(1024, key=ec.generate_private_key(ec.SECP256R1())),  # another key
    sign_checkpoint(1024).replace(b"\n1024\n", b"\n1023\n"),  # the size is not what was signed
    sign_checkpoint(1024, origin="navigli2025h2.example"),  # not the log's origin
    b"navigli2025h2.sunlight.geomys.org\n1024\n",  # not a signed note
    b"\xff" * 100,
])
def test_bad_checkpoint_is_misbehaviour(checkpoint: bytes) -> None:
    files: dict = dict(FILES)
    files["checkpoint"] = checkpoint

    async def go() -> None:
        async with serve(files) as (_, src):
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_sth()
            assert e.value.kind == "bad_checkpoint"
            assert e.value.evidence["checkpoint"] == checkpoint.decode("utf-8", "replace")
    run(go())


def _real_log(name: str) -> LogInfo:
    obj = orjson.loads((STATIC_CT / name / "log.json").read_bytes())
    doc = {"operators": [{"name": "real", "tiled_logs": [obj]}]}
    (info,) = parse_log_list(orjson.dumps(doc))
    return info


@pytest.mark.parametrize(("name", "size"), [("sycamore2026h1", 804475391), ("arche2026h1", 1822167730)])
def test_real_checkpoints_verify_with_their_log_keys(name: str, size: int) -> None:
    real = (STATIC_CT / name / "checkpoint").read_bytes()
    other = _real_log("arche2026h1" if name == "sycamore2026h1" else "sycamore2026h1")

    async def go() -> None:
        files: dict = {"checkpoint": real}
        async with serve(files, info=_real_log(name)) as (_, src):
            sth, evidence = await src.get_sth()
            assert sth.tree_size == size
            assert evidence["checkpoint"] == real.decode()  # witness lines kept as evidence
            files["checkpoint"] = real.replace(str(size).encode(), str(size + 1).encode())
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_sth()
            assert e.value.kind == "bad_checkpoint"
        async with serve({"checkpoint": real}, info=other) as (_, src):
            with pytest.raises(LogMisbehaviour, match="origin"):
                await src.get_sth()
        wrong_key = dataclasses.replace(_real_log(name), key=other.key, log_id=other.log_id)
        async with serve({"checkpoint": real}, info=wrong_key) as (_, src):
            with pytest.raises(LogMisbehaviour) as e:
                await src.get_sth()
            assert e.value.kind == "bad_checkpoint"
    run(go())


@pytest.fixture(scope="module")
def testlog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ctwatch.testlog import Plant, generate_corpus

    directory = tmp_path_factory.mktemp("testlog")
    generate_corpus(directory, 600, seed=7, plants=[Plant.parse("static.example.com")])
    return directory


def test_reads_the_test_log_end_to_end(testlog_dir: Path) -> None:
    from ctwatch.testlog import AsyncTestLogServer

    async def go() -> None:
        async with AsyncTestLogServer(testlog_dir) as server, new_session() as session:
            assert server.loglist_path is not None
            (info,) = [i for i in parse_log_list(server.loglist_path.read_bytes()) if i.protocol == STATIC]
            src = open_source(info, HttpClient(session, HttpLimits(requests_per_second=0)))
            tree = CompactRange()
            hashes: list[bytes] = []
            old = None
            for grow in (0, 300, 256):  # partial tiles, then their growth into full ones
                if grow:
                    await server.grow(grow)
                sth, _ = await src.get_sth()
                assert sth.tree_size == server.tree_size
                if old is not None:
                    proof = await src.get_consistency_proof(old.tree_size, sth)
                    verify_consistency(old.tree_size, sth.tree_size, old.root_hash, sth.root_hash, proof)
                leaves, extras = await read_all(src, tree.size, sth.tree_size)
                hashes += [leaf_hash(x) for x in leaves]
                tree.extend(hashes[tree.size:])
                assert tree.root() == sth.root_hash
                assert (await src.right_edge(sth)).root() == sth.root_hash
                for i in (0, sth.tree_size // 2, sth.tree_size - 1):
                    at, path = await src.get_inclusion_proof(hashes[i], i, sth)
                    verify_inclusion(hashes[i], at, sth.tree_size, path, sth.root_hash)
                for leaf, extra in zip(leaves, extras, strict=True):
                    entry_type = parse_merkle_tree_leaf(leaf).entry_type
                    precert, chain = await src.get_chain(entry_type, extra)
                    assert chain and (precert is None) == (entry_type == 0)
                old = sth
    run(go())


@pytest.mark.parametrize(("mode", "kind"), [
    ("static:bad_checkpoint_signature", "bad_checkpoint"),
    ("static:wrong_leaf_index", "bad_leaf_index"),
    ("static:issuer_mismatch", "issuer_mismatch"),
])
def test_test_log_misbehaviour_is_detected(testlog_dir: Path, mode: str, kind: str) -> None:
    from ctwatch.testlog import AsyncTestLogServer

    async def go() -> None:
        async with AsyncTestLogServer(testlog_dir) as server, new_session() as session:
            assert server.loglist_path is not None
            (info,) = [i for i in parse_log_list(server.loglist_path.read_bytes()) if i.protocol == STATIC]
            src = open_source(info, HttpClient(session, HttpLimits(requests_per_second=0)))
            await src.get_sth()
            server.set_modes(mode)
            await server.grow(20)
            with pytest.raises(LogMisbehaviour) as e:
                sth, _ = await src.get_sth()
                leaves, extras = await read_all(src, 0, sth.tree_size)
                for leaf, extra in zip(leaves, extras, strict=True):
                    await src.get_chain(parse_merkle_tree_leaf(leaf).entry_type, extra)
            assert e.value.kind == kind
            if kind == "bad_leaf_index":
                assert e.value.evidence["index"] == server.affected_index(mode)
    run(go())
