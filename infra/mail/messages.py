"""A MailMessage as an RFC 5322 message: plain text and HTML alternatives, UTF-8."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from domain.mail import MailMessage


class Mailer(Protocol):
    """How the outbox sends: SMTP, or `.eml` files (an infra detail, not a domain port)."""

    async def send(self, message: MailMessage) -> None: ...  # delivers or raises


def rfc5322(message: MailMessage, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2].strip("> ") or "phr.invalid"
    email["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    # Account mail is automatic: out-of-office replies should not answer it (RFC 3834).
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email
