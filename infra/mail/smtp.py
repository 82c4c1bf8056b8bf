"""Mail over SMTP (aiosmtplib). SMTP_URL says where and how:

- `smtps://user:password@host:465`: implicit TLS;
- `smtp://user:password@host:587`: STARTTLS, required (no silent plain text);
- `smtp://host:25?tls=none`: plain text, for a relay on the same host or network.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import msgspec

from domain.mail import MailMessage
from infra.mail.messages import rfc5322

log = logging.getLogger("phr.mail")


class SmtpTarget(msgspec.Struct, frozen=True):
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


class SmtpUrlError(ValueError):
    pass


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SmtpUrlError("must look like smtp://host:587 or smtps://host:465")
    query = parse_qs(parts.query)
    tls = (query.get("tls") or [""])[0].lower()
    if tls not in ("", "none"):
        raise SmtpUrlError("the only tls option is tls=none (plain text)")
    implicit = parts.scheme == "smtps"
    if implicit and tls == "none":
        raise SmtpUrlError("smtps:// is TLS; use smtp://...?tls=none for plain text")
    try:
        port = parts.port or (465 if implicit else 587)
    except ValueError:
        raise SmtpUrlError("the port is not a number") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        implicit_tls=implicit,
        starttls=not implicit and tls != "none",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpMailer:
    def __init__(
        self,
        target: SmtpTarget,
        *,
        sender: str,
        ca_file: str | None = None,
        timeout_seconds: float = 30.0,
    ):
        self._target = target
        self._sender = sender
        self._ca_file = ca_file
        self._timeout = timeout_seconds

    async def send(self, message: MailMessage) -> None:
        target = self._target
        await aiosmtplib.send(
            rfc5322(message, sender=self._sender),
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.implicit_tls,
            start_tls=target.starttls,
            # The server's certificate is always checked (system CAs, or SMTP_CA_FILE).
            validate_certs=True,
            cert_bundle=self._ca_file,
            timeout=self._timeout,
        )
        log.info("mail sent", extra={"mail_kind": message.kind, "smtp_host": target.host})
