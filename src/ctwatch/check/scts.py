"""SCTs a certificate comes with, checked one by one: signature, then inclusion in the log.

An SCT reaches a client three ways (RFC 6962 §3.3): embedded in the certificate (signed over the
precertificate entry, which is rebuilt here from the certificate: its TBS without the SCT list,
and the hash of the issuer's key), in the ``signed_certificate_timestamp`` TLS extension, or in
a stapled OCSP response (both signed over the certificate itself, an x509 entry).

A valid signature is a log's promise to include the entry within its maximum merge delay (MMD).
The promise is checked against the log: an RFC 6962 log is asked for an inclusion proof by the
entry's leaf hash; a static-ct log's SCT carries the leaf index, and the proof comes from its
tiles. Either proof must lead to the root of a tree head whose signature verified.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from dataclasses import dataclass, field

import aiohttp
from cryptography import x509
from cryptography.x509 import ocsp

from ..cttypes import (
    PRECERT_ENTRY,
    SCT,
    STH,
    X509_ENTRY,
    TimestampedEntry,
    merkle_tree_leaf,
    parse_leaf_index_extension,
    parse_sct_list,
)
from ..entries import tbs_without_sct
from ..errors import DecodeError, FetchError, LogMisbehaviour, VerificationError
from ..identities import read_tlv
from ..loglist import STATIC, LogInfo
from ..merkle import leaf_hash, root_from_inclusion
from ..sources.base import LogSource, open_source
from ..sources.http import HttpClient, HttpLimits
from ..verify import LogKey, verify_sct

EMBEDDED, TLS_EXTENSION, OCSP = "embedded", "tls-extension", "ocsp"
FUTURE_SLACK_MS = 300_000  # clock skew tolerated before an SCT counts as issued in the future

# Inclusion outcomes.
INCLUDED = "included"  # proven in a verified tree head
PENDING = "pending"  # not in the latest tree head, which is not yet past the SCT's MMD
MISSED = "missed"  # not in a tree head the log signed after the MMD: a broken promise
UNREACHABLE = "unreachable"  # the log could not be asked
FAILED = "error"  # the log answered something that proves nothing (bad head or proof)
NOT_CHECKED = "not-checked"  # offline, or the SCT itself is not valid

_SCT_LIST_OID = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x02"  # 1.3.6.1.4.1.11129.2.4.2


@dataclass(frozen=True, slots=True)
class FoundSct:
    """One SCT as delivered, or why a delivered SCT list could not be read."""

    origin: str
    raw: bytes
    error: str | None = None


@dataclass(slots=True)
class SctCheck:
    """What one SCT proves: its log, its signature and the log's inclusion of its entry."""

    origin: str
    raw: bytes
    sct: SCT | None = None
    log: LogInfo | None = None
    signature_valid: bool = False
    error: str | None = None
    entry: TimestampedEntry | None = None
    inclusion: str = NOT_CHECKED
    inclusion_error: str | None = None
    leaf_index: int | None = None
    tree_size: int | None = None
    mmd_elapsed: bool | None = None
    sth: STH | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        """A known log signed this entry (and not in the future)."""
        return self.signature_valid and self.error is None

    def to_json(self) -> dict[str, object]:
        """The per-SCT record of ``check --json``."""
        s, log = self.sct, self.log
        return {
            "origin": self.origin,
            "log_id": base64.b64encode(s.log_id).decode() if s else None,
            "log": log.description if log else None,
            "log_url": log.url if log else None,
            "log_state": log.state if log else None,
            "timestamp": s.timestamp if s else None,
            "signature_valid": self.signature_valid,
            "error": self.error,
            "included": self.inclusion == INCLUDED,
            "inclusion": self.inclusion,
            "inclusion_error": self.inclusion_error,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "mmd": log.mmd if log else None,
            "mmd_elapsed": self.mmd_elapsed,
            "sth": self.sth.to_json() if self.sth else None,
            "sct": self.raw.hex(),
        }


def _split_list(origin: str, data: bytes, where: str) -> list[FoundSct]:
    try:
        return [FoundSct(origin, raw) for raw in parse_sct_list(data)]
    except DecodeError as e:
        return [FoundSct(origin, data, f"malformed SCT list in {where}: {e}")]


