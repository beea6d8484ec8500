"""The names index's blocks: what the scan writes, backfill reads back exactly; a state database
from before the block format changed is opened with its old blocks dropped, not misread."""

from __future__ import annotations

import sqlite3
from hashlib import sha256
from pathlib import Path

import pytest

from ctwatch.nameblocks import BlockBuilder, read_block
from ctwatch.state import SCHEMA_VERSION, StateDB

TBS_A, TBS_B, ISSUER = sha256(b"a").digest(), sha256(b"b").digest(), sha256(b"issuer").digest()


def test_round_trip() -> None:
    block = BlockBuilder()
    assert block.finish() is None
    block.add(0, 0, ["a.example", "www.a.example"], TBS_A, None)
    block.add(7, 1, ["<img src=x onerror=alert(1)>.example"], TBS_B, ISSUER)
    names, hashes = block.finish() or (b"", b"")
    assert len(hashes) == 96
    assert list(read_block(names, hashes)) == [
        (0, 0, TBS_A, ["a.example", "www.a.example"], None),
        (7, 1, TBS_B, ["<img src=x onerror=alert(1)>.example"], ISSUER),
    ]
    with pytest.raises(ValueError, match="fewer hashes"):
        list(read_block(names, hashes[:-1]))
    with pytest.raises(ValueError, match="more hashes"):
        list(read_block(names, hashes + b"\0"))


def test_rows_must_be_whole() -> None:
    block = BlockBuilder()
    with pytest.raises(ValueError):
        block.add(0, 1, ["a.example"], TBS_A, None)  # a precert without its issuer key hash
    with pytest.raises(ValueError):
        block.add(0, 0, ["a.example"], TBS_A[:31], None)


def test_state_from_before_version_2(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE name_blocks (log_id, start, count, added_at, data BLOB)")
    old.execute("INSERT INTO name_blocks VALUES ('log', 0, 1, 0, x'789c')")
    old.commit()
    old.close()
    state = StateDB(path)
    assert list(state.name_rows()) == []
    block = BlockBuilder()
    block.add(3, 1, ["a.example"], TBS_A, ISSUER)
    state.add_name_blocks("log", [(100, 5, block.finish() or (b"", b""))])
    assert list(state.name_rows()) == [("log", 103, 1, TBS_A.hex(), ["a.example"], ISSUER.hex())]
    assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    state.close()
    reopened = StateDB(path)  # the current version keeps its blocks
    assert len(list(reopened.name_rows())) == 1
    reopened.close()
