"""The operator's use cases: add a hospital, rotate its webhook secret."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from domain.audit.events import PURPOSE_OPERATIONS, AuditEvent
from domain.errors import FieldProblem, InvalidInput
from domain.hospitals.hospital import Hospital, UnknownHospital, WebhookSecret
from domain.hospitals.webhook_signature import new_webhook_secret
from domain.ports import AuditLog, Clock, HospitalStore, UnitOfWork


def _operator_event(action: str, hospital_id: UUID) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="success",
        actor_type="system",
        actor_id="operator-cli",
        patient_id=None,
        resource_type="Organization",
        resource_ids=(str(hospital_id),),
        purpose=PURPOSE_OPERATIONS,
    )


class Hospitals:
    """The operator's use cases."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._hospitals = hospitals
        self._audit = audit
        self._clock = clock

    async def add(self, name: str, city: str | None = None) -> tuple[Hospital, str]:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput(
                "A hospital needs a name of 1 to 200 characters.",
                errors=[FieldProblem("name", "1 to 200 characters")],
            )
        city = city.strip() if city else None
        if city is not None and not 1 <= len(city) <= 100:
            raise InvalidInput(
                "A city has 1 to 100 characters.",
                errors=[FieldProblem("city", "1 to 100 characters")],
            )
        now = self._clock.now()
        hospital = Hospital(id=uuid4(), name=name, created_at=now, city=city or None)
        text, key = new_webhook_secret()
        secret = WebhookSecret(
            id=uuid4(), hospital_id=hospital.id, key=key, created_at=now, retires_at=None
        )
        async with self._unit_of_work() as uow:
            await self._hospitals.add(hospital, secret)
            await self._audit.append(_operator_event("hospital.added", hospital.id))
            await uow.commit()
        return hospital, text

    async def list(self) -> list[Hospital]:
        return await self._hospitals.all()

    async def rotate_secret(self, hospital_id: UUID, grace: timedelta) -> tuple[str, datetime]:
        """A new current secret; the ones live now keep verifying until now + grace."""
        if grace < timedelta(0):
            raise InvalidInput(
                "The grace period cannot be negative.", errors=[FieldProblem("grace", ">= 0")]
            )
        now = self._clock.now()
        text, key = new_webhook_secret()
        async with self._unit_of_work() as uow:
            if await self._hospitals.get(hospital_id) is None:
                raise UnknownHospital(f"No hospital with id {hospital_id}.")
            secret = WebhookSecret(
                id=uuid4(), hospital_id=hospital_id, key=key, created_at=now, retires_at=None
            )
            await self._hospitals.rotate_secret(secret, now + grace)
            await self._audit.append(_operator_event("hospital.secret-rotated", hospital_id))
            await uow.commit()
        return text, now + grace
