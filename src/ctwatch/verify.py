"""Signature checks over what logs sign: STHs, checkpoints' RFC 6962 note signatures, SCTs.

Log keys come from log lists as DER SubjectPublicKeyInfo; only SHA-256 with ECDSA (P-256) or RSA
(PKCS#1 v1.5) is accepted, as RFC 6962 requires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from .checkpoint import Checkpoint
from .cttypes import (
    HASH_SHA256,
    SIG_ECDSA,
    SIG_RSA,
    STH,
    DigitallySigned,
    Reader,
    sct_signature_input,
    tree_head_signature_input,
)
from .errors import DecodeError, VerificationError


class LogKey:
    """A log's public key, able to check TLS DigitallySigned structures."""

    def __init__(self, spki_der: bytes) -> None:
        try:
            self._key = load_der_public_key(spki_der)
        except ValueError as e:
            raise VerificationError(f"log key does not load: {e}") from None
        if isinstance(self._key, ec.EllipticCurvePublicKey):
            if not isinstance(self._key.curve, ec.SECP256R1):
                raise VerificationError(f"unsupported log key curve {self._key.curve.name}")
            self.sig_alg = SIG_ECDSA
        elif isinstance(self._key, rsa.RSAPublicKey):
            self.sig_alg = SIG_RSA
        else:
            raise VerificationError(f"unsupported log key type {type(self._key).__name__}")
        self.spki_der = spki_der
        self.log_id = hashlib.sha256(spki_der).digest()

    def verify(self, message: bytes, signed: bytes | DigitallySigned) -> None:
        """Raise VerificationError unless ``signed`` is this key's signature over ``message``."""
        try:
            ds = signed if isinstance(signed, DigitallySigned) else DigitallySigned.decode(signed)
        except DecodeError as e:
            raise VerificationError(f"malformed signature: {e}") from None
        if ds.hash_alg != HASH_SHA256 or ds.sig_alg != self.sig_alg:
            raise VerificationError(
                f"signature algorithm (hash {ds.hash_alg}, sig {ds.sig_alg}) does not match the log key"
            )
        try:
            if isinstance(self._key, ec.EllipticCurvePublicKey):
                self._key.verify(ds.signature, message, ec.ECDSA(hashes.SHA256()))
            else:
                self._key.verify(ds.signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise VerificationError("signature does not verify under the log key") from None


def verify_sth(key: LogKey, sth: STH) -> None:
    """Check an STH's signature over its TreeHeadSignature."""
    key.verify(tree_head_signature_input(sth.timestamp, sth.tree_size, sth.root_hash), sth.signature)


def verify_sct(
    key: LogKey,
    sct_timestamp: int,
    signature: DigitallySigned,
    entry_type: int,
    body: bytes,
    issuer_key_hash: bytes | None,
    extensions: bytes,
) -> None:
    """Check an SCT signature over the entry it promises to log."""
    key.verify(sct_signature_input(sct_timestamp, entry_type, body, issuer_key_hash, extensions), signature)


def note_key_id(key_name: str, log_id: bytes) -> bytes:
    """Key ID of an RFC6962NoteSignature: SHA-256(name ‖ 0x0A ‖ 0x05 ‖ log_id)[:4]."""
    return hashlib.sha256(key_name.encode() + b"\n\x05" + log_id).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature verified, as the STH it is equivalent to."""

    checkpoint: Checkpoint
    sth: STH


def verify_checkpoint(key: LogKey, cp: Checkpoint, origin: str) -> VerifiedCheckpoint:
    """Check the origin and the log's RFC 6962 note signature; other signatures are kept, unchecked.

    The note-signature body is uint64 timestamp ‖ DigitallySigned over the TreeHeadSignature.
    """
    if cp.origin != origin:
        raise VerificationError(f"checkpoint origin {cp.origin!r} is not the log's {origin!r}")
    want = note_key_id(origin, key.log_id)
    mine = [s for s in cp.signatures if s.name == origin and s.key_id == want]
    if not mine:
        raise VerificationError("checkpoint has no RFC 6962 signature from the log's key")
    errors = []
    for s in mine:
        try:
            r = Reader(s.signature)
            ts = r.uint(8)
            ds = DigitallySigned.read(r)
            r.expect_end("RFC6962NoteSignature")
        except DecodeError as e:
            errors.append(str(e))
            continue
        sth = STH(cp.tree_size, ts, cp.root_hash, ds.encode())
        try:
            verify_sth(key, sth)
        except VerificationError as e:
            errors.append(str(e))
            continue
        return VerifiedCheckpoint(cp, sth)
    raise VerificationError("checkpoint signature does not verify: " + "; ".join(errors))
