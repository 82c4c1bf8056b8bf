"""The patient's use cases on hospital links."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from domain.audit.events import AuditEvent, RequestContext
from domain.consents.consent import ConsentScope
from domain.errors import Conflict
from domain.hospitals.hospital import UnknownHospital
from domain.hospitals.link_codes import LINK_CODE_TTL, link_code_digest, new_link_code
from domain.hospitals.links import Link, LinkNotFound, LinkNotPending
from domain.ports import AuditLog, Clock, ConsentStore, HospitalStore, LinkStore, UnitOfWork


class PatientLinks:
    """The patient's side: ask for a code (consenting to the hospital's pushes),
    list links, show the code as a QR, revoke."""

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

    def _event(
        self, action: str, patient_id: UUID, link_id: UUID, context: RequestContext
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            outcome="success",
            actor_type="patient",
            actor_id=str(patient_id),
            patient_id=patient_id,
            resource_type="Consent",
            resource_ids=(str(link_id),),
            context=context,
        )

    async def create(
        self, patient_id: UUID, hospital_id: UUID, *, context: RequestContext
    ) -> tuple[Link, str]:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            if await self._hospitals.get(hospital_id) is None:
                raise UnknownHospital("No hospital with this id.")
            consent = await self._consents.create(
                patient_id,
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
                patient_id=patient_id,
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
                if await self._links.create(
                    link, link_code_digest(self._code_key, hospital_id, code), code
                ):
                    break
            else:  # pragma: no cover - would take astronomically bad luck
                raise Conflict("Could not allocate a link code; try again.")
            await self._audit.append(
                self._event("link.created", patient_id, link.id, context).with_resources(
                    "Consent", str(link.id), str(consent.id)
                )
            )
            await uow.commit()
        return link, code

    async def list(self, patient_id: UUID) -> list[Link]:
        async with self._unit_of_work():
            return await self._links.list(patient_id)

    async def _refuse_missing(
        self, uow: UnitOfWork, action: str, patient_id: UUID, link_id: UUID, context: RequestContext
    ) -> LinkNotFound:
        """Another patient's link, or none: audited in the caller's own history."""
        await self._audit.append(
            self._event(action, patient_id, link_id, context).refused("not-found")
        )
        await uow.commit()
        return LinkNotFound()

    async def get(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> Link:
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.read", patient_id, link_id, context)
        return link

    async def code(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> str:
        """The pending link's code, to show again (as a QR)."""
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.read", patient_id, link_id, context)
            if link.status_at(self._clock.now()) != "pending":
                raise LinkNotPending("Only a pending link has a code to show.")
            code = await self._links.pending_code(patient_id, link_id)
        if code is None:
            raise LinkNotPending("Only a pending link has a code to show.")
        return code

    async def revoke(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> None:
        """Revokes the link's data-source consent: later pushes are refused,
        records already received stay. Revoking twice is not an error."""
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.revoked", patient_id, link_id, context)
            if link.revoked_at is None:
                await self._consents.revoke(patient_id, link.consent_id, now)
                await self._audit.append(
                    self._event("link.revoked", patient_id, link.id, context).with_resources(
                        "Consent", str(link.id), str(link.consent_id)
                    )
                )
            await uow.commit()
