"""The verdict of ``ctwatch check``, its reasons and its exit code.

Verdicts, worst first (the first that applies wins; every observation is kept as a reason):

``impostor-suspect`` (exit 12)
    A watched name, and the certificate is neither authorised by the policy nor known to the
    local index, which does hold certificates for these names (so the monitor watches them and
    would have seen this one in CT). Without an index, an unauthorised certificate that is not
    logged either.
``unexpected`` (exit 11)
    A watched name whose policy has rules, and none authorises the certificate, though it is
    logged or known: someone got a certificate the owner did not plan for.
``unlogged`` (exit 10)
    No SCT with a valid signature from a known log, or every log whose SCT is valid has a
    tree head signed after the maximum merge delay (MMD) that does not contain the entry.
``inconclusive`` (exit 14)
    Valid SCTs, but no log proved inclusion yet: a log was unreachable (or ``--offline``), or
    the MMD has not passed.
``ok`` (exit 0)
    Logged (inclusion proven in a verified tree head) and not contradicted by the policy or
    index; with a chain that does not validate, or a server that did not prove it holds the
    key, the exit code is 13 instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..match.policy import PolicyResult
from .index import IndexResult
from .scts import FAILED, INCLUDED, MISSED, NOT_CHECKED, PENDING, UNREACHABLE, SctCheck

OK, UNLOGGED, UNEXPECTED, IMPOSTOR = "ok", "unlogged", "unexpected", "impostor-suspect"
INCONCLUSIVE = "inconclusive"
EXIT_CODES = {OK: 0, UNLOGGED: 10, UNEXPECTED: 11, IMPOSTOR: 12, INCONCLUSIVE: 14}
EXIT_CHAIN_INVALID = 13

LOGGED = "logged"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict, why, and the process exit code."""

    verdict: str
    reasons: list[str]
    exit_code: int


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _log_name(c: SctCheck) -> str:
    return c.log.description if c.log else "an unknown log"


def ct_status(scts: list[SctCheck]) -> tuple[str, list[str]]:
    """(``logged`` | ``unlogged`` | ``inconclusive``, reasons) from the per-SCT results."""
    if not scts:
        return UNLOGGED, ["no SCT: none embedded, none in the TLS extension, none in a stapled OCSP response"]
    valid = [c for c in scts if c.valid]
    reasons = [f"{c.origin} SCT from {_log_name(c)}: {c.error}" for c in scts if not c.valid]
    included = [c for c in valid if c.inclusion == INCLUDED]
    if included:
        return LOGGED, [f"included in {_log_name(c)} at index {c.leaf_index} (tree size {c.tree_size})"
                        for c in included]
    if not valid:
        return UNLOGGED, [*reasons, "no SCT with a valid signature from a known log"]
    for c in valid:
        assert c.sct is not None and c.log is not None
        if c.inclusion == PENDING:
            reasons.append(f"{_log_name(c)} has until {_when(c.sct.timestamp + 1000 * c.log.mmd)} to include "
                           f"it (MMD), and has not yet: {c.inclusion_error}")
        elif c.inclusion == MISSED:
            reasons.append(f"{_log_name(c)} did not include it within its MMD: {c.inclusion_error}")
        elif c.inclusion == UNREACHABLE:
            reasons.append(f"inclusion in {_log_name(c)} unknown ({c.inclusion_error})")
        elif c.inclusion == FAILED:
            reasons.append(f"inclusion in {_log_name(c)} unknown: {c.inclusion_error}")
        elif c.inclusion == NOT_CHECKED:
            reasons.append(f"inclusion in {_log_name(c)} not checked ({c.inclusion_error or 'offline'})")
    if all(c.inclusion == MISSED for c in valid):
        return UNLOGGED, reasons
    return INCONCLUSIVE, reasons


def decide(scts: list[SctCheck], chain_valid: bool, chain_error: str | None, key_proven: bool | None,
           key_error: str | None, policy: PolicyResult, index: IndexResult) -> Verdict:
    """Combine CT, policy, index and chain results into the verdict (see the module docstring)."""
    status, reasons = ct_status(scts)
    watched = policy.watched is not None
    # "Not known" is evidence only if the index watches these names at all.
    known = True if index.known else (False if index.available and index.names_indexed else None)
    if policy.authorised:
        reasons.append(f"authorised by {policy.rule}")
    elif policy.violation:
        reasons.append(f"watched as {policy.watched}, and no rule of the policy authorises this certificate")
    elif watched:
        reasons.append(f"watched as {policy.watched}; the policy has no rules for it")
    if watched:
        if known:
            reasons.append(f"known to the local index ({len(index.sightings)} log sighting(s))")
        elif known is False:
            reasons.append(f"not in the local index, which knows {len(index.others)} other certificate(s) "
                           "for these names")
        else:
            why = index.error or "it holds no certificate for these names"
            reasons.append(f"the local index cannot tell: {why}")
    if not chain_valid:
        reasons.append(f"the chain does not validate: {chain_error}")
    if key_proven is False:
        reasons.append(f"the server did not prove it holds the certificate's key: {key_error}")

    if watched and not policy.authorised and (
            known is False or (known is None and policy.violation and status != LOGGED)):
        verdict = IMPOSTOR
    elif watched and policy.violation:
        verdict = UNEXPECTED
    elif status != LOGGED:
        verdict = status
    else:
        verdict = OK
    code = EXIT_CODES[verdict]
    if verdict == OK and (not chain_valid or key_proven is False):
        code = EXIT_CHAIN_INVALID
    return Verdict(verdict, reasons, code)


def _printable(text: str) -> str:
    """Escape control and format characters: certificates and servers choose much of the text."""
    return "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)


def render_text(r: dict[str, Any]) -> str:
    """The human form of a ``check --json`` object: verdict and reasons first, then the details."""
    cert = r["certificate"]
    names = cert["names"]
    tls = f", {r['tls_version']}" if r["tls_version"] else ""
    lines = [f"{r['target']} (name {r['name'] or '-'}{tls})",
             f"verdict: {r['verdict']} (exit {r['exit_code']})"]
    lines += [f"  - {reason}" for reason in r["reasons"]]
    lines += [
        f"certificate: {cert['subject'] or '(empty subject)'}",
        f"  issuer:    {cert['issuer']}",
        f"  valid:     {cert['not_before']} to {cert['not_after']}",
        f"  names:     {', '.join(names[:8])}" + (" …" if len(names) > 8 else ""),
        f"  tbs_sha256 {cert['tbs_sha256']}",
        "chain: " + ("valid" if r["chain_valid"] else f"INVALID ({r['chain_error']})")
        + ("" if r["key_proven"] is not False else f"; key NOT proven ({r['key_error']})"),
        f"SCTs: {len(r['scts'])}",
    ]
    for s in r["scts"]:
        when = _when(s["timestamp"]) if s["timestamp"] is not None else "?"
        sig = "signature ok" if s["signature_valid"] and not s["error"] else f"INVALID: {s['error']}"
        lines.append(f"  {s['origin']:<13} {s['log'] or s['log_id'] or '?'} | {when} | {sig}")
        if s["signature_valid"] and not s["error"]:
            where = f" at index {s['leaf_index']} of {s['tree_size']}" if s["included"] else ""
            detail = f" ({s['inclusion_error']})" if s["inclusion_error"] else ""
            lines.append(f"  {'':<13} inclusion: {s['inclusion']}{where}{detail}; "
                         f"MMD {'elapsed' if s['mmd_elapsed'] else 'not yet elapsed'}")
    return _printable("\n".join(lines))
