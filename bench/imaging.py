"""Imaging benchmarks. Prints figures with baselines measured in the same run.

    python bench/imaging.py                        # DATABASE_URL or the embedded server
    PHR_BENCH_INSTANCES=200 python bench/imaging.py

1. Import: a series of 500 instances (fresh UIDs over pydicom's CT_small.dcm)
   zipped as one CD, uploaded through the presigned flow and imported by the
   worker (unpack, header read, store, group, study record), in instances/s from
   the upload's start to its `done` status, against `pydicom.dcmread` of the same
   files from disk in this process (the floor any import pays).
2. Retrieval: WADO-RS of the whole series (multipart/related, streamed from the
   local blob store) in MB/s and instances/s, against reading the same files
   from disk.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import scratch_database, uvicorn_server

INSTANCES = int(os.environ.get("PHR_BENCH_INSTANCES", "500"))
RETRIEVE_RUNS = 3


def make_series(folder: Path) -> list[Path]:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    paths = []
    for n in range(1, INSTANCES + 1):
        template.StudyInstanceUID = study
        template.SeriesInstanceUID = series
        template.SOPInstanceUID = generate_uid()
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        template.InstanceNumber = n
        path = folder / f"IM{n:06d}"
        template.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def zipped(paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, f"DICOM/{path.name}")
    return buffer.getvalue()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="phr-bench-cd-"))
    paths = make_series(folder)
    archive = zipped(paths)
    total_bytes = sum(p.stat().st_size for p in paths)

    started = time.perf_counter()
    for path in paths:
        pydicom.dcmread(path)
    dcmread_rate = len(paths) / (time.perf_counter() - started)

    started = time.perf_counter()
    for path in paths:
        path.read_bytes()
    disk_seconds = time.perf_counter() - started

    with scratch_database() as dsn, uvicorn_server("api.app:create_app_from_env", dsn) as (base, _):
        with httpx.Client(base_url=base, timeout=600) as http:
            email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
            password = f"bench horse {uuid.uuid4().hex[:8]} battery"
            http.post("/v1/auth/register", json={"email": email, "password": password})
            tokens = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
            headers = {"Authorization": f"Bearer {tokens['accessToken']}"}

            started = time.perf_counter()
            upload = http.post(
                "/v1/uploads",
                json={"filename": "cd.zip", "contentType": "application/zip", "size": len(archive)},
                headers=headers,
            ).json()
            http.put(upload["uploadUrl"], content=archive, headers=upload["headers"])
            http.post(f"/v1/uploads/{upload['id']}/complete", headers=headers)
            deadline = time.monotonic() + 1200
            while time.monotonic() < deadline:
                status = http.get(f"/v1/uploads/{upload['id']}", headers=headers).json()
                if status["status"] != "processing":
                    break
                time.sleep(0.1)
            import_seconds = time.perf_counter() - started
            assert status["status"] == "done" and status["instances"] == INSTANCES, status

            [study] = http.get("/v1/imaging", headers=headers).json()
            series = study["series"][0]["seriesUid"]
            url = f"/v1/dicomweb/studies/{study['studyUid']}/series/{series}"
            best = float("inf")
            received = 0
            for _ in range(RETRIEVE_RUNS):
                started = time.perf_counter()
                received = 0
                with http.stream("GET", url, headers=headers) as response:
                    assert response.status_code == 200, response.status_code
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                best = min(best, time.perf_counter() - started)
            assert received > total_bytes

    print(f"imaging import: {INSTANCES} instances in one zip ({len(archive) / 1e6:.1f} MB)")
    print(
        f"  upload + import to 'done': {INSTANCES / import_seconds:8.1f} instances/s "
        f"({import_seconds:.2f} s)"
    )
    print(
        f"  pydicom.dcmread from disk: {dcmread_rate:8.1f} instances/s "
        f"(phr at {INSTANCES / import_seconds / dcmread_rate:.2f}x)"
    )
    print(f"WADO-RS retrieve of the series ({total_bytes / 1e6:.1f} MB, best of {RETRIEVE_RUNS}):")
    print(
        f"  phr over HTTP:   {total_bytes / best / 1e6:8.1f} MB/s  {INSTANCES / best:8.1f} instances/s"
    )
    print(
        f"  files from disk: {total_bytes / disk_seconds / 1e6:8.1f} MB/s  "
        f"{INSTANCES / disk_seconds:8.1f} instances/s"
    )


if __name__ == "__main__":
    main()
