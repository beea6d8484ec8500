"""The hot path compiled by mypyc (setup.py) is the same program as its pure-Python source.

The install builds ``ctwatch._compiled.MODULES``; here: they are built (a failed build would
silently cost a third of the speed), the pure source gives byte-for-byte the same answers on real,
corpus and mutated entries, and a source edited after its build runs as the source.
"""

from __future__ import annotations

import base64
import importlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import ctwatch
from ctwatch._compiled import MODULES, compiled
from ctwatch.testlog import Store

from .compiled_work import work
from .test_hot_path import REAL

# Runs in a CTWATCH_PURE=1 interpreter: the same work on the same leaves, as JSON.
PURE_SCRIPT = """
import base64, sys, orjson
import ctwatch.identities, ctwatch.merkle, ctwatch.match.watchlist
from ctwatch._compiled import compiled
assert not any(compiled(m) for m in (ctwatch.identities, ctwatch.merkle, ctwatch.match.watchlist))
sys.path.insert(0, sys.argv[2])
from compiled_work import work
leaves = [base64.b64decode(x) for x in orjson.loads(open(sys.argv[1], "rb").read())]
sys.stdout.write(orjson.dumps(work(leaves)).decode())
"""


def leaves(small_corpus: Path) -> list[bytes]:
    corpus = Store.open(small_corpus).leaf_inputs[:300]
    rng = random.Random(7)
    mutated = []
    for leaf in REAL[:30] + corpus[:30]:
        for _ in range(20):
            m = bytearray(leaf)
            m[rng.randrange(15, len(leaf) - 2)] = rng.randrange(256)
            mutated.append(bytes(m))
    return REAL + corpus + mutated


def test_hot_path_is_compiled() -> None:
    if os.environ.get("CTWATCH_PURE"):
        pytest.skip("CTWATCH_PURE=1: running the pure source on purpose")
    for name in MODULES:
        module = importlib.import_module(f"ctwatch.{name}")
        assert compiled(module), f"{module.__file__}: not built (pip install -e . builds it)"


def test_pure_source_gives_the_same_answers(small_corpus: Path, tmp_path: Path) -> None:
    sample = leaves(small_corpus)
    (tmp_path / "leaves.json").write_bytes(orjson.dumps([base64.b64encode(x).decode() for x in sample]))
    out = subprocess.run(
        [sys.executable, "-c", PURE_SCRIPT, str(tmp_path / "leaves.json"), str(Path(__file__).parent)],
        env={**os.environ, "CTWATCH_PURE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = orjson.loads(orjson.dumps(work(sample)))
    assert orjson.loads(out) == expected
    assert sum(1 for x in expected if isinstance(x, list) and x[0] == "error") > 10  # mutations bite


def test_an_edited_source_runs_as_source(tmp_path: Path) -> None:
    """A build runs only with the sources it was made from, whatever the files' times say (an
    installer may write a module's source after its build)."""
    package = Path(ctwatch.__file__).parent
    if not compiled(importlib.import_module("ctwatch.identities")):
        pytest.skip("no build to go stale")
    shutil.copytree(package, tmp_path / "ctwatch")
    for shared in package.parent.glob("*__mypyc*"):  # mypyc's runtime, beside the package
        shutil.copy(shared, tmp_path)
    source = tmp_path / "ctwatch" / "identities.py"
    probe = (
        "import ctwatch.match.watchlist, ctwatch.identities as i, ctwatch.merkle as m\n"
        "print(i.__file__, m.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("CTWATCH_PURE", None)

    def run() -> tuple[list[str], str]:
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
        )
        return done.stdout.split(), done.stderr

    later = max(p.stat().st_mtime for p in source.parent.glob("identities.*")) + 60
    os.utime(source, (later, later))
    (identities, merkle), stderr = run()
    assert not identities.endswith(".py") and not merkle.endswith(".py") and stderr == ""

    source.write_text(source.read_text() + "\n# edited\n")
    (identities, merkle), stderr = run()
    assert identities == str(source)
    assert merkle == str(tmp_path / "ctwatch" / "merkle.py")  # all or none: they import one another
    assert "identities.py: not the source of the compiled build" in stderr
