"""Misbehaviour modes of the test log: each is a way a real log can fail, and each is detectable.

A mode names the log it applies to with a prefix (``rfc6962:fork``, ``static:fork``); without a
prefix it applies to every log that supports it. Modes that need a "before" (``fork``,
``shrink``, ``timestamp_regression``) take as reference the last tree head served before the
mode was set; if none was served yet, the first one is served honestly and becomes the reference.

RFC 6962 log
    ``bad_sth_signature``
        get-sth returns the honest tree head with one signature byte flipped: verify_sth fails.
    ``root_mismatch``
        The STH is validly signed but its root is not the root of the served entries.
    ``fork``
        One entry below the reference size (index ``ref_size // 2``) is replaced by the same
        entry with its timestamp moved 1 ms; the tree, STH, entries and proofs all follow the
        new history, so each is validly signed but no consistency proof links it to the reference.
    ``shrink``
        A validly signed STH for a tree smaller than the reference (``ref_size - max(1, ref_size // 4)``).
    ``timestamp_regression``
        The current tree, validly signed, with a timestamp one hour before the reference's.
    ``bad_consistency``
        get-sth-consistency returns the right number of hashes, each with one bit flipped.
    ``rate_limit_storm``
        About half of all requests are answered 429 with ``Retry-After: 0`` (or ``1``, one in eight).
    ``short_batches``
        get-entries returns a random number (at least one) of the entries asked for.
    ``truncated_bodies``
        About a quarter of responses are cut mid-body: half of them declare the full
        Content-Length and close the connection early, half are syntactically truncated
        (cut JSON or a cut tile) with a matching Content-Length.
    ``garbage_leaf``
        One entry's leaf_input is bytes that do not parse as a MerkleTreeLeaf. The tree and STH are
        honestly computed over it, so the log stays consistent: a monitor must report a malformed
        entry, not misbehaviour. The entry is the first one no served STH covered yet (or the
        middle one if nothing was served), so the log's history never changes.

static-ct-api log
    ``bad_checkpoint_signature``
        The checkpoint's RFC 6962 note signature has one signature byte flipped.
    ``root_mismatch``, ``fork``, ``shrink``
        As for RFC 6962, in the checkpoint, hash tiles and data tiles.
    ``wrong_leaf_index``
        One entry's leaf_index extension is not its position (chosen as for ``garbage_leaf``); the
        tree is honestly computed over it.
    ``issuer_mismatch``
        ``issuer/<fingerprint>`` serves a certificate that does not hash to the fingerprint.
    ``rate_limit_storm``, ``truncated_bodies``
        As for RFC 6962 (truncation cuts checkpoints and tiles, gzip-encoded ones included).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError

RFC6962 = "rfc6962"
STATIC = "static"

RFC6962_MODES = frozenset({
    "bad_sth_signature", "root_mismatch", "fork", "shrink", "timestamp_regression", "bad_consistency",
    "rate_limit_storm", "short_batches", "truncated_bodies", "garbage_leaf",
})
STATIC_MODES = frozenset({
    "bad_checkpoint_signature", "root_mismatch", "fork", "shrink", "wrong_leaf_index", "issuer_mismatch",
    "rate_limit_storm", "truncated_bodies",
})
SUPPORTED = {RFC6962: RFC6962_MODES, STATIC: STATIC_MODES}


def parse_modes(specs: Iterable[str]) -> dict[str, frozenset[str]]:
    """``["fork", "static:issuer_mismatch", "a,b"]`` → the modes of each log.

    Commas separate modes within one spec. An unknown mode, or a prefixed mode the named log does
    not support, is a ConfigError.
    """
    out: dict[str, set[str]] = {RFC6962: set(), STATIC: set()}
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            log, sep, mode = item.partition(":")
            if not sep:
                log, mode = "", item
            targets = [log] if log else [name for name, modes in SUPPORTED.items() if mode in modes]
            if log and log not in SUPPORTED:
                raise ConfigError(f"unknown log {log!r} in misbehaviour {item!r} (use rfc6962: or static:)")
            if not targets or any(mode not in SUPPORTED[t] for t in targets):
                raise ConfigError(f"unknown misbehaviour {item!r}; known: {', '.join(all_modes())} "
                                  "(prefix rfc6962: or static: to pick one log)")
            for t in targets:
                out[t].add(mode)
    return {log: frozenset(modes) for log, modes in out.items()}


def all_modes() -> list[str]:
    """Every mode name, for help and error texts."""
    return sorted(RFC6962_MODES | STATIC_MODES)
