"""Compiles ctwatch's per-entry hot path with mypyc; everything else is plain Python.

The compiled modules are the same source files (``ctwatch._compiled.MODULES``), so ctwatch runs
unchanged, only slower, where they are not built: ``CTWATCH_PURE=1`` at install skips the build,
and a compiler that fails leaves the pure modules in place. The SHA-256 of each source compiled
goes into ``ctwatch/data/compiled-sources.json``, so that a build can tell it is stale.
"""

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

MODULES = ["identities", "merkle", "match/watchlist"]  # keep in step with ctwatch._compiled
RECORD = Path("src/ctwatch/data/compiled-sources.json")


def ext_modules() -> list:
    if os.environ.get("CTWATCH_PURE"):
        return []
    from mypyc.build import mypycify

    sources = {m.replace("/", "."): Path(f"src/ctwatch/{m}.py") for m in MODULES}
    record = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in sources.items()}
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    extensions = mypycify(["--ignore-missing-imports", *map(str, sources.values())], opt_level="3")
    for ext in extensions:
        ext.optional = True  # no compiler: install the pure modules rather than fail
    return extensions


setup(ext_modules=ext_modules())
