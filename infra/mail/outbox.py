"""Account mail through the job worker (a transactional outbox).

`post` enqueues a `mail.send` job inside the use case's transaction, so a message
exists exactly when the change it reports committed. `deliver_soon`, called after
the commit, starts a delivery run in this process at once (off the request path),
so a code arrives in seconds even where the worker polls or runs elsewhere; the
worker's claim (SKIP LOCKED with a lease) keeps the two from sending one job
twice. A failed send is retried by the worker with backoff.

The job payload holds the message sealed with the service's secret box: codes are
secrets, and the job table keeps finished jobs for days."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import timedelta

import msgspec

from domain.jobs import Job, JobQueue
from domain.mail import MailMessage
from infra.mail.messages import Mailer
from infra.pg.database import Database
from infra.secret_box import SecretBox
from infra.worker import BACKOFF_BASE_SECONDS, Worker

log = logging.getLogger("phr.mail")

MAIL_JOB = "mail.send"
MAIL_LEASE = timedelta(minutes=2)
_CONTEXT = b"phr mail job"


def seal_message(box: SecretBox, message: MailMessage) -> dict[str, str]:
    sealed = box.seal(msgspec.json.encode(message), context=_CONTEXT)
    return {"kind": message.kind, "sealed": base64.b64encode(sealed).decode()}


def open_message(box: SecretBox, payload: dict[str, str]) -> MailMessage:
    sealed = base64.b64decode(payload["sealed"])
    return msgspec.json.decode(box.open(sealed, context=_CONTEXT), type=MailMessage)


def mail_job_handler(box: SecretBox, mailer: Mailer):
    async def send_mail(job: Job) -> None:
        # Sends outside the job's transaction: a process dying after the send and
        # before the commit sends the message once more (at least once, never lost).
        await mailer.send(open_message(box, job.payload))

    return send_mail


def register_mail_jobs(worker: Worker, box: SecretBox, mailer: Mailer) -> None:
    worker.register(MAIL_JOB, mail_job_handler(box, mailer), lease=MAIL_LEASE, service="smtp")


class JobMailOutbox:
    def __init__(
        self,
        database: Database,
        jobs: JobQueue,
        box: SecretBox,
        mailer: Mailer,
        *,
        retry_base_seconds: float = BACKOFF_BASE_SECONDS,
    ):
        self._jobs = jobs
        self._box = box
        self._mailer = mailer
        # A worker that knows only mail, run on demand right after a commit.
        self._express = Worker(database, concurrency=2, retry_base_seconds=retry_base_seconds)
        register_mail_jobs(self._express, box, mailer)
        self._tasks: set[asyncio.Task[int]] = set()

    @property
    def mailer(self) -> Mailer:
        return self._mailer

    async def post(self, message: MailMessage) -> None:
        await self._jobs.enqueue(MAIL_JOB, seal_message(self._box, message))

    def deliver_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> int:
        try:
            return await self._express.run_pending()
        except Exception:
            # The jobs stay queued; the worker delivers them.
            log.exception("immediate mail delivery failed; the worker will retry")
            return 0

    async def drain(self) -> None:
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
