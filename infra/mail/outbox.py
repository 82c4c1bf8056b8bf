"""Delivery off the request path: a posted message is sent by a task of its own,
so a request answers as fast when it sends mail as when it does not (registration
and reset must not tell, by their timing, whether an address has an account).
Failures are logged and retried a few times; `close` waits for what is in flight.

This is the stand-in until mail goes through the job worker (transactional
outbox): messages posted here are lost if the process dies before sending."""

from __future__ import annotations

import asyncio
import logging

from domain.mail import Mailer, MailMessage

log = logging.getLogger("phr.mail")

RETRY_DELAYS_SECONDS = (1.0, 5.0, 30.0)


class BackgroundOutbox:
    def __init__(self, mailer: Mailer, *, retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS):
        self._mailer = mailer
        self._retry_delays = retry_delays
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def mailer(self) -> Mailer:
        return self._mailer

    def post(self, message: MailMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: MailMessage) -> None:
        for attempt, delay in enumerate((*self._retry_delays, None)):
            try:
                await self._mailer.send(message)
                return
            except Exception as exc:
                log.warning(
                    "mail not sent",
                    extra={
                        "mail_kind": message.kind,
                        "attempt": attempt + 1,
                        "error": type(exc).__name__,
                    },
                )
                if delay is None:
                    log.error("mail dropped after retries", extra={"mail_kind": message.kind})
                    return
                await asyncio.sleep(delay)

    async def drain(self) -> None:
        """Waits for every message posted so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout_seconds: float = 10.0) -> None:
        if not self._tasks:
            return
        try:
            await asyncio.wait_for(self.drain(), timeout_seconds)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
