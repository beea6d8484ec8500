"""Conformance over the real data in tests/data/ctdata: every STH, proof, vector and checkpoint
verifies, or fails, exactly as its README says."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ctwatch.checkpoint import Checkpoint
from ctwatch.cttypes import STH, parse_extra_data, parse_merkle_tree_leaf
from ctwatch.errors import DecodeError, LogListError, VerificationError
from ctwatch.loglist import LogInfo, parse_log_list, read_bundled, select_logs
from ctwatch.merkle import leaf_hash, verify_consistency, verify_inclusion
from ctwatch.verify import LogKey, verify_checkpoint, verify_sth

from .conftest import CTDATA

RFC = CTDATA / "rfc6962"
MERKLE = CTDATA / "merkle" / "transparency-dev-merkle"


def _b64(s: str | None) -> bytes:
    return base64.b64decode(s) if s else b""


def _key(logdir: Path) -> LogKey:
    return LogKey(base64.b64decode(json.loads((logdir / "log.json").read_text())["key"]))


STH_FILES = sorted(p for p in RFC.glob("*/*sth_*.json") if "consistency" not in p.name)


@pytest.mark.parametrize("path", STH_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_sth_signatures_verify(path: Path) -> None:
    verify_sth(_key(path.parent), STH.from_json(json.loads(path.read_text())))


def test_sth_fails_under_another_logs_key() -> None:
    sth = STH.from_json(json.loads((RFC / "argon2025h1" / "get-sth_1425614114.json").read_text()))
    with pytest.raises(VerificationError):
        verify_sth(_key(RFC / "argon2025h2"), sth)


def test_tampered_sth_fails() -> None:
    raw = json.loads((RFC / "venafi" / "get-sth_1130.json").read_text())  # RSA
    raw["tree_size"] += 1
    with pytest.raises(VerificationError):
        verify_sth(_key(RFC / "venafi"), STH.from_json(raw))


@pytest.mark.parametrize("log", ["argon2025h1", "icarus"])
def test_real_consistency_proofs_verify(log: str) -> None:
    d = RFC / log
    proof_file = next(d.glob("get-sth-consistency_*.json"))
    first, second = (int(x) for x in proof_file.stem.split("_")[1:])
    s1 = STH.from_json(json.loads((d / f"get-sth_{first}.json").read_text()))
    s2 = STH.from_json(json.loads((d / f"get-sth_{second}.json").read_text()))
    proof = [_b64(h) for h in json.loads(proof_file.read_text())["consistency"]]
    verify_consistency(first, second, s1.root_hash, s2.root_hash, proof)
    with pytest.raises(VerificationError):
        verify_consistency(first, second, s1.root_hash, s2.root_hash, proof[:-1])
    with pytest.raises(VerificationError):
        verify_consistency(first, second, s2.root_hash, s1.root_hash, proof)


def test_real_precert_inclusion_proof() -> None:
    d = RFC / "argon2025h2"
    entry = json.loads((d / "get-entries_912557348.json").read_text())["entries"][0]
    proof = json.loads((d / "get-proof-by-hash_912557348_1329315675.json").read_text())
    sth = STH.from_json(json.loads((d / "get-sth_1329315675.json").read_text()))
    leaf = _b64(entry["leaf_input"])
    parsed = parse_merkle_tree_leaf(leaf)
    assert parsed.entry_type == 1 and parsed.timestamp == 1748856933195
    precert, chain = parse_extra_data(parsed.entry_type, _b64(entry["extra_data"]))
    # WR2, GTS Root R1 (cross-signed by GlobalSign) and GlobalSign Root CA
    assert precert is not None and len(chain) == 3
    path = [_b64(h) for h in proof["audit_path"]]
    verify_inclusion(leaf_hash(leaf), proof["leaf_index"], sth.tree_size, path, sth.root_hash)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf_hash(leaf + b"\x00"), proof["leaf_index"], sth.tree_size, path, sth.root_hash)


def test_real_x509_entry_and_proof() -> None:
    d = RFC / "icarus"
    ep = json.loads((d / "get-entry-and-proof_120000000_129721434.json").read_text())
    sth = STH.from_json(json.loads((d / "get-sth_129721434.json").read_text()))
    leaf = _b64(ep["leaf_input"])
    assert parse_merkle_tree_leaf(leaf).entry_type == 0
    _, chain = parse_extra_data(0, _b64(ep["extra_data"]))
    assert len(chain) == 2
    verify_inclusion(
        leaf_hash(leaf), 120000000, sth.tree_size, [_b64(h) for h in ep["audit_path"]], sth.root_hash
    )


def _vectors(kind: str) -> list[Path]:
    return sorted((MERKLE / kind).rglob("*.json"))


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: str(p.relative_to(MERKLE)))
def test_merkle_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (
        _b64(v["leafHash"]),
        v["leafIdx"],
        v["treeSize"],
        [_b64(p) for p in v["proof"] or []],
        _b64(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: str(p.relative_to(MERKLE)))
def test_merkle_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), [_b64(p) for p in v["proof"] or []])
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _static_log(name: str) -> LogInfo:
    data = (
        b'{"operators":[{"name":"x","tiled_logs":['
        + (CTDATA / "static-ct" / name / "log.json").read_bytes()
        + b"]}]}"
    )
    return parse_log_list(data)[0]


@pytest.mark.parametrize(("name", "size"), [("sycamore2026h1", 804475391), ("arche2026h1", 1822167730)])
def test_real_checkpoints_verify(name: str, size: int) -> None:
    info = _static_log(name)
    raw = (CTDATA / "static-ct" / name / "checkpoint").read_bytes()
    vc = verify_checkpoint(LogKey(info.key), Checkpoint.parse(raw), info.origin)
    assert vc.sth.tree_size == size
    # witness cosignatures are kept, not checked
    assert len(vc.checkpoint.signatures) > 1
    tampered = raw.replace(str(size).encode(), str(size + 1).encode(), 1)
    with pytest.raises(VerificationError):
        verify_checkpoint(LogKey(info.key), Checkpoint.parse(tampered), info.origin)
    with pytest.raises(VerificationError):
        verify_checkpoint(LogKey(info.key), Checkpoint.parse(raw), "wrong.example/origin")


@pytest.mark.parametrize(
    "bad", [b"", b"origin\n1\n", b"o\n1\nAAAA\n\n\xe2\x80\x94 k AAAAAAAA\n", b"\xff\xfe"]
)
def test_malformed_checkpoints_are_decode_errors(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        Checkpoint.parse(bad)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (CTDATA / "loglists").glob("*.json") if "schema" not in p.name),
    ids=lambda p: p.name,
)
def test_real_log_lists_parse(path: Path) -> None:
    logs = parse_log_list(path.read_bytes(), path.name)
    assert logs and all(len(x.log_id) == 32 for x in logs)
    assert {x.protocol for x in logs} == {"rfc6962", "static"}


def test_bundled_list_default_selection() -> None:
    logs = parse_log_list(read_bundled("chrome"))
    chosen = select_logs(logs)
    assert chosen and all(x.state in {"usable", "qualified", "readonly"} for x in chosen)
    assert len(select_logs(logs, all_logs=True)) > len(chosen)
    assert any(x.protocol == "static" for x in chosen)


def test_log_list_with_wrong_log_id_is_refused() -> None:
    doc = json.loads(read_bundled("chrome"))
    victim = doc["operators"][0]["logs"][0]
    victim["log_id"] = base64.b64encode(b"\x00" * 32).decode()
    with pytest.raises(LogListError, match="not the SHA-256 of its key"):
        parse_log_list(json.dumps(doc).encode())


def test_log_lines_cannot_be_forged_by_certificate_content() -> None:
    import logging

    from ctwatch.logfmt import OneLineFormatter

    hostile = ("a\r\nERROR forged\x00\u202e",)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "entry %s", hostile, None)
    line = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\u202e" not in line
    assert line == "ERROR entry a\\x0d\\x0aERROR forged\\x00\\u202e"