def _sct_extension(cert_der: bytes) -> bytes | None:
    """The content of the certificate's SCT-list extension (a DER OCTET STRING), or None."""
    _, pos, end = read_tlv(cert_der, 0, len(cert_der))
    _, pos, end = read_tlv(cert_der, pos, end)  # TBSCertificate
    while pos < end:
        tag, start, stop = read_tlv(cert_der, pos, end)
        pos = stop
        if tag != 0xA3:
            continue
        _, ext, ext_end = read_tlv(cert_der, start, stop)
        while ext < ext_end:
            _, inner, ext_stop = read_tlv(cert_der, ext, ext_end)
            if cert_der.startswith(_SCT_LIST_OID, inner):
                tag, value, value_end = read_tlv(cert_der, inner + len(_SCT_LIST_OID), ext_stop)
                if tag == 0x01:  # the critical flag
                    tag, value, value_end = read_tlv(cert_der, value_end, ext_stop)
                if tag != 0x04:
                    raise DecodeError("SCT-list extension value is not an OCTET STRING")
                return cert_der[value:value_end]
            ext = ext_stop
    return None


def _unwrap_octet_string(der: bytes) -> bytes:
    tag, start, end = read_tlv(der, 0, len(der))
    if tag != 0x04 or end != len(der):
        raise DecodeError("SCT list is not wrapped in one OCTET STRING")
    return der[start:end]


def embedded_scts(cert_der: bytes) -> list[FoundSct]:
    """The SCTs embedded in a certificate (none if it has no SCT-list extension)."""
    try:
        value = _sct_extension(cert_der)
        if value is None:
            return []
        data = _unwrap_octet_string(value)
    except DecodeError as e:
        return [FoundSct(EMBEDDED, b"", f"malformed SCT-list extension: {e}")]
    return _split_list(EMBEDDED, data, "the certificate")


def ocsp_scts(response_der: bytes) -> list[FoundSct]:
    """The SCTs of a stapled OCSP response's single-response extension (RFC 6962 §3.3)."""
    try:
        resp = ocsp.load_der_ocsp_response(response_der)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return []
        ext = resp.single_extensions.get_extension_for_class(x509.SignedCertificateTimestamps)
        data = _unwrap_octet_string(ext.value.public_bytes())
    except x509.ExtensionNotFound:
        return []
    except (ValueError, DecodeError) as e:
        return [FoundSct(OCSP, b"", f"malformed stapled OCSP response or SCT list: {e}")]
    return _split_list(OCSP, data, "the OCSP response")


def collect_scts(leaf_der: bytes, tls_sct_list: bytes | None, ocsp_response: bytes | None) -> list[FoundSct]:
    """Every SCT delivered with a certificate: embedded, TLS extension, stapled OCSP."""
    found = embedded_scts(leaf_der)
    if tls_sct_list is not None:
        found += _split_list(TLS_EXTENSION, tls_sct_list, "the TLS extension")
    if ocsp_response is not None:
        found += ocsp_scts(ocsp_response)
    return found


def check_signature(found: FoundSct, logs: dict[bytes, LogInfo], leaf_der: bytes,
                    issuer_key_hash: bytes | None, now_ms: int) -> SctCheck:
    """Decode one SCT, find its log (any state), and verify its signature over the entry it promises.

    ``issuer_key_hash`` is the SHA-256 of the issuer's SubjectPublicKeyInfo, needed for embedded SCTs.
    """
    check = SctCheck(found.origin, found.raw, error=found.error)
    if found.error is not None:
        return check
    try:
        sct = check.sct = SCT.decode(found.raw)
    except DecodeError as e:
        check.error = f"malformed SCT: {e}"
        return check
    log = check.log = logs.get(sct.log_id)
    if log is None:
        check.error = "the log that signed it is not in the log list"
        return check
    if found.origin == EMBEDDED:
        if issuer_key_hash is None:
            check.error = "the issuer certificate is not available to rebuild the precertificate entry"
            return check
        try:
            body = tbs_without_sct(leaf_der)
        except DecodeError as e:
            check.error = f"cannot rebuild the precertificate entry: {e}"
            return check
        entry = TimestampedEntry(sct.timestamp, PRECERT_ENTRY, body, issuer_key_hash, sct.extensions)
    else:
        entry = TimestampedEntry(sct.timestamp, X509_ENTRY, leaf_der, None, sct.extensions)
    try:
        verify_sct(LogKey(log.key), sct.timestamp, sct.signature, entry.entry_type, entry.body,
                   entry.issuer_key_hash, entry.extensions)
    except VerificationError as e:
        check.error = str(e)
        return check
    check.signature_valid = True
    check.entry = entry
    check.mmd_elapsed = now_ms >= sct.timestamp + 1000 * log.mmd
    if sct.timestamp > now_ms + FUTURE_SLACK_MS:
        check.error = "the SCT is dated in the future"
    return check


