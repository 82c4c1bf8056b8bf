"""argon2id in a bounded thread pool.

argon2 releases the GIL, so a few worker threads hash in parallel while the event
loop keeps serving. The pool is small (settings.password_hash_workers) and the
number of hashes admitted (running plus waiting) is capped by a semaphore: when it is
full the caller gets `Overloaded` (503 + Retry-After) at once instead of joining an
ever-longer queue that would time everyone out."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from domain.accounts.passwords import PasswordCheck
from domain.errors import Overloaded

# OWASP Password Storage Cheat Sheet minimum for argon2id: 19 MiB, 2 passes, 1 lane.
OWASP_MEMORY_KIB = 19456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


def owasp_hasher() -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_KIB,
        parallelism=OWASP_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


# Hashing threads run at a lower scheduling priority (Linux schedules threads, so
# the nice value is per thread): when the CPUs are saturated by a login flood, the
# event loop thread still gets the CPU at once and answers everything else promptly;
# when they are not, the hashing threads lose nothing.
HASHING_THREAD_NICENESS = 10


def _yield_to_event_loop() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


class ThreadPoolPasswordHasher:
    def __init__(
        self,
        *,
        workers: int,
        queue_limit: int,
        hasher: argon2.PasswordHasher | None = None,
    ):
        self._hasher = hasher or owasp_hasher()
        self._workers = workers
        # Once a thread has hashed twice, glibc keeps the 19 MiB argon2 takes in
        # that thread's arena (its mmap threshold slides up to that size): the
        # process holds workers x 19 MiB, bounded. Forcing mmap per hash instead
        # gives it back but costs a third more per hash (page faults).
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_yield_to_event_loop
        )
        # Created inside the running loop (open_services), bound to it on first use.
        self._admitted = asyncio.Semaphore(workers + queue_limit)
        # A hash of a random secret with the current parameters: verifying against
        # it costs what verifying a real account costs. Made once, in the pool.
        self._dummy_hash = self._executor.submit(self._hasher.hash, secrets.token_urlsafe(24))

    @property
    def workers(self) -> int:
        return self._workers

    async def _run(self, fn, *args):
        if self._admitted.locked():
            raise Overloaded(
                "Too many sign-ins are being checked right now; retry shortly.",
                retry_after_seconds=1,
            )
        async with self._admitted:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        if stored_hash is None:
            dummy = await asyncio.wrap_future(self._dummy_hash)
            await self._run(self._check, dummy, password)
            return PasswordCheck(matches=False)
        return await self._run(self._check, stored_hash, password)

    def _check(self, stored_hash: str, password: str) -> PasswordCheck:
        try:
            self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(matches=False)
        return PasswordCheck(
            matches=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
