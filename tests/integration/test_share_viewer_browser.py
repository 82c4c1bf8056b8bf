"""The doctor's viewer in a real browser (Debian's headless chromium through
chromedriver): it opens the viewer URL, asks the passcode and the doctor's name,
decrypts in the page and shows the shared records. A second run opens a link
made by someone else (the HL7 IPS vector, flag LU, no cty), served offline.
Screenshots go to tmp/artifacts/."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import UUID

import pytest

from tests.live_server import live_server
from tests.mail_support import code_from_folder
from tests.records_support import bundle, grant_hospital, observation, push
from tests.share_support import SECURITY_HIV, condition, in_days

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DATA = Path(__file__).resolve().parents[1] / "data" / "shl"
ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artifacts"

if not (os.path.exists(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    if os.environ.get("CI"):
        raise RuntimeError("CI must have chromium and chromium-driver (see .ci/run)")
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install -y chromium "
        "chromium-driver); CI installs them",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def chromium(language: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,1600",
        f"--lang={language}",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    return webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium("en-US")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def chinese_browser() -> Iterator[webdriver.Chrome]:
    driver = chromium("zh-CN")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(database_dsn, data_dir):
    with live_server(database_dsn, data_dir) as running:
        yield running


def screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def stamp(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait(driver, timeout: float = 20) -> WebDriverWait:
    return WebDriverWait(driver, timeout)


async def test_a_doctor_opens_a_share_with_passcode_and_name(server, services, browser, data_dir):
    with server.client() as http:
        email = f"viewer-{uuid.uuid4().hex[:10]}@example.org"
        password = f"correct horse {uuid.uuid4().hex[:8]} battery"
        http.post("/v1/auth/register", json={"email": email, "password": password})
        code = code_from_folder(data_dir / "mail", email)
        http.post("/v1/auth/verify-email", json={"email": email, "code": code})
        token = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['accessToken']}"}
        patient_id = UUID(http.get("/v1/me", headers=headers).json()["id"])
        hospital = await grant_hospital(services, patient_id)
        glucose = observation(
            "glucose",
            code="2345-7",
            display="Glucose",
            value=11.2,
            unit="mmol/L",
            when=stamp(3),
            referenceRange=[
                {
                    "low": {"value": 3.9, "unit": "mmol/L"},
                    "high": {"value": 7.8, "unit": "mmol/L"},
                }
            ],
        )
        medication = {
            "resourceType": "MedicationStatement",
            "id": "metformin",
            "status": "active",
            "medicationCodeableConcept": {"text": "Metformin 500 mg tablet"},
            "subject": {"reference": "Patient/p1"},
            "dosage": [{"text": "1 tablet twice a day with meals"}],
        }
        await push(
            services,
            patient_id,
            hospital,
            bundle(
                glucose,
                medication,
                condition("diabetes", "Type 2 diabetes"),
                condition("hiv", "HIV infection", meta={"security": [SECURITY_HIV]}),
            ),
        )
        created = http.post(
            "/v1/shares",
            json={"expiresAt": in_days(1), "label": "For Dr. Zhang", "passcode": "7351"},
            headers=headers,
        ).json()

    browser.get(created["viewerUrl"])
    wait(browser).until(ec.visibility_of_element_located((By.ID, "passcode")))
    assert "For Dr. Zhang" in browser.find_element(By.ID, "share-label").text
    browser.find_element(By.ID, "recipient").send_keys("Dr. Zhang")
    browser.find_element(By.ID, "passcode").send_keys("0000")
    browser.find_element(By.ID, "open").click()
    error = wait(browser).until(ec.visibility_of_element_located((By.ID, "error")))
    assert "remaining: 4" in error.text
    screenshot(browser, "viewer-wrong-passcode.png")

    browser.find_element(By.ID, "passcode").send_keys("7351")
    browser.find_element(By.ID, "open").click()
    summary = wait(browser).until(ec.visibility_of_element_located((By.ID, "summary")))
    text = summary.text
    assert "Type 2 diabetes" in text
    assert "Metformin 500 mg tablet" in text
    assert "1 tablet twice a day with meals" in text
    assert "Glucose" in text and "11.2 mmol/L" in text and "3.9 mmol/L – 7.8 mmol/L" in text
    assert browser.find_elements(By.CSS_SELECTOR, "tr.out-of-range[data-type=Observation]")
    assert "HIV" not in text
    assert not browser.find_element(By.ID, "access").is_displayed()
    screenshot(browser, "viewer-phr-share.png")

    with server.client() as http:
        accesses = http.get(f"/v1/shares/{created['id']}/accesses", headers=headers).json()
    assert [a["recipient"] for a in accesses["items"]] == ["Dr. Zhang"]
    assert "Chrome" in accesses["items"][0]["userAgent"]


class _VectorHandler(BaseHTTPRequestHandler):
    """Serves the vector's encrypted file as its issuer would (flag U: a GET with
    ?recipient=), with CORS open as the spec requires."""

    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/jose")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def vector_host() -> Iterator[str]:
    _VectorHandler.body = (DATA / "IPS_IG-bundle-01-enc.txt").read_bytes().strip()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _VectorHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def test_the_viewer_opens_the_hl7_ips_vector_in_chinese(server, chinese_browser, vector_host):
    browser = chinese_browser
    details = json.loads((DATA / "IPS_IG-bundle-01-shl-details.json").read_text())
    payload = dict(details["shlinkJsonPayload"])
    assert payload["flag"] == "LU"
    payload["url"] = vector_host + "/ips/IPS_IG-bundle-01-enc.txt"
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    browser.get(server.url("/viewer#shlink:/" + encoded))
    wait(browser).until(ec.visibility_of_element_located((By.ID, "recipient")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "共享的健康档案"
    assert not browser.find_element(By.ID, "passcode").is_displayed()
    browser.find_element(By.ID, "recipient").send_keys("Dr. Zhang")
    browser.find_element(By.ID, "open").click()
    summary = wait(browser).until(ec.visibility_of_element_located((By.ID, "summary")))
    text = summary.text
    assert "Martha DeLarosa" in text
    assert "Menopausal flushing (finding)" in text
    assert "Malignant tumor of breast" in text
    assert "Hemoglobin A1c/Hemoglobin.total in Blood by HPLC" in text and "7.5 %" in text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#section-allergies tr.record")) == 2
    assert "过敏与不耐受" in text
    assert not browser.find_element(By.ID, "access").is_displayed()
    screenshot(browser, "viewer-hl7-ips-vector.png")


@pytest.fixture
def imaging_server(database_dsn, data_dir):
    # The worker imports the CD and makes the previews, as in `phr serve`.
    with live_server(database_dsn, data_dir, {"PHR_WORKER": "on"}) as running:
        yield running


def test_a_shared_study_shows_its_previews_and_opens_in_the_viewer(
    imaging_server, browser, data_dir
):
    from tests.dicom_cd import DicomCd
    from tests.imaging_support import import_cd

    server = imaging_server
    cd = DicomCd(instances=2)
    with server.client() as http:
        email = f"viewer-{uuid.uuid4().hex[:10]}@example.org"
        password = f"correct horse {uuid.uuid4().hex[:8]} battery"
        http.post("/v1/auth/register", json={"email": email, "password": password})
        code = code_from_folder(data_dir / "mail", email)
        http.post("/v1/auth/verify-email", json={"email": email, "code": code})
        token = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['accessToken']}"}
        [study] = import_cd(http, headers, cd)
        created = http.post(
            "/v1/shares", json={"expiresAt": in_days(1), "label": "CT for Dr. Lee"}, headers=headers
        ).json()

    browser.get(created["viewerUrl"])
    wait(browser).until(ec.visibility_of_element_located((By.ID, "recipient")))
    browser.find_element(By.ID, "recipient").send_keys("Dr. Lee")
    browser.find_element(By.ID, "open").click()
    wait(browser).until(ec.visibility_of_element_located((By.ID, "summary")))
    # The previews come out of the decrypted bundle (data: URLs): nothing fetched.
    loaded = (
        "return [...document.querySelectorAll('#section-imaging img.preview')]"
        ".filter(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/png'))"
        ".map(i => [i.naturalWidth, i.naturalHeight])"
    )
    sizes = wait(browser).until(lambda b: (s := b.execute_script(loaded)) and len(s) == 6 and s)
    assert sorted(map(tuple, sizes)) == sorted((s["width"], s["height"]) for s in study["series"])
    screenshot(browser, "viewer-shared-imaging.png")

    link = browser.find_element(By.CSS_SELECTOR, "#section-imaging a.viewer-link")
    href = link.get_attribute("href")
    assert href.startswith(server.url(f"/imaging/viewer#study={cd.study_uid}&share="))
    assert href.endswith("&recipient=Dr.%20Lee")
    # The built-in viewer opens the study for the named doctor, previews and all.
    thumbs = (
        "return [...document.querySelectorAll('#series img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    )
    browser.get(href)
    wait(browser, 60).until(lambda b: b.execute_script(thumbs) == 6)
    screenshot(browser, "viewer-shared-imaging-study.png")
    # Opened without a name (the link copied elsewhere), it asks for one first.
    browser.get("about:blank")
    browser.get(href.removesuffix("&recipient=Dr.%20Lee"))
    wait(browser).until(ec.visibility_of_element_located((By.ID, "recipient")))
    assert not browser.find_elements(By.CSS_SELECTOR, "#series img")
    browser.find_element(By.ID, "recipient").send_keys("Dr. Lee")
    browser.find_element(By.CSS_SELECTOR, "#who button").click()
    wait(browser, 60).until(lambda b: b.execute_script(thumbs) == 6)

    with server.client() as http:
        audit = http.get("/v1/audit?limit=200", headers=headers).json()["items"]
    reads = [e for e in audit if e["action"] == "imaging.read" and e["outcome"] == "success"]
    assert len(reads) >= 14  # twice: the session, the series search, six thumbnails
    assert {e["actorId"] for e in reads} == {f"{created['id']} Dr. Lee"}
