"""An audited read costs one or two round trips to PostgreSQL, counted on the
serving pool's own connections (asyncpg's query logger sees every statement the
app sends, BEGIN and COMMIT included): the record, the account check and the
audit row are one statement; the imaging list adds one read of the series phr
stores, and only for a patient who stores studies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import register_patient
from tests.integration.test_uploads import DICOM, Stack, complete, open_stack, put_file
from tests.records_support import bundle, grant_hospital, push
from tests.s3_server import S3Server

STUDY = {
    "resourceType": "ImagingStudy",
    "id": "ct-1",
    "status": "available",
    "started": "2025-03-14T10:20:00Z",
    "numberOfSeries": 1,
    "numberOfInstances": 12,
    "subject": {"reference": "Patient/p"},
}


@pytest.fixture
async def local(database_dsn: str, data_dir: Path, s3_server: S3Server) -> AsyncIterator[Stack]:
    async with open_stack("local", database_dsn, data_dir, s3_server) as opened:
        yield opened


@asynccontextmanager
async def statements_sent(stack: Stack) -> AsyncIterator[list[str]]:
    """Every statement the app sends while the block runs, on any connection it
    takes from its pool (with `async with` or with `await`)."""
    pool = stack.client.app.state.services.database.pool
    sent: list[str] = []
    touched: list[Any] = []
    acquire = pool.acquire

    def log(query: Any) -> None:
        sent.append(" ".join(query.query.split()))

    def logging(proxy: Any) -> Any:
        # The pool hands out a proxy that forgets its connection on release; the
        # logger is removed from the connection itself once the block ends.
        proxy.add_query_logger(log)
        touched.append(proxy._con)
        return proxy

    class LoggedAcquire:
        def __init__(self, *args: Any, **kwargs: Any):
            self._taking = acquire(*args, **kwargs)

        async def __aenter__(self) -> Any:
            return logging(await self._taking.__aenter__())

        async def __aexit__(self, *exc: Any) -> Any:
            return await self._taking.__aexit__(*exc)

        def __await__(self) -> Any:
            return logging((yield from self._taking.__await__()))

    pool.acquire = LoggedAcquire
    try:
        yield sent
    finally:
        del pool.acquire  # the instance attribute: the class's method is back
        for conn in touched:
            conn.remove_query_logger(log)


async def audit_rows(stack: Stack, patient: Any, action: str) -> list[dict]:
    response = await stack.client.get("/v1/audit?limit=200", headers=patient.headers)
    assert response.status_code == 200, response.text
    return [item for item in response.json()["items"] if item["action"] == action]


async def test_a_record_read_and_a_timeline_page_are_one_round_trip_each(local, services):
    patient = await register_patient(local.client)
    hospital = await grant_hospital(services, UUID(patient.id))
    await push(services, UUID(patient.id), hospital, bundle(STUDY))
    [item] = (await local.client.get("/v1/records", headers=patient.headers)).json()["items"]

    async with statements_sent(local) as sent:
        response = await local.client.get(f"/v1/records/{item['id']}", headers=patient.headers)
    assert response.status_code == 200, response.text
    assert len(sent) == 1, sent

    async with statements_sent(local) as sent:
        response = await local.client.get("/v1/records", headers=patient.headers)
    assert response.status_code == 200 and len(response.json()["items"]) == 1
    assert len(sent) == 1, sent


async def test_the_imaging_list_of_hospital_studies_is_one_round_trip(local, services):
    patient = await register_patient(local.client)
    hospital = await grant_hospital(services, UUID(patient.id))
    await push(services, UUID(patient.id), hospital, bundle(STUDY))
    await local.client.get("/v1/imaging", headers=patient.headers)  # names the hospital once

    async with statements_sent(local) as sent:
        response = await local.client.get("/v1/imaging", headers=patient.headers)
    assert response.status_code == 200, response.text
    [study] = response.json()
    assert study["source"]["kind"] == "hospital" and study["instanceCount"] == 12
    assert len(sent) == 1, sent
    assert "INSERT INTO audit_event" in sent[0]
    listed = await audit_rows(local, patient, "imaging.list")
    assert [(row["outcome"], row["resourceIds"]) for row in listed] == [
        ("success", [study["recordId"]])
    ] * 2


async def test_the_imaging_list_with_stored_studies_is_two_round_trips(local):
    patient = await register_patient(local.client)
    started = await put_file(local, patient, "CT_small.dcm", "application/dicom", DICOM)
    done = await complete(local, patient, started["id"])
    assert done.status_code == 201, done.text

    async with statements_sent(local) as sent:
        response = await local.client.get("/v1/imaging", headers=patient.headers)
    assert response.status_code == 200, response.text
    [study] = response.json()
    assert study["recordId"] == done.json()["id"]
    assert [series["modality"] for series in study["series"]] == ["CT"]
    assert {link["kind"] for link in study["links"]} == {"dicomweb", "viewer"}
    # The audited read first (committed on its own), then the stored series.
    assert len(sent) == 2, sent
    assert "INSERT INTO audit_event" in sent[0] and "imaging_series" in sent[1]


async def test_the_imaging_list_refuses_an_erased_account_and_a_signed_out_session(local):
    patient = await register_patient(local.client)
    started = await put_file(local, patient, "CT_small.dcm", "application/dicom", DICOM)
    assert (await complete(local, patient, started["id"])).status_code == 201
    other = await register_patient(local.client)
    assert (await local.client.get("/v1/imaging", headers=other.headers)).json() == []

    signed_out = await register_patient(local.client)
    logout = await local.client.post(
        "/v1/auth/logout",
        json={"refreshToken": signed_out.tokens["refreshToken"]},
        headers=signed_out.headers,
    )
    assert logout.status_code in (200, 204), logout.text
    refused = await local.client.get("/v1/imaging", headers=signed_out.headers)
    assert refused.status_code == 401, refused.text

    erased = await local.client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert erased.status_code == 204, erased.text
    # The access token is still unexpired and remembered: the listing's own
    # statement finds the account gone, writes nothing and shows nothing.
    response = await local.client.get("/v1/imaging", headers=patient.headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
