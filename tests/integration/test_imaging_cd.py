"""A patient's CD, end to end over real HTTP: uploaded as one zip, imported into
one study, served over DICOMweb to an independent client (dicomweb-client),
rendered, previewed, and refused when hostile."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from infra.dicom.header import BULK_DATA_THRESHOLD, instance_base
from tests.dicom_cd import COMPRESSED, DicomCd
from tests.imaging_support import live_server, register, upload, wait_for_import, wait_for_previews

OHIF = "https://ohif.example/viewer?StudyInstanceUIDs={studyUid}&dicomweb={dicomwebUrl}"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("phr-imaging")


@pytest.fixture(scope="module")
def server(database_dsn: str, data_root: Path) -> Iterator[str]:
    with live_server(database_dsn, data_root, {"PHR_DICOM_VIEWER_URL": OHIF}) as base:
        yield base


@pytest.fixture(scope="module")
def cd() -> DicomCd:
    return DicomCd()


@pytest.fixture(scope="module")
def imported(server: str, cd: DicomCd) -> dict:
    """One patient who uploaded the CD (with its DICOMDIR) once."""
    archive, files = cd.zip()
    with httpx.Client(base_url=server, timeout=60) as http:
        headers = register(http)
        done = upload(http, headers, "cd.zip", "application/zip", archive)
        assert done.status_code == 202, done.text
        assert done.json()["status"] == "processing"
        status = wait_for_import(http, headers, done.json()["id"])
        assert status["status"] == "done", status
        studies = wait_for_previews(http, headers, len(cd.series_counts))
    return {
        "headers": headers,
        "status": status,
        "studies": studies,
        "files": files,
        "archive": archive,
    }


def test_a_cd_becomes_one_study_with_its_series(server: str, cd: DicomCd, imported: dict) -> None:
    status = imported["status"]
    assert status["status"] == "done", status
    assert status["instances"] == 44 and status["duplicates"] == 0
    # README.TXT and the DICOMDIR are not images: ignored and counted.
    assert status["ignored"] == 2
    assert status["studyUids"] == [cd.study_uid]
    [study] = imported["studies"]
    assert study["studyUid"] == cd.study_uid
    assert study["seriesCount"] == 6 and study["instanceCount"] == 44
    assert {s["seriesUid"]: s["instanceCount"] for s in study["series"]} == cd.series_counts
    assert study["patientAliases"] == ["HOSP-A-1", "HOSP-B-7"]
    links = {link["name"]: link["url"] for link in study["links"]}
    base = links["DICOMweb (this study)"]
    assert base.startswith(f"{server}/v1/dicomweb/t/")
    assert links["Viewer"].startswith(f"{server}/imaging/viewer#study={cd.study_uid}&token=")
    # The external viewer reaches phr's DICOMweb through the study's token.
    assert links["External viewer"] == OHIF.replace("{studyUid}", cd.study_uid).replace(
        "{dicomwebUrl}", quote(base, safe="")
    )
    with httpx.Client(base_url=server) as http:
        timeline = http.get("/v1/records?type=ImagingStudy", headers=imported["headers"]).json()
    assert len(timeline["items"]) == 1


def test_the_same_cd_again_changes_nothing(server: str, cd: DicomCd, imported: dict) -> None:
    headers = imported["headers"]
    with httpx.Client(base_url=server, timeout=60) as http:
        before = http.get("/v1/imaging", headers=headers).json()
        record_before = http.get(f"/v1/records/{before[0]['recordId']}", headers=headers).json()
        done = upload(http, headers, "cd-again.zip", "application/zip", imported["archive"])
        status = wait_for_import(http, headers, done.json()["id"])
        assert status["status"] == "done"
        assert status["instances"] == 0 and status["duplicates"] == 44
        after = http.get("/v1/imaging", headers=headers).json()
        record_after = http.get(f"/v1/records/{after[0]['recordId']}", headers=headers).json()
    assert [(s["studyUid"], s["instanceCount"], s["seriesCount"]) for s in after] == [
        (s["studyUid"], s["instanceCount"], s["seriesCount"]) for s in before
    ]
    assert record_after["version"] == record_before["version"]


def _client(server: str, headers: dict[str, str]) -> DICOMwebClient:
    return DICOMwebClient(url=f"{server}/v1/dicomweb", headers=headers)


def test_dicomweb_client_searches_and_retrieves_byte_identical(
    server: str, cd: DicomCd, imported: dict
) -> None:
    client = _client(server, imported["headers"])
    [study] = client.search_for_studies(search_filters={"StudyDate": "20240101-20241231"})
    assert study["0020000D"]["Value"] == [cd.study_uid]
    assert study["00201208"]["Value"] == [44]
    assert client.search_for_studies(search_filters={"StudyDate": "19990101-19991231"}) == []
    series = client.search_for_series(study_instance_uid=cd.study_uid)
    assert len(series) == 6
    ct = client.search_for_series(
        study_instance_uid=cd.study_uid, search_filters={"Modality": "CT"}
    )
    assert len(ct) == 1 and ct[0]["00201209"]["Value"] == [20]
    instances = client.search_for_instances(study_instance_uid=cd.study_uid, fields=["PatientID"])
    assert len(instances) == 44 and all("00100020" in i for i in instances)

    files = imported["files"]
    retrieved = client.retrieve_study(cd.study_uid)
    assert len(retrieved) == 44
    # dicomweb-client parses each part; the raw part bytes are compared below.
    assert {ds.SOPInstanceUID for ds in retrieved} == set(files)
    for uid, data in list(files.items())[:50]:
        ds = pydicom.dcmread(io.BytesIO(data))
        raw = httpx.get(
            f"{server}/v1/dicomweb/studies/{cd.study_uid}/series/{ds.SeriesInstanceUID}"
            f"/instances/{uid}",
            headers=imported["headers"],
        )
        assert raw.headers["content-type"].startswith('multipart/related; type="application/dicom"')
        boundary = raw.headers["content-type"].split("boundary=")[1]
        part = raw.content.split(f"--{boundary}".encode())[1]
        body = part.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")]
        assert body == data
        # Metadata: what pydicom itself makes of the file, bulk data as URIs.
        uri = instance_base(f"{server}/v1/dicomweb", cd.study_uid, ds.SeriesInstanceUID, uid)
        expected = ds.to_json_dict(
            bulk_data_threshold=BULK_DATA_THRESHOLD,
            bulk_data_element_handler=lambda el, uri=uri: f"{uri}/bulkdata/{el.tag:08X}",
            suppress_invalid_tags=True,
        )
        got = client.retrieve_instance_metadata(cd.study_uid, ds.SeriesInstanceUID, uid)
        expected = json.loads(json.dumps(expected))
        assert {k for k in got if got[k] != expected.get(k)} == set()
        assert got == expected
        # The pixel data's BulkDataURI answers with the pixel data as encoded.
        [bulk] = client.retrieve_bulkdata(got["7FE00010"]["BulkDataURI"])
        assert bulk == ds.PixelData


def test_dicomweb_client_searches_every_series_and_instance(
    server: str, cd: DicomCd, imported: dict
) -> None:
    client = _client(server, imported["headers"])
    series = client.search_for_series()
    assert {s["0020000E"]["Value"][0] for s in series} == set(cd.series_counts)
    assert all(s["0020000D"]["Value"] == [cd.study_uid] for s in series)
    [ct] = client.search_for_series(search_filters={"Modality": "CT"})
    assert ct["00201209"]["Value"] == [20]
    instances = client.search_for_instances(fields=["PatientID"])
    assert len(instances) == 44 and all("00100020" in i for i in instances)
    one = cd.datasets[0]
    [found] = client.search_for_instances(search_filters={"SOPInstanceUID": one.SOPInstanceUID})
    assert found["0020000E"]["Value"] == [one.SeriesInstanceUID]
    assert len(client.search_for_instances(search_filters={"Modality": "MR"}, limit=5)) == 5
    with httpx.Client(base_url=server) as http:
        # A UID is a part of the path: never taken from a query parameter.
        refused = http.get(
            f"/v1/dicomweb/studies/{cd.study_uid}/metadata?series={one.SeriesInstanceUID}",
            headers=imported["headers"],
        )
        assert refused.status_code == 422


def _by_name(cd: DicomCd, description: str) -> pydicom.Dataset:
    return next(ds for ds in cd.datasets if ds.SeriesDescription == description)


def test_frames_come_as_stored_or_decoded_per_ps3_18(
    server: str, cd: DicomCd, imported: dict
) -> None:
    from pydicom.encaps import generate_frames

    client = _client(server, imported["headers"])
    native = cd.datasets[0]  # CT, explicit VR little endian
    uids = (native.StudyInstanceUID, native.SeriesInstanceUID, native.SOPInstanceUID)
    [frame] = client.retrieve_instance_frames(*uids, frame_numbers=[1])
    assert frame == native.PixelData
    [frame] = client.retrieve_instance_frames(
        *uids, frame_numbers=[1], media_types=("application/octet-stream",)
    )
    assert frame == native.PixelData

    jpeg = _by_name(cd, "JPEG baseline")
    uids = (jpeg.StudyInstanceUID, jpeg.SeriesInstanceUID, jpeg.SOPInstanceUID)
    stored = next(generate_frames(jpeg.PixelData, number_of_frames=1))
    [frame] = client.retrieve_instance_frames(*uids, frame_numbers=[1], media_types=("image/jpeg",))
    assert frame == stored and frame[:2] == b"\xff\xd8"

    # Only octet-stream accepted: compressed frames are decoded (lossless: exact).
    for description in ("JPEG-LS", "RLE", "JPEG 2000"):
        ds = _by_name(cd, description)
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        [frame] = client.retrieve_instance_frames(
            *uids, frame_numbers=[1], media_types=("application/octet-stream",)
        )
        assert frame == ds.pixel_array.astype(ds.pixel_array.dtype.newbyteorder("<")).tobytes()

    with httpx.Client(base_url=server) as http:
        base = f"/v1/dicomweb/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}"
        raw = http.get(f"{base}/frames/1", headers=imported["headers"])
        assert raw.status_code == 200
        assert raw.headers["content-type"].startswith('multipart/related; type="image/jp2"')
        refused = http.get(
            f"{base}/frames/1",
            headers=imported["headers"] | {"Accept": 'multipart/related; type="image/jpeg"'},
        )
        assert refused.status_code == 406
        assert refused.headers["content-type"].startswith("application/problem+json")
        for bad, status in (("2", 404), ("0", 400), ("1,x", 400)):
            response = http.get(f"{base}/frames/{bad}", headers=imported["headers"])
            assert response.status_code == status, bad
            assert response.headers["content-type"].startswith("application/problem+json")


def test_rendered_frames_and_previews_decode_at_their_size(
    server: str, cd: DicomCd, imported: dict
) -> None:
    headers = imported["headers"]
    by_series = {}
    for ds in cd.datasets:
        by_series.setdefault(ds.SeriesInstanceUID, ds)
    with httpx.Client(base_url=server, timeout=60) as http:
        [study] = http.get("/v1/imaging", headers=headers).json()
        previews = {s["seriesUid"]: s for s in study["series"]}
        for series_uid, ds in by_series.items():
            size = (int(ds.Columns), int(ds.Rows))
            for accept, kind in (("image/png", "PNG"), ("image/jpeg", "JPEG")):
                response = http.get(
                    f"/v1/dicomweb/studies/{cd.study_uid}/series/{series_uid}/instances/"
                    f"{ds.SOPInstanceUID}/frames/1/rendered",
                    headers=headers | {"Accept": accept},
                )
                assert response.status_code == 200, (ds.file_meta.TransferSyntaxUID, response.text)
                image = Image.open(io.BytesIO(response.content))
                assert (image.format, image.size) == (kind, size), ds.file_meta.TransferSyntaxUID
            preview = previews[series_uid]
            # The preview URL carries its own token: no header needed (an <img> can use it).
            fetched = http.get(preview["previewUrl"])
            assert fetched.status_code == 200
            image = Image.open(io.BytesIO(fetched.content))
            assert image.size == size == (preview["width"], preview["height"])
    syntaxes = {str(ds.file_meta.TransferSyntaxUID) for ds in by_series.values()}
    assert {syntax for _, syntax, _ in COMPRESSED} <= syntaxes


def test_the_viewer_token_reaches_its_study_only(server: str, cd: DicomCd, imported: dict) -> None:
    [study] = imported["studies"]
    base = next(link["url"] for link in study["links"] if link["kind"] == "dicomweb")
    client = DICOMwebClient(url=base)
    assert len(client.search_for_series(study_instance_uid=cd.study_uid)) == 6
    other = "1.2.3.4.5"
    with httpx.Client() as http:
        assert http.get(f"{base}/studies/{other}/series").status_code == 404
        tampered = base[:-3] + ("AAA" if not base.endswith("AAA") else "BBB")
        assert http.get(f"{tampered}/studies/{cd.study_uid}/series").status_code == 401


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("IMAGES/link")
    info.external_attr = 0o120777 << 16
    return info


HOSTILE = {
    "bomb": [("IM1", bytes(50 * 1024 * 1024))],
    "nested": [("inner.bin", _zip([("IM1", b"x" * 100)]))],
    "traversal": [("../../etc/IM1", b"DICM")],
    "absolute": [("/etc/IM1", b"DICM")],
    "link": [(_symlink(), b"/etc/passwd")],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_leave_nothing(
    server: str, cd: DicomCd, imported: dict, kind: str, data_root: Path
) -> None:
    good = next(iter(imported["files"].values()))
    archive = _zip([("IM0", good), *HOSTILE[kind]])
    with httpx.Client(base_url=server, timeout=60) as http:
        headers = register(http)
        done = upload(http, headers, f"{kind}.zip", "application/zip", archive)
        if kind == "nested":
            # Named innocently: only its content gives it away, found while inflating
            # by the import job, which fails the import and keeps nothing.
            assert done.status_code == 202, done.text
            status = wait_for_import(http, headers, done.json()["id"])
            assert status["status"] == "failed"
            assert status["reasons"] == ["The archive holds another archive."]
        else:
            assert done.status_code == 422, done.text
            assert done.headers["content-type"].startswith("application/problem+json")
            assert done.json()["type"].endswith("hostile-archive")
        assert http.get("/v1/imaging", headers=headers).json() == []
        me = http.get("/v1/me", headers=headers).json()
    folder = data_root / "files" / "patients" / me["id"]
    # Only the empty marker that keeps the used upload URL from writing again.
    left = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".sealed")]
    assert left == []
    assert all(p.stat().st_size == 0 for p in folder.rglob("*.sealed"))


def test_another_patients_uids_are_404_on_every_dicomweb_route_and_audited(
    server: str, cd: DicomCd, imported: dict
) -> None:
    ds = cd.datasets[0]
    st, se, i = cd.study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID
    routes = [
        f"/studies/{st}/series",
        f"/studies/{st}/instances",
        f"/studies/{st}/series/{se}/instances",
        f"/studies/{st}",
        f"/studies/{st}/series/{se}",
        f"/studies/{st}/series/{se}/instances/{i}",
        f"/studies/{st}/metadata",
        f"/studies/{st}/series/{se}/metadata",
        f"/studies/{st}/series/{se}/instances/{i}/metadata",
        f"/studies/{st}/series/{se}/instances/{i}/rendered",
        f"/studies/{st}/series/{se}/instances/{i}/frames/1/rendered",
        f"/studies/{st}/series/{se}/thumbnail",
        f"/studies/{st}/series/{se}/instances/{i}/bulkdata/7FE00010",
        f"/studies/{st}/series/{se}/instances/{i}/frames/1",
    ]
    with httpx.Client(base_url=server, timeout=60) as http:
        stranger = register(http)
        for route in routes:
            response = http.get(f"/v1/dicomweb{route}", headers=stranger)
            assert response.status_code == 404, (route, response.status_code)
            assert response.headers["content-type"].startswith("application/problem+json")
        for search in ("/studies", "/series", "/instances"):
            assert http.get(f"/v1/dicomweb{search}", headers=stranger).json() == []
        audit = http.get("/v1/audit?limit=100", headers=stranger).json()
    refused = [
        e
        for e in audit["items"]
        if e.get("action") == "imaging.read" and e.get("outcome") == "denied"
    ]
    assert len(refused) == len(routes)


def _browser():
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            raise AssertionError(
                "CI must have chromium and chromium-driver (.ci/run installs them)"
            )
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=390,844",
    ):  # a phone's viewport
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def test_the_viewer_shows_the_previews_and_scrolls_frames_in_chromium(
    server: str, cd: DicomCd, imported: dict
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    [study] = imported["studies"]
    viewer = next(link["url"] for link in study["links"] if link["name"] == "Viewer")
    page = httpx.get(viewer.split("#")[0])
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    ARTIFACTS.mkdir(exist_ok=True)
    browser = _browser()
    try:
        browser.get(viewer)
        loaded = "return [...document.querySelectorAll('#series img')].filter(i => i.complete && i.naturalWidth > 0).length"
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(loaded) == 6)
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('#series img')].map(i => [i.naturalWidth, i.naturalHeight])"
        )
        assert sorted(map(tuple, sizes)) == sorted(
            (s["width"], s["height"]) for s in study["series"]
        )
        browser.save_screenshot(str(ARTIFACTS / "viewer-series.png"))
        browser.find_elements(By.CSS_SELECTOR, "#series button")[0].click()
        frame = "const i = document.getElementById('frame'); return i.complete && i.naturalWidth > 0 ? i.src : null"
        first = WebDriverWait(browser, 60).until(lambda b: b.execute_script(frame))
        assert "/frames/1/rendered" in first
        browser.find_element(By.TAG_NAME, "body").send_keys("\ue015")  # arrow down: next frame
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(frame) not in (None, first))
        assert not browser.find_element(By.ID, "series").is_displayed()
        assert browser.find_element(By.ID, "position").text.endswith("/ 20")
        browser.save_screenshot(str(ARTIFACTS / "viewer-frames.png"))
        # Nothing the page did was blocked by its own CSP.
        logs = browser.get_log("browser")
        assert not [e for e in logs if "Content Security Policy" in e.get("message", "")], logs
    finally:
        browser.quit()
    assert Image.open(ARTIFACTS / "viewer-series.png").size[0] > 0
