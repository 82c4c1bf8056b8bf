"""Use cases on the patient's consents: list them, revoke one."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from domain.access import Action, PatientActor, Permit
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.consents.consent import Consent
from domain.errors import NotFound
from domain.ports import AuditLog, Clock, ConsentStore, UnitOfWork


class PatientConsents:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        consents: ConsentStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._consents = consents
        self._audit = audit
        self._clock = clock

    async def list(self, patient: PatientActor, *, context: RequestContext) -> list[Consent]:
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "consent.list", context)
            consents = await self._consents.list(permit)
            await self._audit.append(permit.event("Consent", *(str(c.id) for c in consents)))
            await uow.commit()
            return consents

    async def revoke(
        self, patient: PatientActor, consent_id: UUID, *, context: RequestContext
    ) -> Consent:
        """Archives the consent. Whatever depends on it (a hospital link, a share)
        checks the consent on every use, so revocation takes effect at once."""
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "consent.revoked", context)
            revoked = await self._consents.revoke(permit, consent_id, self._clock.now())
            if revoked is None:
                existing = await self._consents.get(permit, consent_id)
                if existing is not None:
                    # Revoking twice is not an error: the patient's intent holds.
                    await uow.commit()
                    return existing
                await self._audit.append(permit.refusal("not-found", "Consent", str(consent_id)))
                await uow.commit()
                raise NotFound("No consent with this id.")
            await self._audit.append(permit.event("Consent", str(consent_id)))
            await uow.commit()
            return revoked

    async def _authorize(
        self, uow: UnitOfWork, patient: PatientActor, action: Action, context: RequestContext
    ) -> Permit:
        return await authorize_audited(
            uow,
            self._audit,
            patient,
            action,
            patient.patient_id,
            now=self._clock.now(),
            context=context,
        )
