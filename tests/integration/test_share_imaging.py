"""Imaging in a share (issue 13, item 5), over real HTTP: the bundle a doctor
decrypts carries each series' preview and, for a study phr stores, a link to the
built-in viewer. The link opens a DICOMweb session for the recipient who names
themselves, audited as that recipient's access, reaching that study only, and
ending with the share (revoked: 404; expired: 401)."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.dicom_cd import DicomCd
from tests.imaging_support import import_cd, live_server, register, upload
from tests.share_support import decrypt, in_days, parse_shlink

PNG_MAGIC_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n")[:8]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("phr-share-imaging")


@pytest.fixture(scope="module")
def server(database_dsn: str, data_root: Path) -> Iterator[str]:
    with live_server(database_dsn, data_root) as base:
        yield base


@pytest.fixture(scope="module")
def cd() -> DicomCd:
    return DicomCd(instances=2)


@pytest.fixture(scope="module")
def patient(server: str, cd: DicomCd) -> dict:
    with httpx.Client(base_url=server, timeout=60) as http:
        headers = register(http)
        [study] = import_cd(http, headers, cd)
        me = http.get("/v1/me", headers=headers).json()
    return {"headers": headers, "study": study, "id": me["id"]}


@pytest.fixture(scope="module")
def stranger_instance(server: str) -> dict:
    """Another patient's study (one file uploaded on its own)."""
    other = DicomCd(instances=1)
    ds = other.datasets[0]
    data = other.files()[ds.SOPInstanceUID]
    with httpx.Client(base_url=server, timeout=60) as http:
        headers = register(http)
        done = upload(http, headers, "IM0001.dcm", "application/dicom", data)
        assert done.status_code < 300, done.text
    return {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance": ds.SOPInstanceUID,
    }


def _open_share(http: httpx.Client, share: dict, recipient: str) -> list[dict]:
    """As a doctor's viewer: resolve the manifest, decrypt with jwcrypto."""
    payload = parse_shlink(share["shlink"])
    manifest = http.post(payload["url"], json={"recipient": recipient})
    assert manifest.status_code == 200, manifest.text
    [file] = manifest.json()["files"]
    _, plaintext = decrypt(file["embedded"], payload["key"])
    bundle = json.loads(plaintext)
    return bundle["entry"]


def _viewer_link(entries: list[dict], study_uid: str) -> tuple[dict, list[dict], str]:
    """The shared ImagingStudy, its preview Media and its viewer Endpoint's address."""
    by_url = {e["fullUrl"]: e["resource"] for e in entries}
    [(url, study)] = [
        (e["fullUrl"], e["resource"])
        for e in entries
        if e["resource"]["resourceType"] == "ImagingStudy"
        and e["resource"]["identifier"][0]["value"] == f"urn:oid:{study_uid}"
    ]
    media = [
        r
        for r in by_url.values()
        if r["resourceType"] == "Media" and {"reference": url} in r["partOf"]
    ]
    [endpoint] = [by_url[ref["reference"]] for ref in study["endpoint"]]
    assert endpoint["resourceType"] == "Endpoint"
    assert endpoint["connectionType"]["code"] == "ihe-iid"
    return study, media, endpoint["address"]


def _share_token(address: str) -> str:
    return parse_qs(address.split("#", 1)[1])["share"][0]


