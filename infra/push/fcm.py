"""Firebase Cloud Messaging, HTTP v1 API, with the service account's OAuth 2.0
token (a JWT bearer assertion, RS256, exchanged at the account's token_uri and
reused until shortly before it expires). `collapse_key` (Android), the APNs
collapse id and the Web Push Topic carry the dedupe key."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import msgspec

from domain.notifications.model import Device, PushMessage, PushResult
from domain.ports import Clock
from infra.push.settings import FcmSettings

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class ServiceAccount(msgspec.Struct, frozen=True):
    project_id: str
    client_email: str
    private_key: str
    token_uri: str = "https://oauth2.googleapis.com/token"
    private_key_id: str | None = None


class FcmSender:
    def __init__(self, settings: FcmSettings, client: httpx.AsyncClient, clock: Clock):
        self._settings = settings
        self._client = client
        self._clock = clock
        self._account = msgspec.json.decode(
            Path(settings.service_account_file).read_bytes(), type=ServiceAccount
        )
        self._access_token: str | None = None
        self._expires = 0.0

    async def _token(self) -> str:
        now = time.time()
        if self._access_token is None or now > self._expires - 60:
            account = self._account
            assertion = jwt.encode(
                {
                    "iss": account.client_email,
                    "scope": SCOPE,
                    "aud": account.token_uri,
                    "iat": int(now),
                    "exp": int(now) + 3600,
                },
                account.private_key,
                algorithm="RS256",
                headers={"kid": account.private_key_id} if account.private_key_id else None,
            )
            response = await self._client.post(
                account.token_uri,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )
            response.raise_for_status()
            grant = response.json()
            self._access_token = str(grant["access_token"])
            self._expires = now + float(grant.get("expires_in", 3600))
        return self._access_token

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        result = await self._post(device, message)
        if result.detail.startswith("401"):
            self._access_token = None
            result = await self._post(device, message)
        return result

    async def _post(self, device: Device, message: PushMessage) -> PushResult:
        body = {
            "message": {
                "token": device.address,
                "notification": {"title": message.title},
                "data": {"notificationId": str(message.notification_id), "kind": message.kind},
                "android": {"collapse_key": message.collapse_key, "priority": "HIGH"},
                "apns": {"headers": {"apns-collapse-id": message.collapse_key}},
                "webpush": {"headers": {"Topic": message.collapse_key}},
            }
        }
        response = await self._client.post(
            f"{self._settings.url}/v1/projects/{self._account.project_id}/messages:send",
            content=msgspec.json.encode(body),
            headers={
                "authorization": f"Bearer {await self._token()}",
                "content-type": "application/json",
            },
        )
        status = response.status_code
        if status == 200:
            return PushResult("delivered")
        error_code, text = _error(response)
        detail = f"{status} {error_code or text}"[:300]
        retry_after = response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        if error_code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or status == 404:
            return PushResult("gone", detail)
        if status in (401, 429, 500, 503):
            return PushResult("retry", detail, wait)
        return PushResult("rejected", detail)


def _error(response: httpx.Response) -> tuple[str | None, str]:
    """FCM's error body: {"error": {"status", "message", "details": [{"errorCode"}]}}."""
    try:
        error = msgspec.json.decode(response.content).get("error") or {}
    except (msgspec.DecodeError, AttributeError):
        return None, response.text[:200]
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"]), str(error.get("message", ""))
    return error.get("status"), str(error.get("message", ""))
