"""Medications as the patient sees them, and the scheduled refill scan. Both
compute from the stored MedicationRequests and MedicationDispenses on demand:
a new version of a request replaces the old in the record store, so the next
computation uses it and nothing is duplicated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from domain.access import AccessRefused, ActionNotAllowed, Actor, Permit, SystemActor, authorize
from domain.audit.events import NO_REQUEST, RequestContext
from domain.medications.refill import Medication, SourcedResource, compute_medications
from domain.notifications import rules
from domain.notifications.inbox import permitted
from domain.notifications.model import Recipient
from domain.notifications.notifier import Notifier
from domain.ports import (
    AuditLog,
    Clock,
    HospitalStore,
    NotificationStore,
    PrescribedPatients,
    RecordStore,
    UnitOfWork,
)

MEDICATION_TYPES = ["MedicationRequest", "MedicationDispense"]


async def _medications(
    records: RecordStore, permit: Permit, recipient: Recipient, now: datetime
) -> list[Medication]:
    rows = await records.of_types(permit, MEDICATION_TYPES)
    resources = [SourcedResource(r.record_id, r.source.hospital_id, r.resource) for r in rows]
    zone = recipient.zone
    return compute_medications(
        [r for r in resources if r.resource.get("resourceType") == "MedicationRequest"],
        [r for r in resources if r.resource.get("resourceType") == "MedicationDispense"],
        today=now.astimezone(zone).date(),
        zone=zone,
        lead_days=recipient.preferences.refill_lead_days,
    )


class PatientMedications:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        records: RecordStore,
        profiles: NotificationStore,
        hospitals: HospitalStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._records = records
        self._profiles = profiles
        self._hospitals = hospitals
        self._audit = audit
        self._clock = clock

    async def list(
        self, actor: Actor, patient_id: UUID, *, context: RequestContext
    ) -> tuple[list[Medication], dict[UUID, str]]:
        """The medications, newest first, and the names of the prescribing hospitals."""
        async with permitted(
            self._unit_of_work,
            self._audit,
            self._clock,
            actor,
            "medication.list",
            patient_id,
            context,
        ) as (uow, permit):
            (recipient,) = await self._profiles.recipients([permit])
            medications = await _medications(self._records, permit, recipient, self._clock.now())
            await self._audit.append(
                permit.event("MedicationRequest", *(str(m.record_id) for m in medications))
            )
            names: dict[UUID, str] = {}
            for hospital_id in {m.hospital_id for m in medications if m.hospital_id}:
                hospital = await self._hospitals.get(hospital_id)
                if hospital is not None:
                    names[hospital_id] = hospital.name
            await uow.commit()
            return medications, names


class RefillScan:
    """Refill-due and renewal reminders for every patient with an active
    prescription. Idempotent: each reminder's dedupe key names its occurrence,
    so a second run (or two workers at once) adds nothing."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        patients: PrescribedPatients,
        records: RecordStore,
        profiles: NotificationStore,
        notifier: Notifier,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._patients = patients
        self._records = records
        self._profiles = profiles
        self._notifier = notifier
        self._audit = audit
        self._clock = clock

    async def run(self, page_size: int = 500) -> int:
        """Scans every such patient, one transaction each; returns how many
        notifications it added."""
        added = 0
        after: UUID | None = None
        while True:
            page = await self._patients.with_active_orders(after, page_size)
            for patient_id in page:
                added += await self._scan_one(patient_id)
            if len(page) < page_size:
                return added
            after = page[-1]

    async def _scan_one(self, patient_id: UUID) -> int:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            try:
                permit = authorize(
                    SystemActor("refill-scan"),
                    "medication.list",
                    patient_id,
                    now=now,
                    context=NO_REQUEST,
                )
            except (AccessRefused, ActionNotAllowed):
                return 0
            recipients = await self._profiles.recipients([permit])
            if not recipients:
                return 0
            recipient = recipients[0]
            medications = await _medications(self._records, permit, recipient, now)
            reminders = rules.refill_reminders(
                medications,
                today=now.astimezone(recipient.zone).date(),
                lead_days=recipient.preferences.refill_lead_days,
            )
            added = await self._notifier.emit(((patient_id, r) for r in reminders), now=now)
            if added:
                # Audited when the scan tells the patient something: a scan that
                # finds nothing new leaves no trace in the patient's history.
                ids = {r.params["medicationId"] for r in reminders}
                await self._audit.append(permit.event("MedicationRequest", *sorted(ids)))
            await uow.commit()
            return len(added)
