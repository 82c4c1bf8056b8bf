"""A push service that cannot be reached is one outage in the log, as SMTP is:
one warning when the first try fails, one line when a push goes through again
with how many tries failed meanwhile. The deliveries themselves wait in the
outbox and are retried whatever is logged; each try's error stays in the
delivery's last_error.

A Web Push endpoint's host is the service (each browser vendor runs its own);
APNs and FCM are one service each."""

from __future__ import annotations

from urllib.parse import urlsplit

from domain.notifications.model import Device, PushMessage, PushResult
from domain.ports import PushSender
from infra.outages import OutageLog

# What a push outage means, and what its failures count.
PUSHES_WAIT = ("pushes wait in the outbox and are retried", "push attempt(s) failed")


class OutageReportingSender:
    def __init__(self, kind: str, sender: PushSender, outages: OutageLog):
        self._kind = kind
        self._sender = sender
        self._outages = outages

    def _service(self, device: Device) -> str:
        if self._kind == "webpush":
            return f"web push service {urlsplit(device.address).netloc}"
        return f"{self._kind} push service"

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        service = self._service(device)
        try:
            result = await self._sender.send(device, message)
        except Exception as error:
            # Unreachable, refused, timed out: the dispatcher retries it.
            reason = type(error).__name__
            self._outages.failed(service, reason, f"{reason}: {error}", meaning=PUSHES_WAIT)
            raise
        if result.outcome == "retry":
            # 5xx or 429: the service answers but takes nothing for now.
            reason = result.detail.split(" ", 1)[0] or "retry"
            self._outages.failed(service, reason, result.detail, meaning=PUSHES_WAIT)
        else:
            # Delivered, gone or rejected: the service answered for this device.
            self._outages.recovered(service)
        return result

    async def close(self) -> None:
        close = getattr(self._sender, "close", None)
        if close is not None:
            await close()
