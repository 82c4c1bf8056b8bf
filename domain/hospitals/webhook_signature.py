"""Webhook secrets and Standard Webhooks signatures: a secret is `whsec_<base64>`;
a delivery is verified over the exact bytes received, with any live secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from domain.errors import AuthenticationFailed

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_ROTATION_GRACE = timedelta(hours=24)


def new_webhook_secret() -> tuple[str, bytes]:
    """A fresh secret: the text the operator hands to the hospital, and its key."""
    key = secrets.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode(), key


class WebhookSignatureInvalid(AuthenticationFailed):
    """Bad or missing signature, or an unknown hospital: one error, one body, so
    that nobody learns which hospital ids exist."""

    kind = "webhook-signature-invalid"
    title = "The webhook signature is not valid"


class WebhookTimestampOutOfRange(AuthenticationFailed):
    kind = "webhook-timestamp-out-of-range"
    title = "The webhook timestamp is too old or too far ahead"


class WebhookHeadersMissing(AuthenticationFailed):
    kind = "webhook-headers-missing"
    title = "The webhook-id, webhook-timestamp and webhook-signature headers are required"


class SignedDelivery(msgspec.Struct, frozen=True):
    """A delivery whose signature verified: its id and the time it claims."""

    id: str
    timestamp: datetime


_MAX_DELIVERY_ID = 256


def verify_webhook(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> SignedDelivery:
    """Standard Webhooks verification over the exact bytes received.

    `headers` maps lower-case names to values. Any `v1,<base64>` entry of the
    space-separated `webhook-signature` that equals HMAC-SHA256 with any of `keys`
    over `{id}.{timestamp}.{body}` is accepted; the timestamp must be within
    `tolerance` of `now` either way. The timestamp is checked first: it is public
    and says nothing about the hospital, so an unknown hospital (no keys) gets
    exactly the bad-signature answer."""
    delivery_id = headers.get("webhook-id")
    raw_timestamp = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not delivery_id or not raw_timestamp or not signature_header:
        raise WebhookHeadersMissing()
    if len(delivery_id) > _MAX_DELIVERY_ID:
        raise WebhookSignatureInvalid()
    try:
        seconds = int(raw_timestamp)
    except ValueError:
        raise WebhookTimestampOutOfRange(
            "webhook-timestamp must be whole seconds since the epoch."
        ) from None
    if abs(now.timestamp() - seconds) > tolerance.total_seconds():
        raise WebhookTimestampOutOfRange(
            f"webhook-timestamp must be within {int(tolerance.total_seconds())} seconds of the "
            "current time; check the sender's clock."
        )
    signed = f"{delivery_id}.{seconds}.".encode() + body
    presented: list[bytes] = []
    for item in signature_header.split(" "):
        version, _, encoded = item.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            presented.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    matched = False
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for candidate in presented:
            # Every comparison runs (no early exit) so timing says nothing about which key.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureInvalid()
    return SignedDelivery(id=delivery_id, timestamp=datetime.fromtimestamp(seconds, UTC))
