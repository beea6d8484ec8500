"""The events ctwatch emits, as JSON-ready dicts with stable ids (the outbox deduplicates by id).

``discovered_cert`` is keyed by the TBS hash, so a certificate and its precertificate, and the
same certificate in several logs, are one alert; later sightings are attached in the state.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from .loglist import LogInfo


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cert_event(kind: str, log: LogInfo, index: int, info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A certificate event (``discovered_cert``, ``lookalike``) from a CertInfo dict."""
    ev: dict[str, Any] = {
        "event": kind,
        "id": f"{kind}:{info['tbs_sha256']}",
        "time": _now(),
        "log_url": log.url,
        "log_id": log.log_id_b64,
        "index": index,
    }
    ev.update(info)
    ev.update(extra)
    return ev


def malformed_event(log: LogInfo, index: int, error: str, leaf_input: bytes) -> dict[str, Any]:
    """An entry that does not parse: reported, never skipped, never fatal."""
    return {
        "event": "malformed_cert",
        "id": f"malformed_cert:{log.log_id_b64}:{index}",
        "time": _now(),
        "log_url": log.url,
        "log_id": log.log_id_b64,
        "index": index,
        "error": error,
        "leaf_sha256": hashlib.sha256(leaf_input).hexdigest(),
        "leaf_input_prefix": leaf_input[:64].hex(),
    }


def misbehaviour_event(log: LogInfo, kind: str, message: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """A log proven dishonest or broken, with the evidence that proves it."""
    digest = hashlib.sha256(orjson.dumps(evidence, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return {
        "event": "log_misbehaviour",
        "id": f"log_misbehaviour:{log.log_id_b64}:{kind}:{digest}",
        "time": _now(),
        "log_url": log.url,
        "log_id": log.log_id_b64,
        "log_description": log.description,
        "kind": kind,
        "message": message,
        "evidence": evidence,
    }


def health_event(log: LogInfo, kind: str, message: str, key: str, **extra: Any) -> dict[str, Any]:
    """``log_stale`` or ``log_unreachable``: once per stale head or per outage (``key``)."""
    return {
        "event": kind,
        "id": f"{kind}:{log.log_id_b64}:{key}",
        "time": _now(),
        "log_url": log.url,
        "log_id": log.log_id_b64,
        "log_description": log.description,
        "message": message,
        **extra,
    }
