"""The email sink: one message per recipient list over SMTP, with text and HTML parts.

Named ``mail`` so it cannot shadow the standard library's ``email`` package. Nothing from a
certificate reaches a header unescaped: the subject is the event's cleaned one-line summary
(CR, LF and NUL become visible escapes, long values are cut) and ``email.policy.SMTP`` refuses
any header value that would still contain a line break.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import hashlib
import ipaddress
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from ..errors import ConfigError, SinkError
from .render import clean, is_sha256_hex, render_html, render_text, summary

log = logging.getLogger(__name__)

SECURITY_MODES = ("plain", "starttls", "tls")
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}


def parse_address(text: str, what: str) -> str:
    """``text`` as a bare ``local@domain`` address, or ConfigError naming ``what``."""
    try:
        if not text.isprintable():
            raise ValueError("control characters")
        addr = Address(addr_spec=text.strip())
    except (ValueError, IndexError, HeaderParseError):
        raise ConfigError(f"{what} is not an email address: {clean(text, 200)!r}") from None
    if not addr.username or not addr.domain:
        raise ConfigError(f"{what} is not an email address: {clean(text, 200)!r}")
    return addr.addr_spec


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the mail relay; built by ``sinks_from_config`` from config and environment.

    ``security`` is ``plain``, ``starttls`` (refuses to continue if the server does not offer
    it) or ``tls``; ``cafile`` trusts a private CA. A password is never sent over ``plain``
    unless the relay is on this machine.
    """

    host: str
    sender: str
    security: str = "starttls"
    port: int = 0
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    cafile: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("email alerts need an SMTP host (smtp_host or CTWATCH_SMTP_HOST)")
        if not self.sender:
            raise ConfigError("email alerts need a sender address (smtp_from or CTWATCH_SMTP_FROM)")
        if self.security not in SECURITY_MODES:
            raise ConfigError(
                f"SMTP security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"SMTP port out of range: {self.port}")
        if self.timeout <= 0:
            raise ConfigError("SMTP timeout must be > 0")
        if self.password and self.security == "plain" and not _is_loopback(self.host):
            raise ConfigError(
                f"refusing to send the SMTP password to {self.host} without TLS (use starttls or tls)"
            )
        if self.cafile and not Path(self.cafile).is_file():
            raise ConfigError(f"SMTP cafile not found: {self.cafile}")
        parse_address(self.sender, "SMTP sender (smtp_from or CTWATCH_SMTP_FROM)")

    @property
    def effective_port(self) -> int:
        """The configured port, or the usual one for the security mode (25, 587, 465)."""
        return self.port or DEFAULT_PORTS[self.security]


class EmailSink:
    """Mails each event to one recipient list in a single message.

    The Message-ID is derived from the event id, so a retried delivery is recognisably the
    same message; a PEM, when the event has one, is attached.
    """

    def __init__(self, to: Sequence[str], settings: SmtpSettings) -> None:
        if not to:
            raise ConfigError("email alerts need at least one recipient")
        self.to = [parse_address(a, "email recipient") for a in to]
        self.settings = settings
        self.name = "email:" + ",".join(self.to)

    def _message(self, event: dict[str, object]) -> EmailMessage:
        sender = Address(display_name="ctwatch", addr_spec=self.settings.sender)
        digest = hashlib.sha256(clean(event.get("id")).encode()).hexdigest()[:32]
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = f"[ctwatch] {summary(event)}"
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = f"<ctwatch.{digest}@{sender.domain}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Ctwatch-Event"] = clean(event.get("event"), 40)
        msg["X-Ctwatch-Event-Id"] = clean(event.get("id"), 200)
        msg.set_content(render_text(event))
        msg.add_alternative(render_html(event), subtype="html")
        pem = event.get("pem")
        if isinstance(pem, str):
            sha = event.get("cert_sha256")
            name = f"{sha}.pem" if is_sha256_hex(sha) else "certificate.pem"
            msg.add_attachment(pem.encode("ascii", "replace"), "application", "x-pem-file", filename=name)
        return msg

    def _send(self, msg: EmailMessage) -> None:
        s = self.settings
        context = None if s.security == "plain" else ssl.create_default_context(cafile=s.cafile)
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.effective_port, timeout=s.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=context)
                if s.user:
                    smtp.login(s.user, s.password or "")
                refused = smtp.send_message(msg, from_addr=s.sender, to_addrs=self.to)
        except (smtplib.SMTPException, OSError) as e:
            raise SinkError(
                f"{self.name}: SMTP via {s.host}:{s.effective_port} failed: {clean(e, 300)}"
            ) from None
        if refused:
            # Retrying would mail the accepted recipients again; the refusal is permanent anyway.
            log.warning("%s: the relay refused %s", self.name, ", ".join(sorted(refused)))

    async def deliver(self, event: dict[str, object]) -> None:
        """Send one message to every recipient; SinkError if the relay did not take it."""
        await asyncio.to_thread(self._send, self._message(event))
