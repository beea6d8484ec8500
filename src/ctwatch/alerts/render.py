"""One rendering of an event for people: a one-line summary, plain text and HTML.

Email, the script's ``TEXT_FILENAME`` and chat all show these, so a user reads the same thing
everywhere. Nearly every value comes from a certificate or a log, so each is made inert here,
once: control and invisible format characters (CR, LF, NUL, ESC, bidi overrides, zero-width
spaces) are shown as escapes, long values and long lists are cut, and HTML escapes everything.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

MAX_VALUE = 1024
MAX_SUMMARY = 200
MAX_ITEMS = 100

_HEX64 = re.compile(r"[0-9a-f]{64}")

# Known fields in the order a reader wants them; any other field follows, sorted, under its key.
_LABELS = {
    "event": "Event",
    "severity": "Severity",
    "unexpected": "Unexpected",
    "watch_item": "Watch item",
    "brand": "Brand",
    "score": "Score",
    "techniques": "Technique",
    "explanation": "Explanation",
    "names": "DNS name",
    "ip_addresses": "IP address",
    "subject": "Subject",
    "issuer": "Issuer",
    "serial": "Serial",
    "not_before": "Not before",
    "not_after": "Not after",
    "entry_type": "Entry type",
    "log_url": "Log",
    "log_description": "Log name",
    "index": "Entry index",
    "timestamp": "Logged at",
    "kind": "Kind",
    "message": "Message",
    "error": "Error",
    "evidence": "Evidence",
    "tbs_sha256": "TBS SHA-256",
    "cert_sha256": "Cert SHA-256",
    "pubkey_sha256": "Pubkey SHA-256",
    "issuer_spki_sha256": "Issuer key SHA-256",
    "log_id": "Log ID",
    "time": "Reported at",
    "id": "Event ID",
}
# Shown elsewhere: the PEM is an attachment or a file, Unicode names sit beside their A-labels.
_HIDDEN = frozenset({"pem", "names_unicode"})
_TIMES = frozenset({"not_before", "not_after"})


class _Row(NamedTuple):
    """One ``label = value`` line of a rendering; ``href`` makes the HTML value a link."""

    label: str
    value: str
    href: str | None = None


def clean(value: object, limit: int = MAX_VALUE) -> str:
    """``value`` as one line of inert text, at most about ``limit`` characters.

    Every character Python does not call printable (C0/C1 controls, format characters such as
    bidi overrides, line and paragraph separators, odd spaces) becomes its backslash escape, so
    a hostile name shows exactly what it is and can neither break a line nor hide a character.
    """
    text = value if isinstance(value, str) else _scalar(value)
    total = len(text)
    text = text[:limit]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    if len(text) > limit or total > limit:
        return f"{text[:limit]}…[{total} characters in all]"
    return text


def is_sha256_hex(value: object) -> bool:
    """True for a lowercase hex SHA-256, the only kind of value safe to put in a link or file name."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return str(value)


def event_time(value: object) -> datetime | None:
    """A certificate or event time (RFC 3339 text or Unix seconds) as an aware UTC datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            when = datetime.fromisoformat(value)
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def rfc3339(when: datetime) -> str:
    """``2024-01-31T03:47:26Z``: the form certspotter's ``*_RFC3339`` variables use."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(event: dict[str, object], limit: int = 100) -> list[str]:
    names = event.get("names")
    return [clean(n, limit) for n in names] if isinstance(names, list) else []


def summary(event: dict[str, object]) -> str:
    """One line saying what happened: the email subject, the chat title, ``SUMMARY``.

    Certificates are named by their ASCII (A-label) names, never their Unicode forms, so a
    homoglyph cannot make the subject line read like a harmless name.
    """
    kind = event.get("event")
    names = _names(event)
    first = names[0] + (f" (+{len(names) - 1} more)" if len(names) > 1 else "") if names else "(no names)"
    log_url = clean(event.get("log_url"), 120)
    if kind == "discovered_cert":
        what = "Unexpected certificate" if event.get("unexpected") else "Certificate"
        line = f"{what} for {clean(event.get('watch_item'), 100)}: {first}"
    elif kind == "lookalike":
        line = f"Lookalike of {clean(event.get('brand'), 100)}: {first}"
    elif kind == "malformed_cert":
        line = f"Unparsable entry {clean(event.get('index'), 30)} in {log_url}"
    elif kind == "log_misbehaviour":
        line = f"Log misbehaviour ({clean(event.get('kind'), 40)}) by {log_url}"
    elif kind == "log_stale":
        line = f"Stale log: {log_url}"
    elif kind == "log_unreachable":
        line = f"Log unreachable: {log_url}"
    elif kind == "test":
        line = "Test alert: this sink works"
    else:
        line = f"Event {clean(kind, 40)}"
    return clean(line, MAX_SUMMARY)


def _value_rows(key: str, label: str, value: object, event: dict[str, object]) -> list[_Row]:
    if key == "names" and isinstance(value, list):
        unicode = event.get("names_unicode")
        same = isinstance(unicode, list) and len(unicode) == len(value)
        pairs = zip(value, unicode if same else value, strict=True)
        items = [clean(a) if a == u else f"{clean(a)} ({clean(u)})" for a, u in pairs]
    elif isinstance(value, list):
        items = [clean(v) for v in value]
    elif key in _TIMES and (when := event_time(value)) is not None:
        items = [rfc3339(when)]
    elif key == "timestamp" and isinstance(value, int) and (when := event_time(value / 1000)) is not None:
        items = [when.isoformat(timespec="milliseconds").replace("+00:00", "Z")]
    else:
        items = [clean(value)]
    rows = [_Row(label, item) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        rows.append(_Row(label, f"… and {len(items) - MAX_ITEMS} more"))
    if key == "cert_sha256" and is_sha256_hex(value):
        url = f"https://crt.sh/?sha256={value}"
        rows.append(_Row("crt.sh", url, url))
    return rows


def _rows(event: dict[str, object]) -> list[_Row]:
    """The event's fields as labelled, cleaned rows: known fields first, then the rest."""
    keys = [k for k in _LABELS if k in event]
    keys += sorted(k for k in event if k not in _LABELS and k not in _HIDDEN)
    out: list[_Row] = []
    for key in keys:
        value = event[key]
        if value is not None:
            out += _value_rows(key, _LABELS.get(key) or clean(key, 40), value, event)
    return out


def render_text(event: dict[str, object], *, headline: bool = True) -> str:
    """The event as aligned ``label = value`` lines, after its summary unless ``headline`` is off."""
    table = _rows(event)
    width = max((len(r.label) for r in table), default=0)
    lines = [f"{r.label:>{width}} = {r.value}" for r in table]
    if headline:
        lines[:0] = [summary(event), ""]
    return "\n".join(lines) + "\n"


def render_html(event: dict[str, object]) -> str:
    """The event as a small HTML page; every value is escaped, only crt.sh links are links."""
    esc = html.escape
    cells = []
    for r in _rows(event):
        value = f'<a href="{esc(r.href)}">{esc(r.value)}</a>' if r.href else f"<code>{esc(r.value)}</code>"
        cells.append(
            f'<tr><th style="text-align:right;padding-right:1em">{esc(r.label)}</th><td>{value}</td></tr>'
        )
    title = esc(summary(event))
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body><h2>{title}</h2>\n<table>\n" + "\n".join(cells) + "\n</table></body></html>\n"
    )
