"""Mail to a patient: what a message is, and the port that sends it.

Messages carry codes and account news, never health data. A message is queued in
the use case's transaction (a message about something rolled back would be a lie)
and delivered after it commits; a delivery failure never undoes the use case."""

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
    async def post(self, message: MailMessage) -> None:
        """Queues the message inside the open unit of work: it goes out only if
        the transaction commits."""
        ...

    def deliver_soon(self) -> None:
        """After the commit: start delivering what was queued without waiting for
        it, so the caller answers the same whether or not a message goes out."""
        ...
