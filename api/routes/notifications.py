"""The patient's inbox and notification preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import get, post, put
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.current_patient import CurrentPatient
from api.deps import InboxDep, RequestContextDep
from api.page_cursors import decode_cursor, encode_cursor
from domain.access import PatientActor
from domain.notifications.model import InboxCursor, Notification, Preferences
from domain.notifications.texts import render


class NotificationOut(msgspec.Struct, rename="camel"):
    id: UUID
    kind: str
    title: str
    body: str
    params: dict[str, Any]
    created_at: datetime
    read: bool
    read_at: datetime | None

    @classmethod
    def of(cls, item: Notification, locale: str) -> NotificationOut:
        title, body = render(item.kind, item.params, locale)
        return cls(
            id=item.id,
            kind=item.kind,
            title=title,
            body=body,
            params=item.params,
            created_at=item.visible_at,
            read=item.read_at is not None,
            read_at=item.read_at,
        )


class NotificationPage(msgspec.Struct, rename="camel"):
    items: list[NotificationOut]
    next_cursor: str | None


class ReadAllOut(msgspec.Struct, rename="camel"):
    marked: int


@get(
    "/v1/notifications",
    operation_id="listNotifications",
    summary="The patient's notifications, newest first",
    description="Keyset-paginated: pass `nextCursor` back as `cursor`. Texts are in the "
    "patient's language (English or Simplified Chinese).",
    tags=["notifications"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def list_notifications(
    inbox: InboxDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    unread: Annotated[bool, QueryParameter(description="only unread ones")] = False,
    cursor: Annotated[
        str | None, QueryParameter(description="nextCursor from the previous page", max_length=200)
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=100)] = 20,
) -> NotificationPage:
    items, locale = await inbox.list(
        PatientActor(patient.patient_id),
        patient.patient_id,
        unread_only=unread,
        after=decode_cursor(cursor, InboxCursor) if cursor else None,
        limit=limit + 1,
        context=context,
    )
    page = items[:limit]
    return NotificationPage(
        items=[NotificationOut.of(item, locale) for item in page],
        next_cursor=(
            encode_cursor(InboxCursor(visible_at=page[-1].visible_at, id=page[-1].id))
            if len(items) > limit
            else None
        ),
    )


@post(
    "/v1/notifications/{notification_id:uuid}/read",
    operation_id="readNotification",
    summary="Mark one notification read",
    tags=["notifications"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
    status_code=204,
)
async def read_notification(
    inbox: InboxDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    notification_id: Annotated[UUID, PathParameter(description="the notification's id")],
) -> None:
    await inbox.mark_read(
        PatientActor(patient.patient_id), patient.patient_id, notification_id, context=context
    )


@post(
    "/v1/notifications/read-all",
    operation_id="readAllNotifications",
    summary="Mark every notification read",
    tags=["notifications"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
    status_code=200,
)
async def read_all_notifications(
    inbox: InboxDep, patient: CurrentPatient, context: RequestContextDep
) -> ReadAllOut:
    marked = await inbox.mark_all_read(
        PatientActor(patient.patient_id), patient.patient_id, context=context
    )
    return ReadAllOut(marked=marked)


@get(
    "/v1/me/notification-preferences",
    operation_id="getNotificationPreferences",
    summary="Which notifications the patient gets, quiet hours, refill lead days",
    tags=["notifications"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def get_notification_preferences(
    inbox: InboxDep, patient: CurrentPatient, context: RequestContextDep
) -> Preferences:
    return await inbox.preferences(
        PatientActor(patient.patient_id), patient.patient_id, context=context
    )


@put(
    "/v1/me/notification-preferences",
    operation_id="putNotificationPreferences",
    summary="Replace the notification preferences",
    description="`kinds` turns kinds on or off (all on by default); quiet hours are local "
    "times in the patient's time zone: push waits until they end, the inbox gets it at once. "
    "`abnormalResults: delayed` holds results flagged abnormal for `abnormalDelayHours`.",
    tags=["notifications"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def put_notification_preferences(
    inbox: InboxDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    data: JSONBody[Preferences],
) -> Preferences:
    return await inbox.save_preferences(
        PatientActor(patient.patient_id), patient.patient_id, data, context=context
    )