def test_a_share_carries_previews_and_a_viewer_link_audited_as_the_recipient(
    server: str, cd: DicomCd, patient: dict, stranger_instance: dict, data_root: Path
) -> None:
    headers = patient["headers"]
    listed = {s["seriesUid"]: s for s in patient["study"]["series"]}
    with httpx.Client(base_url=server, timeout=60) as http:
        share = http.post(
            "/v1/shares", json={"expiresAt": in_days(1), "label": "Scans"}, headers=headers
        ).json()
        entries = _open_share(http, share, "Dr. Lee")

        # Every series' preview, inside the bundle, decoding at the preview's size.
        study, media, address = _viewer_link(entries, cd.study_uid)
        assert study["numberOfSeries"] == len(cd.series_counts) == len(media)
        for m in media:
            series_uid = m["identifier"][0]["value"].removeprefix("urn:oid:")
            image = Image.open(io.BytesIO(base64.b64decode(m["content"]["data"])))
            assert image.format == "PNG" and m["content"]["contentType"] == "image/png"
            expected = (listed[series_uid]["width"], listed[series_uid]["height"])
            assert image.size == (m["width"], m["height"]) == expected
        assert address.startswith(f"{server}/imaging/viewer#study={cd.study_uid}&share=")

        # A snapshot keeps only ciphertext: no preview in the clear on disk.
        stored = data_root / "files" / "patients" / patient["id"] / "shares" / share["id"]
        blob = stored.read_bytes()
        assert blob.count(b".") == 4 and PNG_MAGIC_B64 not in blob and b"\x89PNG" not in blob

        # The link alone opens nothing: a recipient must name themselves.
        link = _share_token(address)
        alone = http.get(f"/v1/dicomweb/t/{link}/studies/{cd.study_uid}/series")
        assert alone.status_code == 401
        opened = http.post(
            "/v1/dicomweb/share-sessions", json={"link": link, "recipient": "Dr. Lee"}
        )
        assert opened.status_code == 201, opened.text
        session = opened.json()
        assert session["studyUid"] == cd.study_uid
        assert datetime.fromisoformat(session["expiresAt"]) <= datetime.now(UTC) + timedelta(
            hours=1, minutes=1
        )
        base = session["dicomwebUrl"]
        accesses = http.get(f"/v1/shares/{share['id']}/accesses", headers=headers).json()
        assert [(a["kind"], a["recipient"]) for a in accesses["items"]] == [
            ("viewer", "Dr. Lee"),
            ("manifest", "Dr. Lee"),
        ]

    # An independent DICOMweb client through the session: that study, all of it.
    client = DICOMwebClient(url=base)
    assert len(client.search_for_series(study_instance_uid=cd.study_uid)) == len(media)
    assert [s["0020000D"]["Value"] for s in client.search_for_studies()] == [[cd.study_uid]]
    ds = cd.datasets[0]
    metadata = client.retrieve_instance_metadata(
        cd.study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert metadata["00080018"]["Value"] == [ds.SOPInstanceUID]
    with httpx.Client(timeout=60) as http:
        rendered = http.get(
            f"{base}/studies/{cd.study_uid}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/frames/1/rendered"
        )
        assert rendered.status_code == 200
        assert Image.open(io.BytesIO(rendered.content)).size == (ds.Columns, ds.Rows)
        # Another patient's study, series and instance through the session: 404.
        st, se, i = (
            stranger_instance["study"],
            stranger_instance["series"],
            stranger_instance["instance"],
        )
        for route in (
            f"/studies/{st}/series",
            f"/studies/{st}/series/{se}/instances",
            f"/studies/{st}",
            f"/studies/{st}/series/{se}/instances/{i}/metadata",
            f"/studies/{st}/series/{se}/instances/{i}/frames/1/rendered",
            f"/studies/{st}/series/{se}/instances/{i}/frames/1",
            f"/studies/{st}/series/{se}/thumbnail",
        ):
            refused = http.get(base + route)
            assert refused.status_code == 404, route
            assert refused.headers["content-type"].startswith("application/problem+json")

    # The patient sees the viewer's reads as Dr. Lee's, for the share.
    with httpx.Client(base_url=server, timeout=60) as http:
        audit = http.get("/v1/audit?limit=200", headers=headers).json()["items"]
    reads = [e for e in audit if e["action"] == "imaging.read"]
    assert reads and all(
        e["actorType"] == "share"
        and e["actorId"] == f"{share['id']} Dr. Lee"
        and e["purpose"] == "TREAT"
        for e in reads
    )
    assert any(e["outcome"] == "success" and cd.study_uid in e["resourceIds"] for e in reads)
    assert sum(e["outcome"] == "denied" for e in reads) >= 7

    # Revoked: the session and the link end at once.
    with httpx.Client(base_url=server, timeout=60) as http:
        assert http.delete(f"/v1/shares/{share['id']}", headers=headers).status_code == 204
        gone = http.get(f"{base}/studies/{cd.study_uid}/series")
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("application/problem+json")
        again = http.post(
            "/v1/dicomweb/share-sessions", json={"link": link, "recipient": "Dr. Lee"}
        )
        assert again.status_code == 404
        assert again.headers["content-type"].startswith("application/problem+json")


def test_the_viewer_link_ends_when_the_share_expires(
    server: str, cd: DicomCd, patient: dict
) -> None:
    headers = patient["headers"]
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    with httpx.Client(base_url=server, timeout=60) as http:
        share = http.post(
            "/v1/shares", json={"expiresAt": expires.isoformat()}, headers=headers
        ).json()
        _, _, address = _viewer_link(_open_share(http, share, "Dr. Kim"), cd.study_uid)
        link = _share_token(address)
        session = http.post(
            "/v1/dicomweb/share-sessions", json={"link": link, "recipient": "Dr. Kim"}
        ).json()
        assert datetime.fromisoformat(session["expiresAt"]) <= expires
        base = session["dicomwebUrl"]
        assert http.get(f"{base}/studies/{cd.study_uid}/series").status_code == 200
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.5)
        ended = http.get(f"{base}/studies/{cd.study_uid}/series")
        assert ended.status_code == 401
        assert ended.headers["content-type"].startswith("application/problem+json")
        late = http.post("/v1/dicomweb/share-sessions", json={"link": link, "recipient": "Dr. Kim"})
        assert late.status_code == 401


def test_a_long_term_share_rebuilds_its_previews_and_link(
    server: str, cd: DicomCd, patient: dict
) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        share = http.post(
            "/v1/shares",
            json={
                "expiresAt": in_days(30),
                "longTerm": True,
                "scope": {"resourceTypes": ["ImagingStudy"]},
            },
            headers=patient["headers"],
        ).json()
        assert "L" in parse_shlink(share["shlink"])["flag"]
        entries = _open_share(http, share, "Dr. Ode")
        _, media, address = _viewer_link(entries, cd.study_uid)
        assert len(media) == len(cd.series_counts)
        opened = http.post(
            "/v1/dicomweb/share-sessions",
            json={"link": _share_token(address), "recipient": "Dr. Ode"},
        )
        assert opened.status_code == 201


def test_previews_past_the_share_budget_are_left_out_and_the_viewer_link_stays(
    server: str, cd: DicomCd, patient: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import domain.sharing.imaging

    # A budget smaller than any preview: none is carried, the study and its link are.
    monkeypatch.setattr(domain.sharing.imaging, "MAX_SHARE_PREVIEW_BYTES", 1)
    with httpx.Client(base_url=server, timeout=60) as http:
        share = http.post(
            "/v1/shares", json={"expiresAt": in_days(1), "label": "Many scans"},
            headers=patient["headers"],
        ).json()  # fmt: skip
        entries = _open_share(http, share, "Dr. Lee")
    study, media, address = _viewer_link(entries, cd.study_uid)
    assert media == []
    assert study["numberOfSeries"] == len(cd.series_counts)
    assert address.startswith(f"{server}/imaging/viewer#study={cd.study_uid}&share=")
