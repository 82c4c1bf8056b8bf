"""The app served over real HTTP (uvicorn in a thread of its own) for clients
that need a socket: dicomweb-client (requests), headless Chromium, the bench.
Plus the upload flow as a patient's app drives it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.conftest import UNTHROTTLED_REGISTRATION
from tests.e2e.service import free_port
from tests.mail_support import code_from_folder

# Each live server's data folder by its base URL: registration reads the mailed code there.
_DATA_DIRS: dict[str, Path] = {}


@contextmanager
def live_server(
    database_dsn: str, data_dir: Path, extra: dict[str, str] | None = None
) -> Iterator[str]:
    from api.app import create_app
    from infra.settings import load_settings

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": database_dsn,
        "PHR_DATA_DIR": str(data_dir),
        "PHR_PUBLIC_URL": base,
        # The run's signing keys are sealed with the suite's one secrets key.
        "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
        **UNTHROTTLED_REGISTRATION,
    }
    _DATA_DIRS[base] = data_dir
    app = create_app(load_settings(env | (extra or {})))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def register(http: httpx.Client) -> dict[str, str]:
    import uuid

    email = f"img-{uuid.uuid4().hex[:10]}@example.org"
    password = f"correct horse {uuid.uuid4().hex[:8]} battery"
    response = http.post("/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 202, response.text
    code = code_from_folder(_DATA_DIRS[str(http.base_url).rstrip("/")] / "mail", email)
    response = http.post("/v1/auth/verify-email", json={"email": email, "code": code})
    assert response.status_code == 204, response.text
    tokens = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def upload(
    http: httpx.Client, headers: dict[str, str], name: str, content_type: str, data: bytes
) -> httpx.Response:
    """Start, PUT and complete one upload; the response of `complete`."""
    started = http.post(
        "/v1/uploads",
        json={"filename": name, "contentType": content_type, "size": len(data)},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    body = started.json()
    put = http.put(body["uploadUrl"], content=data, headers=body["headers"])
    assert put.status_code < 300, put.text
    return http.post(f"/v1/uploads/{body['id']}/complete", headers=headers)


def wait_for_import(http: httpx.Client, headers: dict[str, str], upload_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = http.get(f"/v1/uploads/{upload_id}", headers=headers).json()
        if status["status"] != "processing":
            return status
        time.sleep(0.2)
    raise AssertionError("the import did not finish")


def wait_for_previews(http: httpx.Client, headers: dict[str, str], series: int) -> list[dict]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        studies = http.get("/v1/imaging", headers=headers).json()
        ready = [s for st in studies for s in st["series"] if s["previewUrl"]]
        if len(ready) >= series:
            return studies
        time.sleep(0.3)
    raise AssertionError("previews were not made")


def import_cd(http: httpx.Client, headers: dict[str, str], cd: Any) -> list[dict]:
    """Uploads `cd` (a tests.dicom_cd.DicomCd) as one zip and waits for its
    import and every series' preview; the patient's /v1/imaging listing."""
    archive, _ = cd.zip()
    done = upload(http, headers, "cd.zip", "application/zip", archive)
    assert done.status_code == 202, done.text
    status = wait_for_import(http, headers, done.json()["id"])
    assert status["status"] == "done", status
    return wait_for_previews(http, headers, len(cd.series_counts))
