"""One log line per outage of a backing service, not one traceback per request.

While PostgreSQL (or the disk, or S3) is down, every request that needs it fails
the same way; the operator needs to know when it began, why, and when it ended.
The first failure of an outage logs a warning, later ones are only counted, and
the first success (or a quiet spell) closes it with one line saying how many
requests it cost."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("phr.outage")

# Failures further apart than this belong to different outages.
QUIET_SECONDS = 30.0


# What an outage means for the callers, and what its failures count: requests
# answered 503, or (for the services only background jobs use) job attempts that
# will be tried again.
ANSWERING_503 = ("answering 503 with Retry-After", "request(s) answered 503")
JOBS_WAIT = ("jobs that need it wait and are retried", "job attempt(s) failed")


class ServiceUnavailable(Exception):
    """A backing service a background job needs (the SMTP server, a push service)
    cannot be reached: the job is retried, and the outage is one log line for its
    whole length instead of a traceback per try."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"{service} unavailable: {reason}")
        self.service = service
        self.reason = reason


class _Outage:
    __slots__ = ("began", "counted", "failures", "last", "reason")

    def __init__(self, reason: str, now: float, counted: str):
        self.reason = reason
        self.began = now
        self.last = now
        self.failures = 0
        self.counted = counted


class OutageLog:
    def __init__(self, *, quiet_seconds: float = QUIET_SECONDS, clock=time.monotonic):
        self._open: dict[str, _Outage] = {}
        self._quiet = quiet_seconds
        self._clock = clock
        # Handlers run on the event loop, but the pool's init hook and blob
        # stores may call from threads.
        self._lock = threading.Lock()

    def failed(
        self,
        service: str,
        reason: str,
        detail: str = "",
        *,
        meaning: tuple[str, str] = ANSWERING_503,
    ) -> None:
        now = self._clock()
        with self._lock:
            outage = self._open.get(service)
            if outage is not None and now - outage.last > self._quiet:
                self._close(service, outage, "no failure for a while")
                outage = None
            if outage is None:
                consequence, counted = meaning
                outage = self._open[service] = _Outage(reason, now, counted)
                log.warning(
                    "%s unavailable (%s): %s until it returns",
                    service,
                    reason,
                    consequence,
                    extra={"service": service, "reason": reason, "detail": detail[:300]},
                )
            outage.failures += 1
            outage.last = now

    def recovered(self, service: str) -> None:
        with self._lock:
            outage = self._open.get(service)
            if outage is not None:
                self._close(service, outage, "it answers again")

    def in_outage(self, service: str) -> bool:
        return service in self._open

    def _close(self, service: str, outage: _Outage, why: str) -> None:
        del self._open[service]
        log.warning(
            "%s available again (%s) after %.1f s; %d %s",
            service,
            why,
            self._clock() - outage.began,
            outage.failures,
            outage.counted,
            extra={
                "service": service,
                "reason": outage.reason,
                "failedRequests": outage.failures,
                "outageSeconds": round(self._clock() - outage.began, 2),
            },
        )
