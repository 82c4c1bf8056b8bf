"""Interop: what a doctor's phone and any other SHL viewer do with our link. The
QR PNG is decoded by zxing-cpp, the payload parsed by hand, the manifest posted
over a real socket, and every file decrypted with jwcrypto (phr encrypts with
joserfc): the records that come out are exactly those in scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import png
import pytest
import zxingcpp

from tests.live_server import live_server
from tests.mail_support import code_from_folder
from tests.records_support import bundle, grant_hospital, observation, push
from tests.share_support import (
    SECURITY_HIV,
    bundle_resources,
    condition,
    decrypt,
    in_days,
    parse_shlink,
)


def decode_qr(image: bytes) -> tuple[str, str]:
    width, height, rows, _ = png.Reader(bytes=image).asDirect()
    pixels = bytes(255 if value else 0 for row in rows for value in row)
    found = zxingcpp.read_barcodes(
        zxingcpp.ImageView(pixels, width, height, zxingcpp.ImageFormat.Lum)
    )
    assert len(found) == 1
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    return found[0].text, found[0].ec_level


@pytest.fixture
def server(database_dsn, data_dir):
    with live_server(database_dsn, data_dir) as running:
        yield running


def register(http, data_dir) -> dict[str, str]:
    email = f"interop-{uuid.uuid4().hex[:10]}@example.org"
    password = f"correct horse {uuid.uuid4().hex[:8]} battery"
    assert http.post("/v1/auth/register", json={"email": email, "password": password}).is_success
    code = code_from_folder(data_dir / "mail", email)
    assert http.post("/v1/auth/verify-email", json={"email": email, "code": code}).is_success
    tokens = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    return {"headers": headers, "id": http.get("/v1/me", headers=headers).json()["id"]}


def stamp(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_qr_to_decrypted_records_with_independent_tools(server, services, data_dir):
    with server.client() as http:
        patient = register(http, data_dir)
        patient_id = UUID(patient["id"])
        hospital = await grant_hospital(services, patient_id)
        await push(
            services,
            patient_id,
            hospital,
            bundle(
                observation("hr-recent", display="Heart rate recent", when=stamp(20)),
                observation("hr-old", display="Heart rate old", when=stamp(800)),
                condition("asthma", "Asthma"),
                condition("hiv", "HIV infection", meta={"security": [SECURITY_HIV]}),
            ),
        )
        records = http.get("/v1/records", headers=patient["headers"]).json()["items"]
        by_display = {item["display"]: item["id"] for item in records}
        # The patient summary: recent results and problems; the old result and
        # the HIV record (not opted in) stay out.
        expected = {by_display["Heart rate recent"], by_display["Asthma"]}

        created = http.post(
            "/v1/shares",
            json={"expiresAt": in_days(2), "label": "Dr. Zhang", "passcode": "2468"},
            headers=patient["headers"],
        )
        assert created.status_code == 201, created.text
        share = created.json()
        qr = http.get(share["qrUrl"], headers=patient["headers"])
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
        text, ec_level = decode_qr(qr.content)
        assert text == share["viewerUrl"]
        assert ec_level == "M"
        assert text.startswith(server.url("/viewer#shlink:/"))

        payload = parse_shlink(text)
        assert payload["flag"] == "P" and payload["v"] == 1 and payload["label"] == "Dr. Zhang"
        assert isinstance(payload["exp"], int)
        assert len(payload["key"]) == 43 and len(payload["url"]) <= 128
        assert payload["url"].startswith(server.base_url)
        assert share["id"] not in payload["url"]

        manifest = http.post(
            payload["url"],
            json={"recipient": "Dr. Zhang", "passcode": "2468", "someFutureField": True},
            headers={"Origin": "https://other-viewer.example"},
        )
        assert manifest.status_code == 200, manifest.text
        assert manifest.headers["access-control-allow-origin"] == "*"
        files = manifest.json()["files"]
        assert [f["contentType"] for f in files] == ["application/fhir+json"]
        header, plaintext = decrypt(files[0]["embedded"], payload["key"])
        assert header == {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json"}
        resources = bundle_resources(plaintext)
        shared = {
            r["id"] for r in resources if r["resourceType"] not in ("Patient", "Organization")
        }
        assert shared == expected
        assert [r["resourceType"] for r in resources].count("Patient") == 1

        # The same through a location (embeddedLengthMax too small to embed).
        manifest = http.post(
            payload["url"],
            json={"recipient": "Dr. Zhang", "passcode": "2468", "embeddedLengthMax": 10},
        )
        location = manifest.json()["files"][0]["location"]
        assert location.startswith(server.base_url + "/shl/files/")
        fetched = http.get(location)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"].startswith("application/jose")
        _, again = decrypt(fetched.text, payload["key"])
        assert {r["id"] for r in bundle_resources(again)} >= expected
        # A snapshot: encrypted once, the very ciphertext every time.
        assert fetched.text == files[0]["embedded"]
        assert http.get(location).status_code == 404  # one use

        svg = http.get(share["qrUrl"] + "?format=svg", headers=patient["headers"])
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in svg.content
