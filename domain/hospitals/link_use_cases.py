"""The patient's use cases on hospital links: ask for a code (consenting to the
hospital's pushes), list links, read one, show its code, revoke. Each goes through
the access policy and writes its audit row in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from domain.access import Action, PatientActor, Permit
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.consents.consent import ConsentScope
from domain.errors import Conflict
from domain.hospitals.hospital import UnknownHospital
from domain.hospitals.link_codes import LINK_CODE_TTL, link_code_digest, new_link_code
from domain.hospitals.links import Link, LinkNotFound, LinkNotPending
from domain.ports import AuditLog, Clock, ConsentStore, HospitalStore, LinkStore, UnitOfWork


class PatientLinks:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        links: LinkStore,
        consents: ConsentStore,
        audit: AuditLog,
        clock: Clock,
        code_key: bytes,
    ):
        self._unit_of_work = unit_of_work
        self._hospitals = hospitals
        self._links = links
        self._consents = consents
        self._audit = audit
        self._clock = clock
        self._code_key = code_key

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

    async def create(
        self, patient: PatientActor, hospital_id: UUID, *, context: RequestContext
    ) -> tuple[Link, str]:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "link.created", context)
            if await self._hospitals.get(hospital_id) is None:
                raise UnknownHospital("No hospital with this id.")
            consent = await self._consents.create(
                permit,
                kind="data-source",
                grantee_type="hospital",
                grantee_id=str(hospital_id),
                scope=ConsentScope(),
                start=now,
                # Until the hospital uses the code; completing the link makes the
                # consent open-ended, an unused code lets it lapse with the code.
                end=now + LINK_CODE_TTL,
            )
            link = Link(
                id=uuid4(),
                patient_id=permit.patient_id,
                hospital_id=hospital_id,
                consent_id=consent.id,
                expires_at=now + LINK_CODE_TTL,
                created_at=now,
                patient_ref=None,
                linked_at=None,
                revoked_at=None,
            )
            for _ in range(8):  # a collision among one hospital's pending codes is ~n/2^40
                code = new_link_code()
                digest = link_code_digest(self._code_key, hospital_id, code)
                if await self._links.create(permit, link, digest, code):
                    break
            else:  # pragma: no cover - would take astronomically bad luck
                raise Conflict("Could not allocate a link code; try again.")
            await self._audit.append(permit.event("Consent", str(link.id), str(consent.id)))
            await uow.commit()
        return link, code

    async def list(self, patient: PatientActor, *, context: RequestContext) -> list[Link]:
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "link.list", context)
            links = await self._links.list(permit)
            await self._audit.append(permit.event("Consent", *(str(link.id) for link in links)))
            await uow.commit()
            return links

    async def _refuse_missing(self, uow: UnitOfWork, permit: Permit, link_id: UUID) -> LinkNotFound:
        """Another patient's link, or none: audited in the caller's own history."""
        await self._audit.append(permit.refusal("not-found", "Consent", str(link_id)))
        await uow.commit()
        return LinkNotFound()

    async def get(self, patient: PatientActor, link_id: UUID, *, context: RequestContext) -> Link:
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "link.read", context)
            link = await self._links.get(permit, link_id)
            if link is None:
                raise await self._refuse_missing(uow, permit, link_id)
            await self._audit.append(permit.event("Consent", str(link.id)))
            await uow.commit()
            return link

    async def code(self, patient: PatientActor, link_id: UUID, *, context: RequestContext) -> str:
        """The pending link's code, to show again (as a QR)."""
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "link.read", context)
            link = await self._links.get(permit, link_id)
            if link is None:
                raise await self._refuse_missing(uow, permit, link_id)
            code = (
                await self._links.pending_code(permit, link_id)
                if link.status_at(self._clock.now()) == "pending"
                else None
            )
            if code is None:
                raise LinkNotPending("Only a pending link has a code to show.")
            await self._audit.append(permit.event("Consent", str(link.id)))
            await uow.commit()
            return code

    async def revoke(
        self, patient: PatientActor, link_id: UUID, *, context: RequestContext
    ) -> None:
        """Revokes the link's data-source consent: later pushes are refused,
        records already received stay. Revoking twice is not an error."""
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, patient, "link.revoked", context)
            link = await self._links.get(permit, link_id)
            if link is None:
                raise await self._refuse_missing(uow, permit, link_id)
            if link.revoked_at is None:
                await self._consents.revoke(permit, link.consent_id, now)
                await self._audit.append(
                    permit.event("Consent", str(link.id), str(link.consent_id))
                )
            await uow.commit()
