"""Push delivery from the outbox: at least once, with the notification id as the
receiver's dedupe key; exponential backoff with jitter that honours Retry-After;
a registration the service calls gone is removed; after a bounded number of
attempts a delivery is dead-lettered for the operator."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import timedelta

import msgspec

from domain.notifications.model import Delivery, PushMessage, PushResult
from domain.notifications.texts import push_title
from domain.ports import Clock, OutboxStore, PushSender


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 8
    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    lease_seconds: float = 60.0
    # Pushes in flight at once (to different devices).
    concurrency: int = 16

    def delay(self, attempts: int, retry_after: float | None, rand: random.Random) -> float:
        """Full jitter on an exponential backoff; never sooner than Retry-After."""
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        jittered = rand.uniform(backoff / 2, backoff)
        return max(jittered, retry_after or 0.0)


def message_for(delivery: Delivery) -> PushMessage:
    return PushMessage(
        notification_id=delivery.notification_id,
        kind=delivery.notification_kind,
        title=push_title(delivery.locale),
        collapse_key=delivery.notification_id.hex,
    )


class PushDispatcher:
    def __init__(
        self,
        outbox: OutboxStore,
        senders: Mapping[str, PushSender],
        clock: Clock,
        policy: RetryPolicy | None = None,
        rand: random.Random | None = None,
    ):
        self._outbox = outbox
        self._senders = senders
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._rand = rand or random.Random()  # noqa: S311 (jitter, not secrets)

    async def run_once(self, limit: int = 100) -> int:
        """Claims what is due and sends it; returns how many were claimed.
        Different devices are sent to concurrently; one device's deliveries go
        in order, and stop at the first that finds the registration gone (it
        took the others with it)."""
        now = self._clock.now()
        claimed = await self._outbox.claim(now, self._policy.lease_seconds, limit)
        by_device: dict[object, list[Delivery]] = {}
        for delivery in claimed:
            by_device.setdefault(delivery.device.id, []).append(delivery)
        gate = asyncio.Semaphore(self._policy.concurrency)

        async def send_all(deliveries: list[Delivery]) -> None:
            async with gate:
                for delivery in deliveries:
                    if await self._send(delivery) == "gone":
                        return

        await asyncio.gather(*(send_all(group) for group in by_device.values()))
        return len(claimed)

    async def _send(self, delivery: Delivery) -> str:
        sender = self._senders.get(delivery.kind)
        if sender is None:
            result = PushResult("retry", f"{delivery.kind} is not configured")
        else:
            try:
                result = await sender.send(delivery.device, message_for(delivery))
            except Exception as error:  # a network failure is a retry, whatever its class
                result = PushResult("retry", f"{type(error).__name__}: {error}"[:500])
        now = self._clock.now()
        match result.outcome:
            case "delivered":
                await self._outbox.delivered(delivery.id, now)
            case "gone":
                await self._outbox.gone(delivery, now, result.detail)
            case "rejected":
                await self._outbox.dead(delivery.id, now, result.detail)
            case _:
                if delivery.attempts >= self._policy.max_attempts:
                    await self._outbox.dead(delivery.id, now, result.detail)
                else:
                    seconds = self._policy.delay(
                        delivery.attempts, result.retry_after_seconds, self._rand
                    )
                    await self._outbox.retry(
                        delivery.id, now + timedelta(seconds=seconds), result.detail
                    )
        return result.outcome
