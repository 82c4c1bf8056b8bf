"""The operator's rotation of the access-token signing key: a new current key;
tokens signed with the previous one keep verifying until they expire."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from domain.audit.events import PURPOSE_OPERATIONS, AuditEvent
from domain.ports import AuditLog, Clock, SigningKeyStore, UnitOfWork


class RotatedKey(msgspec.Struct, frozen=True):
    kid: str
    retired_kid: str | None


class SigningKeyRotation:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        keys: SigningKeyStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._keys = keys
        self._audit = audit
        self._clock = clock

    async def rotate(self) -> RotatedKey:
        async with self._unit_of_work() as uow:
            kid, retired = await self._keys.rotate(self._clock.now())
            await self._audit.append(
                AuditEvent(
                    action="signing-key.rotated",
                    outcome="success",
                    actor_type="system",
                    actor_id="operator-cli",
                    patient_id=None,
                    resource_type="SigningKey",
                    resource_ids=(kid, *([retired] if retired else [])),
                    purpose=PURPOSE_OPERATIONS,
                )
            )
            await uow.commit()
        return RotatedKey(kid, retired)

    async def revoke(self, kid: str) -> bool:
        """A leaked key: tokens it signed are refused from the next request on.
        False when there is no such unrevoked key (nothing is audited then)."""
        async with self._unit_of_work() as uow:
            if not await self._keys.revoke(kid, self._clock.now()):
                return False
            await self._audit.append(
                AuditEvent(
                    action="signing-key.revoked",
                    outcome="success",
                    actor_type="system",
                    actor_id="operator-cli",
                    patient_id=None,
                    resource_type="SigningKey",
                    resource_ids=(kid,),
                    purpose=PURPOSE_OPERATIONS,
                )
            )
            await uow.commit()
        return True
