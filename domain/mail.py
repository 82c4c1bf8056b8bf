"""Mail to a patient: what a message is, and the port that sends it.

Messages carry codes and account news, never health data. Delivery happens after
the use case's transaction commits (a message about something that was rolled
back would be a lie), and a delivery failure never undoes the use case."""

from __future__ import annotations

from typing import Protocol

import msgspec


class MailMessage(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    text: str
    html: str
    # What kind of message this is (e.g. "verify-email"), for logs; never the content.
    kind: str


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None:
        """Delivers or raises; callers decide what a failure means."""
        ...


class MailOutbox(Protocol):
    def post(self, message: MailMessage) -> None:
        """Hands the message over for delivery without waiting for it: the caller
        answers the same whether or not (and however fast) a message goes out."""
        ...
