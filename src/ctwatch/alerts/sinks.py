"""Builds the configured sinks from the config's ``[alerts]`` table and the CLI shortcuts.

Config schema (each kind may be one table or an array of tables)::

    [[alerts.webhook]]
    url = "https://hooks.example.com/ctwatch"
    secret = "shared HMAC key"            # optional: adds X-Ctwatch-Signature
    timeout = 10                          # seconds per attempt
    attempts = 4

    [alerts.email]                        # one message per table, to all of "to"
    to = ["ops@example.com"]
    smtp_host = "smtp.example.com"        # every smtp_* key falls back to CTWATCH_SMTP_*
    smtp_port = 587                       # default by security: 25, 587, 465
    smtp_security = "starttls"            # plain | starttls | tls
    smtp_user = "ctwatch"
    smtp_password = "..."
    smtp_from = "ctwatch@example.com"
    smtp_timeout = 30
    smtp_cafile = "/etc/ctwatch/relay-ca.pem"

    [[alerts.script]]
    path = "/usr/local/bin/ct-hook"
    timeout = 60

    [[alerts.apprise]]
    url = "slack://T000/B000/XXXX/#security"

CLI shortcuts add sinks with defaults: ``--webhook URL``, ``--email ADDR`` (one message to all
of them, SMTP settings from the first ``[alerts.email]`` table, then the environment),
``--script PATH``, ``--apprise URL``. Two sinks with the same name are one sink, so an address
given in both places is mailed once. Other keys of ``[alerts]`` belong to other sinks and are
left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from .base import Sink
from .mail import EmailSink, SmtpSettings
from .script import ScriptSink
from .webhook import WebhookSink

_SMTP_KEYS = (
    "smtp_host",
    "smtp_port",
    "smtp_user",
    "smtp_password",
    "smtp_from",
    "smtp_security",
    "smtp_timeout",
    "smtp_cafile",
)
_KEYS = {
    "webhook": {"url", "secret", "timeout", "attempts"},
    "email": {"to", *_SMTP_KEYS},
    "script": {"path", "timeout"},
    "apprise": {"url"},
}


def _tables(cfg: Mapping[str, object], kind: str) -> list[tuple[str, Mapping[str, object]]]:
    """``[alerts.kind]`` or ``[[alerts.kind]]`` as (where, table) pairs, unknown keys refused."""
    value = cfg.get(kind, [])
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list) or not all(isinstance(t, Mapping) for t in items):
        raise ConfigError(f"alerts.{kind} must be a table or an array of tables")
    out = []
    for i, table in enumerate(items):
        where = f"alerts.{kind}" if isinstance(value, Mapping) else f"alerts.{kind}[{i}]"
        unknown = sorted(set(table) - _KEYS[kind])
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS[kind]))}"
            )
        out.append((where, table))
    return out


def _str(table: Mapping[str, object], key: str, where: str, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and required:
        raise ConfigError(f"{where}: {key} is required")
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _number(table: Mapping[str, object], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number, not {value!r}")
    return float(value)


def _smtp_value(table: Mapping[str, object], key: str) -> object:
    """``table[key]``, else the ``CTWATCH_SMTP_*`` variable (numbers parsed), else None."""
    if key in table:
        return table[key]
    var = f"CTWATCH_{key.upper()}"
    env = os.environ.get(var)
    if not env:
        return None
    if key in ("smtp_port", "smtp_timeout"):
        try:
            return int(env) if key == "smtp_port" else float(env)
        except ValueError:
            raise ConfigError(f"{var} must be a number, not {env!r}") from None
    return env


def _smtp_settings(table: Mapping[str, object], where: str) -> SmtpSettings:
    """SMTP settings: each ``smtp_x`` from the table, else ``CTWATCH_SMTP_X``, else a default."""
    raw = {k: v for k in _SMTP_KEYS if (v := _smtp_value(table, k)) is not None}
    port = raw.get("smtp_port", 0)
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(f"{where}: smtp_port must be a whole number, not {port!r}")
    return SmtpSettings(
        host=_str(raw, "smtp_host", where) or "",
        sender=_str(raw, "smtp_from", where) or "",
        security=_str(raw, "smtp_security", where) or "starttls",
        port=port,
        user=_str(raw, "smtp_user", where),
        password=_str(raw, "smtp_password", where),
        timeout=_number(raw, "smtp_timeout", where, 30.0),
        cafile=_str(raw, "smtp_cafile", where),
    )


def _list(cli: Mapping[str, object], key: str) -> list[str]:
    value = cli.get(key) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"--{key} takes text values")
    return list(value)


def sinks_from_config(cfg: Mapping[str, object], cli: Mapping[str, object]) -> list[Sink]:
    """Every sink configured in ``cfg`` (the ``[alerts]`` table) and ``cli``, each name once.

    ``cli`` holds ``webhook`` (URLs), ``email`` (addresses), ``script`` (a path or None) and
    ``apprise`` (URLs). Raises ConfigError, naming the setting, for anything invalid.
    """
    sinks: list[Sink] = []
    for where, t in _tables(cfg, "webhook"):
        url = _str(t, "url", where, required=True) or ""
        attempts = _number(t, "attempts", where, 4)
        if attempts != int(attempts):
            raise ConfigError(f"{where}: attempts must be a whole number")
        sinks.append(
            WebhookSink(
                url,
                secret=_str(t, "secret", where),
                timeout=_number(t, "timeout", where, 10.0),
                attempts=int(attempts),
            )
        )
    sinks += [WebhookSink(url) for url in _list(cli, "webhook")]

    emails = _tables(cfg, "email")
    for where, t in emails:
        to = t.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(isinstance(a, str) for a in to):
            raise ConfigError(f"{where}: to must be a non-empty list of addresses")
        sinks.append(EmailSink(to, _smtp_settings(t, where)))
    if addresses := _list(cli, "email"):
        where, table = emails[0] if emails else ("environment", {})
        sinks.append(EmailSink(addresses, _smtp_settings(table, where)))

    for where, t in _tables(cfg, "script"):
        sinks.append(
            ScriptSink(
                _str(t, "path", where, required=True) or "", timeout=_number(t, "timeout", where, 60.0)
            )
        )
    if script := cli.get("script"):
        if not isinstance(script, str):
            raise ConfigError("--script takes one path")
        sinks.append(ScriptSink(script))

    apprise_urls = [_str(t, "url", where, required=True) or "" for where, t in _tables(cfg, "apprise")]
    apprise_urls += _list(cli, "apprise")
    if apprise_urls:
        from .chat import AppriseSink  # apprise loads its plugins on import: only when used

        sinks += [AppriseSink(url) for url in apprise_urls]

    unique: dict[str, Sink] = {}
    for sink in sinks:
        unique.setdefault(sink.name, sink)
    return list(unique.values())
