"""Mail to a patient: what a message is (the ports that queue and send it are in
domain/ports.py).

Messages carry codes and account news, never health data. A message is queued in
the use case's transaction (a message about something rolled back would be a lie)
and delivered after it commits; a delivery failure never undoes the use case."""

from __future__ import annotations

import msgspec


class MailMessage(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    text: str
    html: str
    # What kind of message this is (e.g. "verify-email"), for logs; never the content.
    kind: str
