"""The consent use cases' rules, with the fakes of tests/fakes.py (no database):
revoking twice is not an error, another patient's consent looks like none, and
each decision is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.access import PatientActor, authorize
from domain.audit.events import RequestContext
from domain.clock import FixedClock
from domain.consents.consent import ConsentScope
from domain.consents.use_cases import PatientConsents
from domain.errors import NotFound
from tests.fakes import FakeAuditLog, FakeConsentStore, FakeUnitOfWork

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CTX = RequestContext(request_id="req-1")


def setup():
    uow, audit, store = FakeUnitOfWork(), FakeAuditLog(), FakeConsentStore()
    return PatientConsents(lambda: uow, store, audit, FixedClock(NOW)), uow, audit, store


async def granted(store, patient_id):
    permit = authorize(PatientActor(patient_id), "consent.list", patient_id, now=NOW, context=CTX)
    return await store.create(
        permit,
        kind="data-source",
        grantee_type="hospital",
        grantee_id="h",
        scope=ConsentScope(),
        start=NOW,
        end=None,
    )


async def test_revoking_twice_returns_the_archived_consent_and_audits_once():
    consents, uow, audit, store = setup()
    alice = PatientActor(uuid4())
    consent = await granted(store, alice.patient_id)
    first = await consents.revoke(alice, consent.id, context=CTX)
    second = await consents.revoke(alice, consent.id, context=CTX)
    assert first.revoked_at == NOW and second == first
    assert [(e.action, e.outcome) for e in audit.events] == [("consent.revoked", "success")]
    assert uow.commits == 2


async def test_another_patients_consent_is_not_found_and_the_refusal_is_audited():
    consents, uow, audit, store = setup()
    consent = await granted(store, uuid4())
    bob = PatientActor(uuid4())
    with pytest.raises(NotFound):
        await consents.revoke(bob, consent.id, context=CTX)
    [event] = audit.events
    assert (event.action, event.outcome, event.reason) == ("consent.revoked", "denied", "not-found")
    assert event.patient_id == bob.patient_id and event.resource_ids == (str(consent.id),)
    assert uow.commits == 1


async def test_listing_audits_the_consents_shown():
    consents, _, audit, store = setup()
    alice = PatientActor(uuid4())
    consent = await granted(store, alice.patient_id)
    assert [c.id for c in await consents.list(alice, context=CTX)] == [consent.id]
    [event] = audit.events
    assert event.action == "consent.list" and event.resource_ids == (str(consent.id),)
