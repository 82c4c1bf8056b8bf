"""A hospital as the tests see it: added through the operator CLI's function,
signing its deliveries as tests/webhook_signing.py does (the independent
`standardwebhooks` package)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from api.cli.hospitals import add_hospital
from domain.ports import Clock
from tests.webhook_signing import signed_headers


class Hospital:
    def __init__(self, client, hospital_id: str, secret: str, clock: Clock | None = None):
        self.client = client
        self.id = hospital_id
        self.secret = secret
        self.clock = clock

    @property
    def url(self) -> str:
        return f"/v1/hospitals/{self.id}/webhook"

    def sign(
        self,
        body: bytes,
        *,
        msg_id: str | None = None,
        at: datetime | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        at = at or (self.clock.now() if self.clock else None)
        return signed_headers(secret or self.secret, body, msg_id=msg_id, at=at)

    async def send_raw(self, body: bytes, **sign: Any):
        return await self.client.post(self.url, content=body, headers=self.sign(body, **sign))

    async def send(self, event_type: str, data: dict[str, Any], **sign: Any):
        return await self.send_raw(json.dumps({"type": event_type, "data": data}).encode(), **sign)

    async def link(self, code: str, patient_ref: str, **sign: Any):
        return await self.send("patient.linked", {"code": code, "patientRef": patient_ref}, **sign)

    async def push(self, patient_ref: str, bundle: dict[str, Any], **sign: Any):
        return await self.send(
            "records.push", {"patientRef": patient_ref, "bundle": bundle}, **sign
        )


async def new_hospital(
    client, settings, *, name: str = "St. Elsewhere", clock: Clock | None = None
) -> Hospital:
    """Added the way the operator does it (`phr hospital add`), in-process."""
    created = await add_hospital(settings.database_url, settings, name, clock=clock)
    assert set(created) == {"id", "name", "webhookSecret"} and created["name"] == name
    return Hospital(client, created["id"], created["webhookSecret"], clock)


async def new_link(client, patient, hospital: Hospital) -> dict[str, Any]:
    response = await client.post(
        "/v1/links", json={"hospitalId": hospital.id}, headers=patient.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def linked(client, patient, hospital: Hospital, patient_ref: str) -> dict[str, Any]:
    link = await new_link(client, patient, hospital)
    response = await hospital.link(link["code"], patient_ref)
    assert response.status_code == 200, response.text
    return link
