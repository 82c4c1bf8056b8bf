"""The access policy, table-driven, with no database."""

from __future__ import annotations

import pathlib
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from domain.access import (
    AccessRefused,
    ActionNotAllowed,
    HospitalActor,
    PatientActor,
    Permit,
    ShareRecipient,
    SystemActor,
    authorize,
)
from domain.audit.events import RequestContext
from domain.consents.consent import Consent, ConsentScope

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CTX = RequestContext(client_address="203.0.113.9", user_agent="test", request_id="req-1")
ALICE = uuid4()
BOB = uuid4()
HOSPITAL = uuid4()
SHARE = uuid4()


def consent(**overrides) -> Consent:
    base = dict(
        id=uuid4(),
        patient_id=ALICE,
        kind="data-source",
        grantee_type="hospital",
        grantee_id=str(HOSPITAL),
        scope=ConsentScope(),
        period_start=NOW - timedelta(days=1),
        period_end=None,
        revoked_at=None,
        created_at=NOW - timedelta(days=1),
    )
    base.update(overrides)
    return Consent(**base)


def share_consent(**overrides) -> Consent:
    return consent(
        kind="share",
        grantee_type="share",
        grantee_id=str(SHARE),
        scope=ConsentScope(resource_types=("Observation",)),
        period_end=NOW + timedelta(hours=1),
        **overrides,
    )


def test_patient_may_read_own_record_and_the_permit_carries_the_success_event():
    permit = authorize(PatientActor(ALICE), "record.read", ALICE, now=NOW, context=CTX)
    assert permit.patient_id == ALICE
    event = permit.event("Observation", "r1")
    assert (event.action, event.outcome, event.actor_type, event.actor_id) == (
        "record.read",
        "success",
        "patient",
        str(ALICE),
    )
    assert event.resource_ids == ("r1",) and event.context == CTX and event.purpose == "PATRQT"


def test_another_patient_is_refused_as_not_found_and_audited_in_the_callers_chain():
    with pytest.raises(AccessRefused) as refused:
        authorize(PatientActor(BOB), "record.read", ALICE, now=NOW, context=CTX)
    assert refused.value.audit.outcome == "denied"
    assert refused.value.audit.reason == "other-patient"
    assert refused.value.audit.patient_id == BOB


@pytest.mark.parametrize(
    ("case", "consent_value", "reason"),
    [
        ("no consent", None, "no-consent"),
        ("revoked", consent(revoked_at=NOW - timedelta(minutes=1)), "consent-revoked"),
        ("expired", consent(period_end=NOW - timedelta(seconds=1)), "consent-expired"),
        ("not started", consent(period_start=NOW + timedelta(hours=1)), "consent-not-started"),
        ("other hospital", consent(grantee_id=str(uuid4())), "no-consent"),
        ("other patient's consent", consent(patient_id=BOB), "no-consent"),
        ("a share consent", share_consent(), "no-consent"),
    ],
)
def test_hospital_ingest_needs_a_live_data_source_consent(case, consent_value, reason):
    with pytest.raises(AccessRefused) as refused:
        authorize(
            HospitalActor(HOSPITAL),
            "record.ingest",
            ALICE,
            now=NOW,
            consent=consent_value,
            context=CTX,
        )
    assert refused.value.audit.reason == reason, case
    assert refused.value.audit.actor_type == "hospital"


def test_hospital_with_live_consent_may_ingest_but_not_read():
    permit = authorize(
        HospitalActor(HOSPITAL), "record.ingest", ALICE, now=NOW, consent=consent(), context=CTX
    )
    assert permit.patient_id == ALICE
    with pytest.raises(ActionNotAllowed):
        authorize(
            HospitalActor(HOSPITAL), "record.read", ALICE, now=NOW, consent=consent(), context=CTX
        )


def test_share_recipient_is_bounded_by_scope_and_expiry():
    permit = authorize(
        ShareRecipient(SHARE, "Dr. Who"),
        "record.list",
        ALICE,
        now=NOW,
        consent=share_consent(),
        context=CTX,
    )
    assert permit.scope.resource_types == ("Observation",)
    assert permit.audit.purpose == "TREAT"
    with pytest.raises(AccessRefused):
        authorize(
            ShareRecipient(SHARE, "Dr. Who"),
            "record.list",
            ALICE,
            now=NOW + timedelta(hours=2),
            consent=share_consent(),
            context=CTX,
        )
    with pytest.raises(ActionNotAllowed):
        authorize(
            ShareRecipient(SHARE, "Dr. Who"),
            "export.created",
            ALICE,
            now=NOW,
            consent=share_consent(),
            context=CTX,
        )


def test_a_share_recipient_reads_imaging_only_while_the_share_consent_holds():
    """The viewer a share links to: imaging.read on the share's consent, ended by
    its revocation or expiry like every other look at the share."""
    recipient = ShareRecipient(SHARE, "Dr. Who")
    imaging = msgspec.structs.replace(
        share_consent(), scope=ConsentScope(resource_types=("ImagingStudy",))
    )
    permit = authorize(recipient, "imaging.read", ALICE, now=NOW, consent=imaging, context=CTX)
    assert permit.scope.resource_types == ("ImagingStudy",)
    assert permit.event("ImagingStudy", "1.2.3").actor_id == f"{SHARE} Dr. Who"
    for now, used in (
        (NOW, msgspec.structs.replace(imaging, revoked_at=NOW - timedelta(minutes=1))),
        (NOW + timedelta(hours=2), imaging),
    ):
        with pytest.raises(AccessRefused):
            authorize(recipient, "imaging.read", ALICE, now=now, consent=used, context=CTX)


def test_system_jobs_cannot_erase_or_export():
    with pytest.raises(ActionNotAllowed):
        authorize(SystemActor("refills"), "account.erased", ALICE, now=NOW, context=CTX)
    assert (
        authorize(SystemActor("refills"), "record.list", ALICE, now=NOW, context=CTX).patient_id
        == ALICE
    )


def test_a_permit_cannot_be_built_outside_the_policy():
    with pytest.raises(TypeError):
        Permit(
            object(),
            actor=PatientActor(ALICE),
            action="record.read",
            patient_id=ALICE,
            scope=ConsentScope(),
            audit=None,
        )  # type: ignore[arg-type]


def test_no_module_constructs_a_permit_except_the_policy():
    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("api", "domain", "infra"):
        for path in (root / folder).rglob("*.py"):
            if path.relative_to(root).as_posix() == "domain/access.py":
                continue
            if re.search(r"\bPermit\(", path.read_text()):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