class InclusionChecker:
    """Asks logs for proof of the entries valid SCTs promise; one verified tree head per log."""

    def __init__(self, session: aiohttp.ClientSession, limits: HttpLimits,
                 contact: str | None = None) -> None:
        self.session = session
        self.limits = limits
        self.contact = contact
        self._sources: dict[bytes, LogSource] = {}
        self._heads: dict[bytes, asyncio.Future[tuple[STH, dict[str, object]]]] = {}

    async def check_all(self, checks: list[SctCheck], deadline: float) -> None:
        """Fill in the inclusion of every valid SCT, giving up on one after ``deadline`` seconds."""
        await asyncio.gather(*(self._bounded(c, deadline) for c in checks if c.valid))

    async def _bounded(self, check: SctCheck, deadline: float) -> None:
        try:
            async with asyncio.timeout(deadline):
                await self.check(check)
        except TimeoutError:
            check.inclusion, check.inclusion_error = UNREACHABLE, f"no answer within {deadline:g} s"

    def _head(self, log: LogInfo, source: LogSource) -> Awaitable[tuple[STH, dict[str, object]]]:
        fut = self._heads.get(log.log_id)
        if fut is None:
            fut = self._heads[log.log_id] = asyncio.ensure_future(source.get_sth())
        return asyncio.shield(fut)

    async def check(self, check: SctCheck) -> None:
        """Set ``check.inclusion`` (and index, tree size) from the SCT's log."""
        log, sct, entry = check.log, check.sct, check.entry
        assert log is not None and sct is not None and entry is not None
        source = self._sources.get(log.log_id)
        if source is None:
            http = HttpClient(self.session, self.limits, self.contact)
            source = self._sources[log.log_id] = open_source(log, http)
        leaf = leaf_hash(merkle_tree_leaf(entry))
        try:
            sth, _ = await self._head(log, source)
            check.sth, check.tree_size = sth, sth.tree_size
            proof = await self._proof(log, source, leaf, sct, sth)
        except FetchError as e:
            check.inclusion, check.inclusion_error = UNREACHABLE, f"log unreachable: {e}"
            return
        except (LogMisbehaviour, DecodeError) as e:
            check.inclusion, check.inclusion_error = FAILED, f"the log's answer proves nothing: {e}"
            return
        if proof is None:
            covered = sth.timestamp >= sct.timestamp + 1000 * log.mmd
            check.inclusion = MISSED if covered else PENDING
            check.inclusion_error = (
                f"not in the log's tree of size {sth.tree_size}, signed "
                + ("after" if covered else "before") + " the SCT's maximum merge delay ended"
            )
            return
        index, path = proof
        try:
            root = root_from_inclusion(leaf, index, sth.tree_size, path)
        except VerificationError as e:
            root, check.inclusion_error = b"", str(e)
        check.leaf_index = index
        if root == sth.root_hash:
            check.inclusion = INCLUDED
        else:
            check.inclusion = FAILED
            check.inclusion_error = (
                f"the inclusion proof for index {index} does not lead to the signed root "
                f"({check.inclusion_error or 'another entry there, or a bad proof'})"
            )

    @staticmethod
    async def _proof(log: LogInfo, source: LogSource, leaf: bytes, sct: SCT,
                     sth: STH) -> tuple[int, list[bytes]] | None:
        """(index, audit path) of ``leaf`` in ``sth``, or None when the log's tree lacks it."""
        if log.protocol == STATIC:
            index = parse_leaf_index_extension(sct.extensions)
            if index is None:
                raise DecodeError("an SCT from a static-ct log has no leaf_index extension")
            if index >= sth.tree_size:
                return None
            return await source.get_inclusion_proof(leaf, index, sth)
        try:  # get-proof-by-hash finds the leaf by its hash: the index argument is only a label
            return await source.get_inclusion_proof(leaf, 0, sth)
        except FetchError as e:
            if e.status in (400, 404):  # how RFC 6962 logs say "no such leaf in this tree"
                return None
            raise
