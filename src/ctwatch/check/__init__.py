"""``ctwatch check``: is this server who it claims to be?

One handshake collects the chain and every SCT (:mod:`.tls`); the chain is validated on its own
(:mod:`.chain`); each SCT's signature is verified and its log asked for proof of inclusion
(:mod:`.scts`); the certificate is compared with the policy of a watched name and with what the
monitor has seen (:mod:`.index`); :mod:`.verdict` combines it all. ``--cert FILE`` runs the same
checks on a PEM chain instead of a live server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..config import load_config
from ..cttypes import X509_ENTRY, TimestampedEntry, merkle_tree_leaf
from ..entries import CertInfo, cert_info
from ..errors import ConfigError
from ..loglist import LogInfo, parse_log_list
from ..match.policy import INFO, Policy, PolicyResult
from ..match.rules import read_watchlist
from ..match.watchlist import Watchlist
from ..runner import default_data_dir, fetch_log_list
from ..sources.http import HttpLimits, new_session
from .chain import (
    ChainResult,
    default_name,
    find_issuer,
    load_der,
    load_pem,
    read_small_file,
    trust_roots,
    validate_chain,
)
from .index import IndexResult, lookup
from .scts import InclusionChecker, SctCheck, check_signature, collect_scts
from .tls import Presented, fetch_presented, sni_name
from .verdict import Verdict, decide

DEFAULT_PORT = 443
MAX_CERT_FILE = 1 << 20


@dataclass(slots=True)
class CheckOptions:
    """Everything ``ctwatch check`` takes besides its target; ``now`` is fixed in tests."""

    name: str | None = None
    logs: str | None = None
    watch: Path | None = None
    config: Path | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    ca_file: Path | None = None
    timeout: float = 10.0
    offline: bool = False
    contact: str | None = None
    now: dt.datetime | None = None


@dataclass(slots=True)
class CheckReport:
    """Everything a check found; :meth:`to_json` is the ``--json`` output."""

    target: str
    name: str
    presented: Presented | None
    chain_der: list[bytes]
    cert: CertInfo
    chain: ChainResult
    scts: list[SctCheck]
    policy: PolicyResult
    index: IndexResult
    verdict: Verdict

    @property
    def exit_code(self) -> int:
        """The process exit code of the verdict (see :mod:`.verdict`)."""
        return self.verdict.exit_code

    def to_json(self) -> dict[str, object]:
        """One JSON object: ``verdict``, ``reasons``, ``chain_valid``, one entry per SCT, and details."""
        p = self.presented
        c = self.cert
        return {
            "target": self.target,
            "name": self.name,
            "verdict": self.verdict.verdict,
            "exit_code": self.verdict.exit_code,
            "reasons": self.verdict.reasons,
            "chain_valid": self.chain.valid,
            "chain_error": self.chain.error,
            "key_proven": p.key_proven if p else None,
            "key_error": p.key_error if p else None,
            "tls_version": p.version if p else None,
            "certificate": {
                "subject": c.subject,
                "issuer": c.issuer,
                "serial": c.serial,
                "names": c.names,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "tbs_sha256": c.tbs_sha256,
                "cert_sha256": c.cert_sha256,
                "pubkey_sha256": c.pubkey_sha256,
                "issuer_spki_sha256": c.issuer_spki_sha256,
            },
            "chain": [hashlib.sha256(der).hexdigest() for der in self.chain_der],
            "scts": [s.to_json() for s in self.scts],
            "policy": self.policy.to_json(),
            "index": self.index.to_json(),
        }


def parse_target(target: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address → (host, port)."""
    host, port = target, DEFAULT_PORT
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            raise ConfigError(f"bad target {target!r}: missing ']'")
        host, rest = target[1:end], target[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad target {target!r}")
            port = _port(rest[1:], target)
    elif target.count(":") == 1:
        host, text = target.split(":")
        port = _port(text, target)
    elif target.count(":") > 1:
        try:
            ipaddress.IPv6Address(target)
        except ValueError:
            raise ConfigError(
                f"bad target {target!r}: write an IPv6 address with a port as [addr]:port"
            ) from None
    if not host:
        raise ConfigError(f"bad target {target!r}: no host")
    return host, port


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"bad target {target!r}: port must be 1-65535")
    return int(text)


