"""Push registrations: Web Push subscriptions, APNs and FCM tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import delete, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.params import JSONBody, PathParameter

from api.current_patient import CurrentPatient
from api.deps import DevicesDep, RequestContextDep
from domain.access import PatientActor
from domain.notifications.devices import Registration
from domain.notifications.model import Device

Base64Url = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]+={0,2}$", max_length=200)]


class SubscriptionKeys(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    p256dh: Base64Url
    auth: Base64Url


class PushSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """The browser's PushSubscription.toJSON()."""

    endpoint: Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]
    keys: SubscriptionKeys
    expiration_time: int | float | None = None


DeviceName = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
DeviceToken = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=r"^[\x21-\x7e]+$")]


# One shape per kind, told apart by `kind` (a tagged union, `oneOf` in the
# contract): a Web Push registration carries the browser's subscription and no
# token, an APNs or FCM one the device token and no subscription.
class _DeviceIn(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    rename="camel",
    kw_only=True,
    tag_field="kind",
):
    name: DeviceName | None = None


class WebPushDeviceIn(_DeviceIn, tag="webpush"):
    subscription: PushSubscription


class ApnsDeviceIn(_DeviceIn, tag="apns"):
    token: DeviceToken


class FcmDeviceIn(_DeviceIn, tag="fcm"):
    token: DeviceToken


DeviceIn = WebPushDeviceIn | ApnsDeviceIn | FcmDeviceIn


class DeviceOut(msgspec.Struct, rename="camel"):
    id: UUID
    kind: str
    name: str | None
    created_at: datetime
    endpoint_origin: str | None

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        origin = None
        if device.kind == "webpush":
            from urllib.parse import urlsplit

            parts = urlsplit(device.address)
            origin = f"{parts.scheme}://{parts.netloc}"
        return cls(device.id, device.kind, device.name, device.created_at, origin)


class WebPushKeyOut(msgspec.Struct, rename="camel"):
    application_server_key: str


def _registration(data: DeviceIn) -> Registration:
    if isinstance(data, WebPushDeviceIn):
        return Registration(
            kind="webpush",
            address=data.subscription.endpoint,
            p256dh=data.subscription.keys.p256dh,
            auth=data.subscription.keys.auth,
            name=data.name,
        )
    kind = "apns" if isinstance(data, ApnsDeviceIn) else "fcm"
    return Registration(kind=kind, address=data.token, name=data.name)


@post(
    "/v1/devices",
    operation_id="registerDevice",
    summary="Register a device for push (Web Push subscription, APNs or FCM token)",
    description="A kind the server is not configured for is refused (422). Web Push "
    "endpoints must be https on a public push service unless the operator allows others.",
    tags=["notifications"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
    status_code=201,
)
async def register_device(
    devices: DevicesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    data: JSONBody[DeviceIn],
) -> DeviceOut:
    device = await devices.register(
        PatientActor(patient.patient_id), patient.patient_id, _registration(data), context=context
    )
    return DeviceOut.of(device)


@get(
    "/v1/devices",
    operation_id="listDevices",
    summary="The patient's push registrations",
    tags=["notifications"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_devices(
    devices: DevicesDep, patient: CurrentPatient, context: RequestContextDep
) -> list[DeviceOut]:
    devices = await devices.list(
        PatientActor(patient.patient_id), patient.patient_id, context=context
    )
    return [DeviceOut.of(d) for d in devices]


@delete(
    "/v1/devices/{device_id:uuid}",
    operation_id="removeDevice",
    summary="Remove a push registration",
    tags=["notifications"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
    status_code=204,
)
async def remove_device(
    devices: DevicesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    device_id: Annotated[UUID, PathParameter(description="the registration's id")],
) -> None:
    await devices.remove(
        PatientActor(patient.patient_id), patient.patient_id, device_id, context=context
    )


@get(
    "/v1/devices/webpush-key",
    operation_id="getWebPushKey",
    summary="The VAPID public key a browser subscribes with (applicationServerKey)",
    tags=["notifications"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def get_webpush_key(devices: DevicesDep, patient: CurrentPatient) -> WebPushKeyOut:
    return WebPushKeyOut(application_server_key=devices.web_push_key())
