"""Item 7's second sweep, as the worker runs it: on S3 a presigned PUT cannot be
revoked, so a file put back through an upload URL that was open at erasure lands.
The worker's periodic `erasure.sweep_files` job empties the erased account's
prefix once every earlier upload URL has expired (not before), with no one
having to remember to call it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.clock import FixedClock
from infra.background_jobs import build_worker
from infra.bootstrap import close_services, open_services
from tests.conftest import register_patient, settings_for
from tests.integration.test_uploads import PDF, open_stack, start
from tests.security.test_erasure import every_stored_key


async def run_sweep_job(settings, clock: FixedClock) -> None:
    services = await open_services(settings, settings.database_url, clock=clock)
    try:
        worker = build_worker(services)
        assert await worker.run_periodic("erasure.sweep_files", force=True)
    finally:
        await close_services(services)


async def test_a_file_put_back_after_erasure_is_removed_by_the_worker_job(
    database_dsn, data_dir, s3_server
):
    async with open_stack("s3", database_dsn, data_dir, s3_server) as stack:
        patient = await register_patient(stack.client)
        pending = (await start(stack, patient, "later.pdf", "application/pdf", len(PDF))).json()
        erased = await stack.client.request(
            "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
        )
        assert erased.status_code == 204, erased.text
        now = datetime.now(UTC)
        put = await stack.http.request(
            pending["method"], pending["uploadUrl"], headers=pending["headers"], content=PDF
        )
        assert put.status_code == 200, put.text

        def left() -> list[str]:
            return [k for k in every_stored_key(stack, data_dir) if patient.id in k]

        assert left(), "the presigned PUT should have landed on S3"
        settings = settings_for(database_dsn, data_dir, s3_server.env())
        # While an upload URL issued before the erasure may still be used: not yet.
        await run_sweep_job(settings, FixedClock(now + timedelta(minutes=5)))
        assert left()
        # Once every such URL has expired: the job empties the prefix.
        await run_sweep_job(settings, FixedClock(now + timedelta(minutes=17)))
        assert left() == []
