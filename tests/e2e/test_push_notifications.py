"""Notifications end to end against `phr serve` as a process: a hospital pushes
results, the patient's inbox holds exactly one notification, and the server's
own worker delivers one Web Push to a receiver this test runs, which verifies
the VAPID JWT, decrypts the aes128gcm payload with its own code and finds no
health detail in it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.e2e.service import REPO_ROOT, running_service, service_env
from tests.mail_support import code_from_folder
from tests.push_receivers import WebPushReceiver
from tests.webhook_signing import signed_headers


def glucose(source_id: str, value: float) -> dict:
    return {
        "resourceType": "Observation",
        "id": source_id,
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
        },
        "effectiveDateTime": "2026-01-05T08:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
        "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}],
    }


def test_hospital_push_to_inbox_to_the_browser(serve_data_dir):
    receiver = WebPushReceiver().start()
    try:
        allow = {"PHR_WEBPUSH_ENDPOINT_ALLOW": "http://127.0.0.1:*"}
        with running_service(serve_data_dir, env=allow) as service:
            added = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "api.cli",
                    "hospital",
                    "add",
                    "--name",
                    "Zhongshan Hospital",
                ],
                cwd=REPO_ROOT,
                env=service_env(serve_data_dir, 0),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert added.returncode == 0, added.stderr
            hospital = json.loads(added.stdout)
            with service.client() as http:
                account = {"email": "li.wei@example.org", "password": "a long enough passphrase 42"}
                assert http.post("/v1/auth/register", json=account).status_code == 202
                code = code_from_folder(serve_data_dir / "mail", account["email"])
                verified = http.post(
                    "/v1/auth/verify-email", json={"email": account["email"], "code": code}
                )
                assert verified.status_code == 204, verified.text
                tokens = http.post("/v1/auth/login", json=account).json()
                auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
                key = http.get("/v1/devices/webpush-key", headers=auth).json()
                receiver.expected_key = key["applicationServerKey"]
                device = http.post(
                    "/v1/devices",
                    json={"kind": "webpush", "subscription": receiver.subscription()},
                    headers=auth,
                )
                assert device.status_code == 201, device.text
                link = http.post("/v1/links", json={"hospitalId": hospital["id"]}, headers=auth)
                url = f"/v1/hospitals/{hospital['id']}/webhook"
                body = json.dumps({"type": "patient.linked", "data": {"code": link.json()["code"], "patientRef": "ZS-1"}}).encode()  # fmt: skip
                assert http.post(url, content=body, headers=signed_headers(hospital["webhookSecret"], body)).status_code == 200  # fmt: skip
                bundle = {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": glucose("g1", 212)}, {"resource": glucose("g2", 88)}],
                }
                body = json.dumps({"type": "records.push", "data": {"patientRef": "ZS-1", "bundle": bundle}}).encode()  # fmt: skip
                pushed = http.post(
                    url, content=body, headers=signed_headers(hospital["webhookSecret"], body)
                )
                assert pushed.status_code == 200 and pushed.json()["created"] == 2, pushed.text

                inbox = http.get("/v1/notifications", headers=auth).json()["items"]
                assert len(inbox) == 1
                assert inbox[0]["params"] == {
                    "hospital": "Zhongshan Hospital",
                    "hospitalId": hospital["id"],
                    "count": 2,
                    "abnormal": 1,
                }
                deadline = time.monotonic() + 30
                while not receiver.received and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not receiver.errors, receiver.errors
                (push,) = receiver.received
                assert push.payload == {
                    "title": "You have a new notification",
                    "notificationId": inbox[0]["id"],
                    "kind": "new-results",
                }
                # Exactly those three fields: no hospital, no result, no value. The
                # headers are the protocol's own.
                assert set(push.headers) <= {
                    "host", "accept", "accept-encoding", "connection", "user-agent",
                    "authorization", "content-encoding", "content-type", "content-length",
                    "ttl", "urgency", "topic",
                }  # fmt: skip
                time.sleep(2)
                assert len(receiver.received) == 1, "delivered once"
    finally:
        receiver.stop()
