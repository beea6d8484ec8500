"""A local CT log for tests, demos, set-up checks and benchmarks: real certificates, both APIs.

``generate_corpus`` writes a deterministic corpus into a directory; ``TestLogServer`` (blocking,
background thread) and ``AsyncTestLogServer`` (on the caller's loop) serve it as an RFC 6962 log
and a static-ct-api log at once, honestly or with the misbehaviour of :mod:`.modes`.
"""

from .corpus import Plant, generate_corpus, grow_corpus
from .modes import parse_modes
from .server import AsyncTestLogServer, TestLogServer
from .store import Store

__all__ = ["AsyncTestLogServer", "Plant", "Store", "TestLogServer", "generate_corpus", "grow_corpus",
           "parse_modes"]
