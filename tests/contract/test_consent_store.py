"""One contract for the consent store: the in-memory fake (tests/fakes.py) and
PostgreSQL. Every method reads and writes only the permit's patient's rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.access import PatientActor, Permit, authorize
from domain.audit.events import RequestContext
from domain.consents.consent import ConsentScope
from domain.ports import ConsentStore
from tests.conftest import register_patient
from tests.fakes import FakeConsentStore

NOW = datetime.now(UTC).replace(microsecond=0)


def permit_of(patient_id: UUID) -> Permit:
    return authorize(
        PatientActor(patient_id), "consent.list", patient_id, now=NOW, context=RequestContext()
    )


@pytest.fixture(params=["fake", "postgres"])
async def store_and_patients(
    request, client, database_dsn
) -> AsyncIterator[tuple[ConsentStore, UUID, UUID]]:
    # Consents hang off real accounts in PostgreSQL: the two patients are made
    # through the public API either way.
    alice = UUID((await register_patient(client)).id)
    bob = UUID((await register_patient(client)).id)
    if request.param == "fake":
        yield FakeConsentStore(), alice, bob
        return
    from infra.pg.consents import PgConsentStore
    from infra.pg.database import Database

    database = Database(database_dsn, min_size=1, max_size=2)
    await database.open()
    try:
        yield PgConsentStore(database), alice, bob
    finally:
        await database.close()


async def grant(store: ConsentStore, patient_id: UUID, grantee: str, end=None):
    return await store.create(
        permit_of(patient_id),
        kind="data-source",
        grantee_type="hospital",
        grantee_id=grantee,
        scope=ConsentScope(),
        start=NOW,
        end=end,
    )


async def test_a_consent_is_the_permits_patients_only(store_and_patients):
    store, alice, bob = store_and_patients
    consent = await grant(store, alice, "h-1")
    assert consent.patient_id == alice and consent.revoked_at is None
    assert await store.get(permit_of(alice), consent.id) == consent
    assert [c.id for c in await store.list(permit_of(alice))] == [consent.id]
    assert await store.get(permit_of(bob), consent.id) is None
    assert await store.list(permit_of(bob)) == []
    assert await store.revoke(permit_of(bob), consent.id, NOW) is None
    assert await store.remove_end(permit_of(bob), consent.id) is None
    assert (await store.get(permit_of(alice), consent.id)).revoked_at is None


async def test_revoking_archives_once(store_and_patients):
    store, alice, _ = store_and_patients
    consent = await grant(store, alice, "h-2")
    revoked = await store.revoke(permit_of(alice), consent.id, NOW + timedelta(minutes=1))
    assert revoked is not None and revoked.revoked_at == NOW + timedelta(minutes=1)
    assert await store.revoke(permit_of(alice), consent.id, NOW + timedelta(minutes=2)) is None
    assert (await store.get(permit_of(alice), consent.id)).revoked_at == revoked.revoked_at
    assert [c.id for c in await store.list(permit_of(alice))] == [consent.id]  # never deleted


async def test_removing_the_end_keeps_it_revocable(store_and_patients):
    store, alice, _ = store_and_patients
    consent = await grant(store, alice, "h-3", end=NOW + timedelta(hours=24))
    opened = await store.remove_end(permit_of(alice), consent.id)
    assert opened is not None and opened.period_end is None
    await store.revoke(permit_of(alice), consent.id, NOW)
    assert await store.remove_end(permit_of(alice), consent.id) is None


async def test_the_consent_relied_on_is_found_by_id_alone(store_and_patients):
    store, alice, _ = store_and_patients
    consent = await grant(store, alice, "h-4")
    assert await store.relied_on(consent.id) == consent
    assert await store.relied_on(uuid4()) is None
