"""Chain validation, reported as its own result: does the presented chain lead to a trusted root?

Validation uses ``cryptography``'s X.509 verifier (the Web PKI profile browsers apply) over the
exact certificates the server presented, at an explicit time, against the system trust store or
a ``--ca-file``. It never decides the verdict on its own: a certificate can chain to a trusted
root and still be an impostor, which is what the CT and policy checks are for.
"""

from __future__ import annotations

import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification

from ..errors import ConfigError

MAX_CA_FILE = 16 << 20


@dataclass(frozen=True, slots=True)
class ChainResult:
    """``valid`` with the name checked; ``path`` runs from the leaf to the trusted root when valid."""

    valid: bool
    name: str
    error: str | None
    path: list[x509.Certificate]


def load_der(der: bytes) -> x509.Certificate:
    """Parse a DER certificate; real CAs issued non-positive serials, which cryptography only warns about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def load_pem(data: bytes) -> list[x509.Certificate]:
    """Every certificate of PEM text (as :func:`load_der`, without the warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificates(data)


def read_small_file(path: Path, cap: int, what: str = "") -> bytes:
    """The bytes of a user's file of at most ``cap`` bytes; ConfigError otherwise (``what`` names it)."""
    try:
        if path.stat().st_size > cap:
            raise ConfigError(f"{path}: larger than {cap} bytes")
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what}{path}: {e.strerror or e}") from None


def trust_roots(ca_file: Path | None) -> list[x509.Certificate]:
    """The trust anchors: every certificate of the PEM file ``ca_file``, else the system store."""
    if ca_file is not None:
        data = read_small_file(ca_file, MAX_CA_FILE, "CA file ")
        try:
            return load_pem(data)
        except ValueError as e:
            raise ConfigError(f"{ca_file}: not a PEM certificate bundle ({e})") from None
    ders = ssl.create_default_context().get_ca_certs(binary_form=True)
    if not ders:  # an OpenSSL hashed directory is read lazily, so list it ourselves
        capath = ssl.get_default_verify_paths().capath
        for path in sorted(Path(capath).glob("*")) if capath else []:
            try:
                ders += [c.public_bytes(Encoding.DER) for c in load_pem(path.read_bytes())]
            except (OSError, ValueError):
                continue
    roots = []
    for der in ders:
        try:
            roots.append(load_der(der))
        except ValueError:
            continue  # one odd system root must not disable validation against the others
    if not roots:
        raise ConfigError("the system trust store is empty or unreadable; give --ca-file")
    return roots


def default_name(cert: x509.Certificate) -> str | None:
    """A name the certificate claims, to validate a ``--cert`` chain when no ``--name`` is given.

    A wildcard ``*.example.com`` becomes ``wildcard.example.com``, which it covers.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for dns in san.get_values_for_type(x509.DNSName):
        return "wildcard" + dns[1:] if dns.startswith("*.") else dns
    for ip in san.get_values_for_type(x509.IPAddress):
        return str(ip)
    return None


def _subject(name: str) -> verification.Subject:
    try:
        return verification.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return verification.DNSName(name.rstrip(".").encode("idna").decode("ascii").lower())


def validate_chain(chain: list[bytes], name: str, roots: list[x509.Certificate],
                   now: datetime) -> ChainResult:
    """Validate ``chain`` (leaf first, then untrusted intermediates) for ``name`` at ``now``."""
    try:
        certs = [load_der(der) for der in chain]
    except ValueError as e:
        return ChainResult(False, name, f"a presented certificate does not parse: {e}", [])
    try:
        subject = _subject(name)
    except (UnicodeError, ValueError) as e:
        return ChainResult(False, name, f"{name!r} cannot be checked as a host name: {e}", [])
    try:
        verifier = (verification.PolicyBuilder().store(verification.Store(roots)).time(now)
                    .build_server_verifier(subject))
        path = verifier.verify(certs[0], certs[1:])
    except verification.VerificationError as e:
        return ChainResult(False, name, str(e), [])
    except (ValueError, UnsupportedAlgorithm) as e:  # a certificate field only parsed on use
        return ChainResult(False, name, f"a presented certificate is malformed: {e}", [])
    return ChainResult(True, name, None, list(path))


def find_issuer(leaf: x509.Certificate, candidates: list[x509.Certificate]) -> x509.Certificate | None:
    """The candidate whose key signed ``leaf`` (a server may send intermediates in any order)."""
    for cand in candidates:
        try:
            if cand.subject == leaf.issuer:
                leaf.verify_directly_issued_by(cand)
                return cand
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
    return None
