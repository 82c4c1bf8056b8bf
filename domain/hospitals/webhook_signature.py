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
    """Bad or missing signature."""

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


class SignatureCheck:
    """A delivery's signature checked while its body streams in: the headers are
    checked first (before any body byte is read), each chunk feeds one running
    HMAC per live key, and `finish` compares. No copy of the body is kept here."""

    def __init__(
        self,
        keys: Sequence[bytes],
        headers: Mapping[str, str],
        now: datetime,
        *,
        tolerance: timedelta = SIGNATURE_TOLERANCE,
    ):
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
                f"webhook-timestamp must be within {int(tolerance.total_seconds())} seconds "
                "of the current time; check the sender's clock."
            )
        self._presented: list[bytes] = []
        for item in signature_header.split(" "):
            version, _, encoded = item.partition(",")
            if version != "v1" or not encoded:
                continue
            try:
                self._presented.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                continue
        prefix = f"{delivery_id}.{seconds}.".encode()
        self._macs = [hmac.new(key, prefix, hashlib.sha256) for key in keys]
        self._delivery = SignedDelivery(
            id=delivery_id, timestamp=datetime.fromtimestamp(seconds, UTC)
        )

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def finish(self) -> SignedDelivery:
        matched = False
        for mac in self._macs:
            expected = mac.digest()
            for candidate in self._presented:
                # Every comparison runs (no early exit) so timing says nothing about which key.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise WebhookSignatureInvalid()
        return self._delivery


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
    `tolerance` of `now` either way."""
    check = SignatureCheck(keys, headers, now, tolerance=tolerance)
    check.update(body)
    return check.finish()
