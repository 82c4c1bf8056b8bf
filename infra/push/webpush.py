"""Web Push (RFC 8030) with aes128gcm payload encryption (RFC 8291) and VAPID
(RFC 8292), through http-ece and py-vapid, the libraries pywebpush is built on.

The VAPID key pair is made on first start and kept in PHR_DATA_DIR/keys."""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import http_ece
import httpx
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from domain.notifications.model import Device, PushMessage, PushResult

TTL_SECONDS = 24 * 3600


def load_vapid(data_dir: Path) -> Vapid02:
    path = data_dir / "keys" / "vapid.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Whole file, then linked into place: two processes starting at once
        # end up with one key.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return Vapid02.from_pem(path.read_bytes())


def application_server_key(vapid: Vapid02) -> str:
    """The public key a browser passes to pushManager.subscribe (base64url)."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def payload(message: PushMessage) -> bytes:
    """What the device decrypts: a generic title, the id and kind; nothing more."""
    return msgspec.json.encode(
        {
            "title": message.title,
            "notificationId": str(message.notification_id),
            "kind": message.kind,
        }
    )


class WebPushSender:
    def __init__(self, vapid: Vapid02, subject: str, client: httpx.AsyncClient):
        self._vapid = vapid
        self._subject = subject
        self._client = client
        # One VAPID token per push service origin, reused for an hour (it is
        # valid for 12): signing one per push costs more than the push.
        self._tokens: dict[str, tuple[str, float]] = {}

    def _authorization(self, audience: str) -> str:
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] > now:
            return cached[0]
        header = self._vapid.sign(
            {"aud": audience, "exp": int(now) + 12 * 3600, "sub": self._subject}
        )["Authorization"]
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[audience] = (header, now + 3600)
        return header

    def _encrypt(self, device: Device, body: bytes) -> bytes:
        assert device.p256dh is not None and device.auth is not None
        return http_ece.encrypt(
            body,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=_b64(device.p256dh),
            auth_secret=_b64(device.auth),
            version="aes128gcm",
        )

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        parts = urlsplit(device.address)
        authorization = self._authorization(f"{parts.scheme}://{parts.netloc}")
        try:
            body = self._encrypt(device, payload(message))
        except (ValueError, TypeError) as error:
            return PushResult("gone", f"unusable subscription keys: {error}")
        response = await self._client.post(
            device.address,
            content=body,
            headers={
                "Authorization": authorization,
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "TTL": str(TTL_SECONDS),
                "Urgency": "normal",
                # Replaces an undelivered push with the same topic: a resend after
                # a crash is one message at the device.
                "Topic": message.collapse_key,
            },
        )
        status = response.status_code
        detail = f"{status} {response.text[:200]}"
        if status in (200, 201, 202):
            return PushResult("delivered")
        if status in (404, 410):
            return PushResult("gone", detail)
        if status == 429 or status >= 500:
            return PushResult("retry", detail, _retry_after(response))
        return PushResult("rejected", detail)
