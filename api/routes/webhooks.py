"""Hospital deliveries (Standard Webhooks): `patient.linked` completes a link,
`records.push` delivers a FHIR R4 Bundle for a linked (or soon linked) patient.

Before a byte of the body is read: a per-address limit, the hospital (unknown:
404) and the signature headers. The signature covers the exact bytes received, so
the body is hashed as it streams in (under the size limit), verified, and only then
measured and decoded. A redelivery (same webhook-id, same body) gets the stored reply."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import Parameter

from api.deps import HospitalWebhooksDep, RequestContextDep, WebhookFloodGuardDep
from api.problems import PROBLEM_MEDIA_TYPE, domain_error_handler
from domain.errors import DomainError, split_validation_error
from domain.hospitals.deliveries import (
    STORED_REFUSALS,
    DeliveryOutcome,
    LinkCompleted,
    LinkRequest,
    PushParked,
    PushRequest,
)
from domain.json_depth import check_json_depth
from domain.records.record import IngestResult

MAX_WEBHOOK_BODY = 20 * 1024 * 1024
_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Decimals as Decimal, so a bundle's numbers are stored digit for digit.


class LinkCompletedOut(msgspec.Struct, rename="camel"):
    status: str
    parked_applied: int


class PushParkedOut(msgspec.Struct, rename="camel", omit_defaults=True):
    status: str
    # Elements FHIR R4 does not define, kept as received: named so the sender can fix them.
    unknown_elements: list[str] = []


class IngestOut(msgspec.Struct, rename="camel", omit_defaults=True):
    created: int
    updated: int
    unchanged: int
    stale: int
    unknown_elements: list[str] = []


# The body, as hospitals send it: {type, data}, a tagged union on `type`.
PatientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
CodeText = Annotated[str, msgspec.Meta(max_length=32)]


class PatientLinkedData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    code: CodeText
    patient_ref: PatientRef


class RecordsPushData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    patient_ref: PatientRef
    bundle: dict[str, Any]


class PatientLinkedEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="patient.linked"
):
    data: PatientLinkedData


class RecordsPushEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="records.push"
):
    data: RecordsPushData


WebhookEvent = PatientLinkedEvent | RecordsPushEvent


class _KeptReply(msgspec.Struct, frozen=True):
    """The answer to a delivery as kept for redeliveries (opaque to the domain)."""

    status: int
    media_type: str
    body: bytes


def _request_of(event: WebhookEvent) -> LinkRequest | PushRequest:
    match event:
        case PatientLinkedEvent(data=data):
            return LinkRequest(code=data.code, patient_ref=data.patient_ref)
        case RecordsPushEvent(data=data):
            return PushRequest(patient_ref=data.patient_ref, bundle=data.bundle)


def _success(outcome: DeliveryOutcome) -> _KeptReply:
    body: Any
    status = 200
    match outcome:
        case LinkCompleted(parked_applied=n):
            body = LinkCompletedOut(status="linked", parked_applied=n)
        case PushParked():
            body = PushParkedOut(status="parked", unknown_elements=[*outcome.unknown_elements])
            status = 202
        case IngestResult():
            body = IngestOut(
                outcome.created,
                outcome.updated,
                outcome.unchanged,
                outcome.stale,
                unknown_elements=[*outcome.unknown_elements],
            )
    return _KeptReply(status, "application/json", msgspec.json.encode(body))


def _refusal(request: Request[Any, Any, Any], error: DomainError) -> _KeptReply:
    response = domain_error_handler(request, error)
    return _KeptReply(
        response.status_code, PROBLEM_MEDIA_TYPE, msgspec.json.encode(response.content)
    )


def _response(kept: _KeptReply) -> Response[bytes]:
    return Response(kept.body, status_code=kept.status, media_type=kept.media_type)


_decoder = msgspec.json.Decoder(WebhookEvent, float_hook=Decimal)
_kept_decoder = msgspec.json.Decoder(_KeptReply)


def _decode(body: bytes) -> WebhookEvent:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = split_validation_error(message)[1] or "body"
        raise ValidationException(
            "The delivery does not have the expected shape.",
            extra=[{"key": field, "message": message}],
        ) from None
    except msgspec.DecodeError:
        raise ValidationException("The body is malformed JSON.") from None


class PatientErasedResponse(ClientException):
    """Documents the 410 answer (the patient erased their account) in OpenAPI."""

    status_code = 410


@post(
    "/v1/hospitals/{hospital_id:uuid}/webhook",
    operation_id="receiveHospitalWebhook",
    summary="A hospital's signed delivery: patient.linked or records.push",
    description=(
        "An unknown hospital id is 404 before the body is read. Standard Webhooks: "
        "`webhook-id`, `webhook-timestamp` (within 5 minutes) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`). Body "
        "`{type, data}`: `patient.linked` `{code, patientRef}` or `records.push` "
        "`{patientRef, bundle}`. A push for a patientRef not linked yet is validated and "
        "parked (202), then applied when the link completes. A push for a revoked link "
        "is refused with 403; a push for the patientRef of a patient who erased their "
        "account, with 410 (never stored). The same webhook-id with the same body gets the first reply; "
        "with another body, 409. Bodies are limited to 20 MiB."
    ),
    tags=["webhooks"],
    raises=[
        ValidationException,
        NotAuthorizedException,
        NotFoundException,
        PermissionDeniedException,
        ClientException,
        TooManyRequestsException,
        PatientErasedResponse,
    ],
    request_max_body_size=MAX_WEBHOOK_BODY,
    status_code=200,
)
async def receive_webhook(
    request: Request[Any, Any, Any],
    hospital_webhooks: HospitalWebhooksDep,
    webhook_flood_guard: WebhookFloodGuardDep,
    context: RequestContextDep,
    hospital_id: Annotated[
        UUID, Parameter(description="the hospital's id, as given by the operator")
    ],
) -> Response[bytes]:
    # Nothing of the body is read until the sender has passed the per-address
    # limit, the hospital is known (404) and the signature headers are sound.
    webhook_flood_guard.hit(context.client_address)
    headers = {name: value for name in _SIGNATURE_HEADERS if (value := request.headers.get(name))}
    check = await hospital_webhooks.begin(hospital_id, headers)
    # The signature is computed as the body streams in; the stream stops at the
    # size limit (413, before reading when Content-Length says so).
    chunks = []
    async for chunk in request.stream():
        check.update(chunk)
        chunks.append(chunk)
    body = b"".join(chunks)
    delivery = await hospital_webhooks.admit(hospital_id, check)
    check_json_depth(body)
    # Decoded and validated before the delivery's transaction opens.
    prepared = await hospital_webhooks.prepare(_request_of(_decode(body)))
    async with hospital_webhooks.delivery(
        hospital_id, delivery, body, prepared, context=context
    ) as claimed:
        if claimed.replay is not None:
            return _response(_kept_decoder.decode(claimed.replay))
        try:
            kept = _success(await claimed.run())
        except STORED_REFUSALS as refusal:
            kept = _refusal(request, refusal)
        await claimed.keep(msgspec.json.encode(kept))
    return _response(kept)
