"""GET /v1/imaging: a hospital's studies with their PACS links, for the patient only."""

from __future__ import annotations

import os
from uuid import UUID

from tests.records_support import bundle, grant_hospital, push

STUDY = {
    "resourceType": "ImagingStudy",
    "id": "ct-chest-1",
    "status": "available",
    "subject": {"reference": "Patient/mrn-1"},
    "started": "2025-03-14T10:20:00Z",
    "identifier": [
        {
            "system": "urn:dicom:uid",
            "value": "urn:oid:2.16.124.113543.6003.1154777499.30246.19789.3503430045",
        }
    ],
    "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
    "description": "CT chest without contrast",
    "numberOfSeries": 1,
    "numberOfInstances": 212,
    "endpoint": [{"reference": "Endpoint/wado"}, {"reference": "Endpoint/viewer"}],
    "series": [
        {
            "uid": "2.16.124.113543.6003.2588828330.45298.17418.2723805630",
            "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
            "numberOfInstances": 212,
            "bodySite": {
                "system": "http://snomed.info/sct",
                "code": "51185008",
                "display": "Thoracic structure",
            },
        }
    ],
}
WADO = {
    "resourceType": "Endpoint",
    "id": "wado",
    "status": "active",
    "connectionType": {
        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
        "code": "dicom-wado-rs",
    },
    "payloadType": [{"text": "DICOM"}],
    "address": "https://pacs.hospital.example/dicomweb",
}
VIEWER = {
    "resourceType": "Endpoint",
    "id": "viewer",
    "status": "active",
    "connectionType": {
        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
        "code": "ihe-iid",
    },
    "payloadType": [{"text": "viewer"}],
    "address": "https://viewer.hospital.example/study/2.16.124",
}


async def test_a_pushed_study_lists_with_its_dicomweb_and_viewer_links(
    client, services, patient, other_patient
):
    hospital = await grant_hospital(services, UUID(patient.id))
    await push(services, UUID(patient.id), hospital, bundle(STUDY, WADO, VIEWER))

    response = await client.get("/v1/imaging", headers=patient.headers)
    assert response.status_code == 200
    [study] = response.json()
    assert study["modalities"] == ["CT"] and study["bodySites"] == ["Thoracic structure"]
    assert study["description"] == "CT chest without contrast"
    assert (study["seriesCount"], study["instanceCount"]) == (1, 212)
    assert study["date"].startswith("2025-03-14T10:20:00")
    assert study["studyUid"] == "2.16.124.113543.6003.1154777499.30246.19789.3503430045"
    # A consent planted for an id with no hospital row: no name to give.
    assert study["source"] == {
        "kind": "hospital",
        "hospitalId": str(hospital),
        "hospitalName": None,
    }
    assert [(link["kind"], link["url"]) for link in study["links"]] == [
        ("dicomweb", "https://pacs.hospital.example/dicomweb"),
        ("viewer", "https://viewer.hospital.example/study/2.16.124"),
    ]
    # Endpoints are supporting resources: not on the timeline; the study is.
    timeline = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert [item["type"] for item in timeline] == ["ImagingStudy"]

    assert (await client.get("/v1/imaging", headers=other_patient.headers)).json() == []
    audit = (await client.get("/v1/audit?limit=50", headers=patient.headers)).json()["items"]
    assert ("imaging.list", "success") in [(i["action"], i["outcome"]) for i in audit]


async def test_a_hospital_study_gets_the_external_viewer_over_the_hospitals_dicomweb(
    database_dsn, data_dir, services
):
    """phr does not proxy a hospital's PACS: the external viewer template is filled
    with the hospital's own DICOMweb address."""
    from urllib.parse import quote

    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from infra.settings import load_settings
    from tests.conftest import UNTHROTTLED_REGISTRATION, register_patient

    template = "https://ohif.example/viewer?StudyInstanceUIDs={studyUid}&url={dicomwebUrl}"
    settings = load_settings(
        {
            "DATABASE_URL": database_dsn,
            "PHR_DATA_DIR": str(data_dir),
            "PHR_PUBLIC_URL": "http://testserver.local",
            "PHR_DICOM_VIEWER_URL": template,
            # The run's signing keys are sealed with the suite's one secrets key.
            "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
            **UNTHROTTLED_REGISTRATION,
        }
    )
    async with AsyncTestClient(
        app=create_app(settings), base_url="http://testserver.local"
    ) as client:
        patient = await register_patient(client)
        hospital = await grant_hospital(services, UUID(patient.id))
        await push(services, UUID(patient.id), hospital, bundle(STUDY, WADO, VIEWER))
        [study] = (await client.get("/v1/imaging", headers=patient.headers)).json()
    uid = "2.16.124.113543.6003.1154777499.30246.19789.3503430045"
    wado = "https://pacs.hospital.example/dicomweb"
    assert [(link["kind"], link["url"]) for link in study["links"]] == [
        ("dicomweb", wado),
        ("viewer", "https://viewer.hospital.example/study/2.16.124"),
        (
            "viewer",
            f"https://ohif.example/viewer?StudyInstanceUIDs={uid}&url={quote(wado, safe='')}",
        ),
    ]
    assert study["series"] == [] and study["patientAliases"] == []
