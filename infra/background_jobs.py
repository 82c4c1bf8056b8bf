"""Which jobs the worker runs: one place to register handlers and periodic jobs
(see infra/worker.py for how to enqueue and what a handler may rely on)."""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta

from domain.retention import FINISHED_JOB_TTL, PARKED_PUSH_TTL, WEBHOOK_DELIVERY_REPLAY_WINDOW
from infra.bootstrap import Services
from infra.imaging_jobs import register_imaging_jobs
from infra.pg.jobs import PgJobStore
from infra.pg.notifications import DELIVERY_WAKE
from infra.pg.retention import PgRetention
from infra.worker import Worker

log = logging.getLogger("phr.jobs")

# How often each worker looks for pushes that fell due without a notice (a retry
# after its backoff, the end of quiet hours, a lapsed lease).
DELIVERY_SWEEP = timedelta(seconds=5)


def build_worker(services: Services) -> Worker:
    worker = Worker(services.database, retry_base_seconds=services.settings.job_retry_base_seconds)
    clock = services.clock
    retention = PgRetention(services.database)

    async def purge_expired_uploads() -> None:
        purged = 0
        while True:
            batch = await services.patient_uploads.purge_expired(limit=500)
            purged += batch
            if batch < 500:
                break
        if purged:
            log.info("purged expired uploads", extra={"purged": purged})

    async def prune_webhook_deliveries() -> None:
        pruned = await retention.prune_webhook_deliveries(
            clock.now() - WEBHOOK_DELIVERY_REPLAY_WINDOW
        )
        if pruned:
            log.info("pruned webhook delivery ids", extra={"pruned": pruned})

    async def drop_parked_pushes() -> None:
        dropped = await retention.drop_parked_pushes(clock.now() - PARKED_PUSH_TTL)
        if dropped:
            log.info("dropped unclaimed parked pushes", extra={"dropped": dropped})

    async def prune_finished_jobs() -> None:
        await PgJobStore(services.database).prune_finished(clock.now() - FINISHED_JOB_TTL)

    async def sweep_erased_files() -> None:
        # S3 cannot revoke a presigned PUT: a file put back through an upload URL
        # open at erasure goes once every such URL has expired.
        swept = 0
        while True:
            batch = await services.account_erasure.sweep_erased_files(limit=100)
            swept += batch
            if batch < 100:
                break
        if swept:
            log.info("swept erased accounts' files again", extra={"swept": swept})

    async def seal_audit_events() -> None:
        await services.transparency_log.seal()

    async def thin_audit_checkpoints() -> None:
        thinned = await services.transparency_log.thin_checkpoints()
        if thinned:
            log.info("thinned audit checkpoints", extra={"thinned": thinned})

    # The sequencer: a single writer (one run at a time across the deployment).
    worker.every(
        "audit.seal",
        timedelta(milliseconds=services.settings.audit_seal_interval_ms),
        seal_audit_events,
    )
    worker.every("audit.thin_checkpoints", timedelta(hours=1), thin_audit_checkpoints)
    worker.every("uploads.purge_expired", timedelta(minutes=10), purge_expired_uploads)
    worker.every("webhooks.prune_deliveries", timedelta(hours=1), prune_webhook_deliveries)
    worker.every("webhooks.drop_parked", timedelta(hours=1), drop_parked_pushes)
    worker.every("jobs.prune_finished", timedelta(hours=1), prune_finished_jobs)
    worker.every("erasure.sweep_files", timedelta(minutes=5), sweep_erased_files)

    register_imaging_jobs(worker, services)

    from infra.mail.outbox import register_mail_jobs

    register_mail_jobs(worker, services.secret_box, services.mailer)

    # Push deliveries from the notification outbox (it keeps its own leases,
    # backoff and dead letters): woken by the NOTIFY that the transaction writing
    # a notification sends when it commits, so a push leaves at once; the sweep
    # sends retries and pushes held for quiet hours once they fall due. The
    # refill scan is idempotent by dedupe keys.
    async def deliver_notifications() -> None:
        while await services.push_dispatcher.run_once() > 0:
            pass

    async def refill_scan() -> None:
        added = await services.refill_scan.run()
        if added:
            log.info("refill scan", extra={"added": added})

    services.vapid  # noqa: B018 (the Web Push key pair is made on first start, not first push)
    worker.on_wake(DELIVERY_WAKE, deliver_notifications, sweep=DELIVERY_SWEEP)
    worker.every("medications.refill_scan", timedelta(hours=1), refill_scan)

    # Deployments (and the tests) may plant further jobs: modules named in
    # PHR_WORKER_MODULES, each with `register_jobs(worker, services)`.
    for module_name in services.settings.worker_modules:
        importlib.import_module(module_name).register_jobs(worker, services)
    return worker
