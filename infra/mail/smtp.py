"""Mail over SMTP (aiosmtplib). SMTP_URL says where and how:

- `smtps://user:password@host:465`: implicit TLS;
- `smtp://user:password@host:587`: STARTTLS, required (no silent plain text);
- `smtp://host:25?tls=none`: plain text, for a relay on the same host or network.
"""

from __future__ import annotations

import logging
import ssl
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import msgspec

from domain.mail import MailMessage
from infra.mail.messages import rfc5322
from infra.outages import ServiceUnavailable

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
        try:
            await self._send(message, target)
        except _UNREACHABLE as exc:
            # Down, refused, dropped or silent: the message waits in the outbox.
            # Anything the server answered (a refused recipient, failed
            # authentication) or a certificate we refuse stays the error it is.
            reason = _outage_reason(exc)
            if reason is None:
                raise
            raise ServiceUnavailable("smtp", reason) from exc
        log.info("mail sent", extra={"mail_kind": message.kind, "smtp_host": target.host})

    async def _send(self, message: MailMessage, target: SmtpTarget) -> None:
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


_UNREACHABLE = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
)


def _outage_reason(exc: BaseException) -> str | None:
    """Why the server cannot be reached, or None when the failure is a TLS one
    (a certificate phr refuses is configuration, not an outage)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return None
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return "connection dropped"
    return "unreachable"
