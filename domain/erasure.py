"""Erasing an account: the patient's right to leave and take nothing behind.

Records, versions, consents, shares, links, tokens and files go. The audit rows
stay (they are the record of who saw what, and the log is append-only), now
pointing at an id nobody can resolve to a person: pseudonymised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from domain.access import PatientActor, authorize
from domain.audit import AuditLog, RequestContext
from domain.clock import Clock
from domain.errors import NotFound
from domain.ports import UnitOfWork


class AccountEraser(Protocol):
    async def erase(self, patient_id: UUID) -> bool:
        """Deletes the account and everything that hangs off it; False if absent."""
        ...


class FileEraser(Protocol):
    async def delete_prefix(self, prefix: str) -> None: ...


def patient_files_prefix(patient_id: UUID) -> str:
    return f"patients/{patient_id}/"


class AccountErasure:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        accounts: AccountEraser,
        files: FileEraser,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._accounts = accounts
        self._files = files
        self._audit = audit
        self._clock = clock

    async def erase(self, patient: PatientActor, *, context: RequestContext) -> None:
        async with self._unit_of_work() as uow:
            permit = authorize(
                patient,
                "account.erased",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            await self._audit.append(permit.event("Patient", str(permit.patient_id)))
            if not await self._accounts.erase(permit.patient_id):
                raise NotFound("No such account.")
            await uow.commit()
        # Object storage is not part of the transaction: files go once the rows
        # are gone, so a failure here leaves orphaned files, never a record
        # pointing at a missing file.
        await self._files.delete_prefix(patient_files_prefix(patient.patient_id))
