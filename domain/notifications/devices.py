"""Push registrations: a browser's Web Push subscription, an APNs or FCM token.

A Web Push endpoint is a URL phr will call: an SSRF path. By default only https
endpoints on the public push services' hosts are accepted; the operator may
allow others by origin pattern (tests, private deployments)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import msgspec

from domain.access import Actor
from domain.audit.events import RequestContext
from domain.errors import FieldProblem, InvalidInput, NotFound
from domain.notifications.inbox import permitted
from domain.notifications.model import Device, PushKind
from domain.ports import AuditLog, Clock, DeviceStore, UnitOfWork

# The public push services (FCM, Mozilla autopush, Apple, Microsoft WNS).
PUBLIC_PUSH_HOSTS = ("fcm.googleapis.com", "updates.push.services.mozilla.com")
PUBLIC_PUSH_SUFFIXES = (".push.apple.com", ".notify.windows.com", ".push.services.mozilla.com")


class PushKindNotConfigured(InvalidInput):
    pass


class EndpointRefused(InvalidInput):
    pass


class DeviceNotFound(NotFound):
    pass


class OriginPattern(msgspec.Struct, frozen=True):
    scheme: str
    host: str  # may start with "*." for any subdomain
    port: str  # a number, or "*"

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        match = re.fullmatch(r"(https?)://(\*\.)?([A-Za-z0-9.\-\[\]:]+?)(?::(\d+|\*))?/?", text)
        if match is None:
            raise ValueError(f"not an origin pattern: {text!r}")
        scheme, star, host, port = match.groups()
        default = "443" if scheme == "https" else "80"
        return cls(scheme, (star or "") + host.lower(), port or default)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or (self.port != "*" and int(self.port) != port):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


def endpoint_allowed(endpoint: str, allowed: Collection[OriginPattern]) -> bool:
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.scheme not in ("https", "http"):
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    if any(p.matches(parts.scheme, host, port) for p in allowed):
        return True
    return (
        parts.scheme == "https"
        and port == 443
        and (host in PUBLIC_PUSH_HOSTS or host.endswith(PUBLIC_PUSH_SUFFIXES))
    )


class Registration(msgspec.Struct, frozen=True):
    kind: PushKind
    address: str
    p256dh: str | None = None
    auth: str | None = None
    name: str | None = None


class Devices:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        store: DeviceStore,
        audit: AuditLog,
        clock: Clock,
        *,
        configured: Collection[str],
        allowed_origins: Collection[OriginPattern] = (),
        web_push_key: Callable[[], str] = lambda: "",
    ):
        self.web_push_key = web_push_key  # the VAPID public key browsers subscribe with
        self._unit_of_work = unit_of_work
        self._store = store
        self._audit = audit
        self._clock = clock
        self._configured = frozenset(configured)
        self._allowed = tuple(allowed_origins)

    def _check(self, registration: Registration) -> None:
        if registration.kind not in self._configured:
            raise PushKindNotConfigured(
                f"Push through {registration.kind} is not configured on this server.",
                errors=[FieldProblem("kind", "not configured")],
            )
        if registration.kind == "webpush" and not endpoint_allowed(
            registration.address, self._allowed
        ):
            raise EndpointRefused(
                "This push endpoint is not accepted: it must be https on a public push service.",
                errors=[FieldProblem("subscription.endpoint", "not an accepted push service")],
            )

    async def register(
        self, actor: Actor, patient_id: UUID, registration: Registration, *, context: RequestContext
    ) -> Device:
        self._check(registration)
        async with permitted(
            self._unit_of_work,
            self._audit,
            self._clock,
            actor,
            "device.registered",
            patient_id,
            context,
        ) as (uow, permit):
            device = await self._store.add(
                permit,
                Device(
                    id=uuid4(),
                    patient_id=permit.patient_id,
                    kind=registration.kind,
                    address=registration.address,
                    p256dh=registration.p256dh,
                    auth=registration.auth,
                    name=registration.name,
                    created_at=self._clock.now(),
                ),
            )
            await self._audit.append(permit.event("Device", str(device.id)))
            await uow.commit()
            return device

    async def list(
        self, actor: Actor, patient_id: UUID, *, context: RequestContext
    ) -> list[Device]:
        async with permitted(
            self._unit_of_work, self._audit, self._clock, actor, "device.list", patient_id, context
        ) as (uow, permit):
            devices = await self._store.list(permit)
            await uow.commit()
            return devices

    async def remove(
        self, actor: Actor, patient_id: UUID, device_id: UUID, *, context: RequestContext
    ) -> None:
        async with permitted(
            self._unit_of_work,
            self._audit,
            self._clock,
            actor,
            "device.removed",
            patient_id,
            context,
        ) as (uow, permit):
            if not await self._store.remove(permit, device_id):
                await self._audit.append(permit.refusal("not-found", "Device", str(device_id)))
                await uow.commit()
                raise DeviceNotFound("No device with this id.")
            await self._audit.append(permit.event("Device", str(device_id)))
            await uow.commit()
