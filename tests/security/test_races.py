"""Item: races.

Before: a push read the hospital's consent without a lock, so a revocation could
commit between that read and the push's commit: records stored after the patient
had withdrawn consent. And the wrong-link-code counter was read, then incremented:
parallel wrong codes all read the same count and slipped under the limit. Now the
push holds the consent row (a revocation waits for it, or wins and the push is
refused), and a code check is counted in one step under the hospital's lock."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from tests.app_in_loop import client_from, running
from tests.conftest import register_patient
from tests.hospital_support import linked, new_hospital
from tests.records_support import bundle, observation
from tests.security.support import assert_problem


@pytest.fixture
async def app(settings):
    from api.app import create_app

    tight = msgspec.structs.replace(settings, link_code_failures_per_hour=5)
    async with running(create_app(tight)) as started:
        yield started


async def test_15_parallel_wrong_link_codes_with_limit_5__exactly_5_counted_then_429(app, settings):
    async with client_from(app) as client:
        hospital = await new_hospital(client, settings)
        responses = await asyncio.gather(
            *(hospital.link(f"WRONG{i:03d}", f"mrn-{i}") for i in range(15))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [422] * 5 + [429] * 10, statuses
    for response in responses:
        if response.status_code == 429:
            assert_problem(response, 429, "rate-limited")


async def test_right_link_code_after_wrong_ones__not_counted_as_a_failure(app, settings):
    async with client_from(app) as client:
        hospital = await new_hospital(client, settings)
        for i in range(4):
            assert (await hospital.link(f"WRONG{i:03d}", "mrn-x")).status_code == 422
        patient = await register_patient(client)
        await linked(client, patient, hospital, "mrn-right")
        # 4 failures and one success: the fifth failure is still allowed.
        assert (await hospital.link("WRONG999", "mrn-y")).status_code == 422
        assert (await hospital.link("WRONG998", "mrn-y")).status_code == 429


async def test_consent_revoked_while_a_push_is_ingested__revocation_waits_for_the_push(
    app, settings, superuser_conn
):
    async with client_from(app) as client:
        hospital = await new_hospital(client, settings)
        patient = await register_patient(client)
        await linked(client, patient, hospital, "mrn-race")
        consents = (await client.get("/v1/consents", headers=patient.headers)).json()
        consent_id = next(c["id"] for c in consents if c["granteeId"] == hospital.id)

        # Hold the push between its consent check and its first write.
        transaction = superuser_conn.transaction()
        await transaction.start()
        await superuser_conn.execute("LOCK TABLE record IN SHARE MODE")
        push: asyncio.Task[Any] = asyncio.create_task(
            hospital.push("mrn-race", bundle(observation("obs-race")))
        )
        await _until_waiting_on_a_lock(superuser_conn)
        revoke = asyncio.create_task(
            client.delete(f"/v1/consents/{consent_id}", headers=patient.headers)
        )
        await asyncio.sleep(1.0)
        # The revocation must not complete while a push that relies on the consent
        # is still open: it would then land records after the withdrawal.
        revoke_done_during_push = revoke.done()
        await transaction.rollback()
        pushed, revoked = await push, await revoke
        assert not revoke_done_during_push
        assert pushed.status_code == 200, pushed.text
        assert revoked.status_code == 204
        # Both committed, push first: the record exists, and nothing later gets in.
        timeline = (await client.get("/v1/records", headers=patient.headers)).json()
        assert len(timeline["items"]) == 1
        later = await hospital.push("mrn-race", bundle(observation("obs-after")))
        assert later.status_code == 403


async def _until_waiting_on_a_lock(conn) -> None:
    for _ in range(200):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the push never reached the record table")