def read_cert_file(path: Path) -> list[bytes]:
    """The certificates of a PEM file (leaf first, then its chain) or of a single DER certificate."""
    data = read_small_file(path, MAX_CERT_FILE)
    try:
        if b"-----BEGIN" in data:
            return [c.public_bytes(Encoding.DER) for c in load_pem(data)]
        load_der(data)
        return [data]
    except ValueError as e:
        raise ConfigError(f"{path}: no certificate in it ({e})") from None


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a check compares against, read before any connection so that bad input fails fast."""

    logs: dict[bytes, LogInfo]  # every log of the list, whatever its state, by log ID
    policy: Policy
    watchlist: Watchlist | None
    roots: list[x509.Certificate]

    @classmethod
    async def load(cls, opts: CheckOptions) -> Inputs:
        """Read the log list (fetched if a URL), the config's policy, the watchlist and the roots."""
        data, where = await fetch_log_list(opts.logs, opts.contact)
        logs: dict[bytes, LogInfo] = {}
        for log in parse_log_list(data, where):
            logs.setdefault(log.log_id, log)  # an SCT from a retired or rejected log is still checkable
        policy = Policy.from_config(load_config(opts.config).raw, str(opts.config or "config"))
        return cls(
            logs, policy, read_watchlist(opts.watch) if opts.watch else None, trust_roots(opts.ca_file)
        )


async def check_server(target: str, opts: CheckOptions) -> CheckReport:
    """Handshake with ``target`` (HOST[:PORT]) and judge what it presents."""
    host, port = parse_target(target)
    name = opts.name or host
    server_name = sni_name(name)
    inputs = await Inputs.load(opts)
    presented = await fetch_presented(host, port, server_name, opts.timeout)
    return await evaluate(f"{host}:{port}", name, presented.chain, presented, inputs, opts)


async def check_file(path: Path, opts: CheckOptions) -> CheckReport:
    """Judge the certificate (and chain) of a PEM or DER file, without any server."""
    chain = read_cert_file(path)
    inputs = await Inputs.load(opts)
    name = opts.name
    if name is None:
        try:
            name = default_name(load_der(chain[0]))
        except ValueError:
            name = None
    return await evaluate(str(path), name or "", chain, None, inputs, opts)


async def evaluate(
    target: str,
    name: str,
    chain_der: list[bytes],
    presented: Presented | None,
    inputs: Inputs,
    opts: CheckOptions,
) -> CheckReport:
    """The checks shared by servers and files, from a chain and what came with it."""
    now = opts.now or dt.datetime.now(dt.UTC)
    now_ms = int(now.timestamp() * 1000)
    chain = validate_chain(chain_der, name, inputs.roots, now)
    issuer_der = _issuer(chain_der, chain, inputs.roots)
    leaf_der = chain_der[0]
    cert = cert_info(
        merkle_tree_leaf(TimestampedEntry(0, X509_ENTRY, leaf_der)), None, [issuer_der] if issuer_der else []
    )
    issuer_key_hash = bytes.fromhex(cert.issuer_spki_sha256) if cert.issuer_spki_sha256 else None

    found = collect_scts(
        leaf_der, presented.sct_list if presented else None, presented.ocsp_response if presented else None
    )
    checks = [check_signature(f, inputs.logs, leaf_der, issuer_key_hash, now_ms) for f in found]
    if opts.offline:
        for c in checks:
            if c.valid:
                c.inclusion_error = "--offline"
    elif any(c.valid for c in checks):
        limits = HttpLimits(timeout=opts.timeout, max_retries=1, max_backoff=1.0)
        async with new_session() as session:
            checker = InclusionChecker(session, limits, opts.contact)
            await checker.check_all(checks, 3 * opts.timeout)

    result = inputs.policy.evaluate(cert.names, cert.issuer_spki_sha256, cert.pubkey_sha256, cert.tbs_sha256)
    if result.watched is None and inputs.watchlist is not None:
        item = inputs.watchlist.match(cert.names)
        if item is not None:
            result = PolicyResult(item, False, None, INFO)
    index = lookup(opts.data_dir, cert.tbs_sha256, cert.cert_sha256 or "", cert.names)
    verdict = decide(
        checks,
        chain.valid,
        chain.error,
        presented.key_proven if presented else None,
        presented.key_error if presented else None,
        result,
        index,
    )
    return CheckReport(target, name, presented, chain_der, cert, chain, checks, result, index, verdict)


def _issuer(chain_der: list[bytes], chain: ChainResult, roots: list[x509.Certificate]) -> bytes | None:
    """The issuer whose key signed the leaf: from the validated path, else found among what we have."""
    if chain.valid and len(chain.path) > 1:
        return chain.path[1].public_bytes(Encoding.DER)
    try:
        leaf = load_der(chain_der[0])
        candidates = [load_der(d) for d in chain_der[1:]]
    except ValueError:
        return None
    found = find_issuer(leaf, candidates + roots)
    return found.public_bytes(Encoding.DER) if found else None


def run_check(target: str | None, cert_file: Path | None, opts: CheckOptions) -> CheckReport:
    """Blocking entry point of the CLI: exactly one of ``target`` and ``cert_file``."""
    if (target is None) == (cert_file is None):
        raise ConfigError("give either HOST[:PORT] or --cert FILE")
    if cert_file is not None:
        return asyncio.run(check_file(cert_file, opts))
    assert target is not None
    return asyncio.run(check_server(target, opts))
