"""Apple Push Notification service: HTTP/2, token-based (ES256 JWT) auth.

The provider token is reused for up to 40 minutes (Apple refuses one older than
an hour and throttles fresher ones); `apns-collapse-id` carries the dedupe key,
so a resend after a crash replaces rather than repeats the alert."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx
import jwt
import msgspec

from domain.notifications.model import Device, PushMessage, PushResult
from domain.ports import Clock
from infra.push.settings import ApnsSettings

TOKEN_REUSE_SECONDS = 40 * 60
EXPIRY_SECONDS = 24 * 3600
# Reasons that mean the token will never work again (for this app).
_GONE = frozenset({"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic", "ExpiredToken"})


class ApnsSender:
    def __init__(
        self, settings: ApnsSettings, clock: Clock, client: httpx.AsyncClient | None = None
    ):
        self._settings = settings
        self._clock = clock
        self._key = Path(settings.key_file).read_bytes()
        # HTTP/2 only, as APNs requires: over TLS, offered by ALPN as h2 alone.
        verify: ssl.SSLContext | bool = True
        if settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        self._client = client or httpx.AsyncClient(
            http1=False, http2=True, timeout=15.0, verify=verify
        )
        self._token: str | None = None
        self._token_issued = 0.0

    async def close(self) -> None:
        await self._client.aclose()

    def _provider_token(self, *, fresh: bool = False) -> str:
        now = time.time()
        if fresh or self._token is None or now - self._token_issued > TOKEN_REUSE_SECONDS:
            self._token = jwt.encode(
                {"iss": self._settings.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._settings.key_id},
            )
            self._token_issued = now
        return self._token

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        result = await self._post(device, message, fresh=False)
        if result.detail.startswith("ExpiredProviderToken"):
            result = await self._post(device, message, fresh=True)
        return result

    async def _post(self, device: Device, message: PushMessage, *, fresh: bool) -> PushResult:
        body = msgspec.json.encode(
            {
                "aps": {"alert": {"title": message.title}, "sound": "default"},
                "notificationId": str(message.notification_id),
                "kind": message.kind,
            }
        )
        response = await self._client.post(
            f"{self._settings.url}/3/device/{device.address}",
            content=body,
            headers={
                "authorization": f"bearer {self._provider_token(fresh=fresh)}",
                "apns-topic": self._settings.topic,
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": str(int(self._clock.now().timestamp()) + EXPIRY_SECONDS),
                "apns-collapse-id": message.collapse_key,
                "apns-id": str(message.notification_id),
                "content-type": "application/json",
            },
        )
        if response.status_code == 200:
            return PushResult("delivered")
        try:
            reason = str(msgspec.json.decode(response.content).get("reason", ""))
        except (msgspec.DecodeError, AttributeError):
            reason = ""
        detail = f"{reason or response.status_code}"
        retry_after = response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        if reason in _GONE or response.status_code == 410:
            return PushResult("gone", detail)
        if reason == "ExpiredProviderToken" or response.status_code in (429, 500, 503):
            return PushResult("retry", detail, wait)
        return PushResult("rejected", detail)
