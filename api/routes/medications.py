"""The patient's medications: computed from the prescriptions and dispenses
hospitals send, with refill state, run-out date and refills remaining."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import PatientMedicationsDep, RequestContextDep
from domain.access import PatientActor
from domain.medications.refill import Medication


class MedicationOut(msgspec.Struct, rename="camel"):
    id: UUID
    name: str | None
    code: str | None
    status: str
    state: str
    fills_used: int
    refills_allowed: int
    refills_remaining: int
    last_filled_on: date | None
    run_out_on: date | None
    next_fill_earliest: date | None
    valid_until: date | None
    authored_on: date | None
    prescribing_hospital_id: UUID | None
    prescribing_hospital: str | None

    @classmethod
    def of(cls, medication: Medication, hospitals: dict[UUID, str]) -> MedicationOut:
        return cls(
            id=medication.record_id,
            name=medication.name,
            code=medication.code,
            status=medication.status,
            state=medication.state,
            fills_used=medication.fills_used,
            refills_allowed=medication.refills_allowed,
            refills_remaining=medication.refills_remaining,
            last_filled_on=medication.last_filled_on,
            run_out_on=medication.run_out_on,
            next_fill_earliest=medication.next_fill_earliest,
            valid_until=medication.valid_until,
            authored_on=medication.authored_on,
            prescribing_hospital_id=medication.hospital_id,
            prescribing_hospital=hospitals.get(medication.hospital_id)
            if medication.hospital_id
            else None,
        )


class MedicationList(msgspec.Struct, rename="camel"):
    items: list[MedicationOut]


@get(
    "/v1/medications",
    operation_id="listMedications",
    summary="Medications with state, run-out date, refills remaining and prescribing hospital",
    description="State is one of on-track, refill-due, renewal-needed, expired, stopped; dates "
    "are days in the patient's time zone.",
    tags=["medications"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_medications(
    patient_medications: PatientMedicationsDep, patient: CurrentPatient, context: RequestContextDep
) -> MedicationList:
    medications, names = await patient_medications.list(
        PatientActor(patient.patient_id), patient.patient_id, context=context
    )
    return MedicationList(items=[MedicationOut.of(m, names) for m in medications])
