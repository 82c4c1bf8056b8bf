"""Standard Webhooks signatures as a hospital makes them, with the independent
`standardwebhooks` package (never our own verifier's code): the one signing
helper every test uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
    content_type: str | None = "application/json",
) -> dict[str, str]:
    """The webhook-id, webhook-timestamp and webhook-signature headers for `body`."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    return headers
