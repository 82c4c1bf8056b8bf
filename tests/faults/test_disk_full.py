"""The embedded data folder's disk fills up: a file upload answers 503
problem+json with Retry-After and a clear log line, leaves no partial file
behind; records either go in whole or not at all (the hospital's retry stores
them once); after space is freed, the same requests succeed.

The disk is a small tmpfs mounted by the test (root needed); elsewhere than in
CI the test skips, with the reason, when it cannot mount one."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import running_service
from tests.faults.traffic import PROBLEM, make_world, push_body, signed, timeline_ids

PDF = b"%PDF-1.4\n" + os.urandom(256 * 1024) + b"\n%%EOF\n"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="phr-disk-full-"))
    mount = top / "disk"
    mount.mkdir()
    done = None
    if os.geteuid() == 0 and shutil.which("mount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=192m,mode=0755", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done is None or done.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        reason = "mounting a small tmpfs needs root" + (f": {done.stderr.strip()}" if done else "")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        data_dir = mount / "phr-data"
        data_dir.mkdir()
        yield data_dir
    finally:
        from infra.embedded_postgres import EmbeddedPostgres

        leftover = EmbeddedPostgres(data_dir).running()
        if leftover is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, 2)
            time.sleep(1)
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(top, ignore_errors=True)


def fill(disk: Path) -> Path:
    """Writes until not even 512 bytes fit (unbuffered: nothing left to flush)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 4096, 512):
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def start_upload(client: httpx.Client, headers: dict[str, str]) -> dict:
    started = client.post(
        "/v1/uploads",
        json={"filename": "scan.pdf", "contentType": "application/pdf", "size": len(PDF)},
        headers=headers,
    )
    assert started.status_code in (201, 503), started.text
    return started.json()


def partial_files(data_dir: Path) -> list[Path]:
    files = data_dir / "files"
    return [p for p in files.rglob(".upload-*")] + [p for p in files.rglob(".meta-*")]


def test_disk_full_answers_503_and_leaves_nothing_half_written(small_disk: Path):
    with running_service(small_disk, start_timeout=60) as service:
        world = make_world(service)
        client = service.client()
        headers = world.headers
        upload = start_upload(client, headers)
        assert "uploadUrl" in upload

        filler = fill(small_disk.parent)
        put = httpx.request(
            upload["method"],
            upload["uploadUrl"],
            headers=upload["headers"],
            content=PDF,
            timeout=30,
        )
        assert put.status_code == 503, put.text
        assert put.headers["content-type"].startswith(PROBLEM)
        assert put.headers["retry-after"].isdigit()
        assert not partial_files(small_disk), "a partial upload was left on disk"

        # A hospital keeps pushing while the disk is full: each answer is 200 (it
        # fitted in space PostgreSQL had) or 503; nothing else.
        url = f"/v1/hospitals/{world.hospital_id}/webhook"
        answers = []
        for i in range(5):
            body = push_body(world.patient_ref, f"obs-full-{i}")
            try:
                response = client.post(
                    url, content=body, headers=signed(world.secret, body, f"full-{i}")
                )
                answers.append(response.status_code)
                if response.status_code == 503:
                    assert response.headers["content-type"].startswith(PROBLEM)
                    assert response.headers["retry-after"].isdigit()
            except httpx.TransportError as exc:  # pragma: no cover - a failure, reported
                raise AssertionError(f"no HTTP answer while the disk is full: {exc}") from exc
        assert set(answers) <= {200, 503}, answers

        filler.unlink()
        # Space again: the same upload and every delivery go through (the
        # database may have stopped on a full disk: phr serve brings it back).
        deadline = time.monotonic() + 30
        while True:
            put = httpx.request(
                upload["method"],
                upload["uploadUrl"],
                headers=upload["headers"],
                content=PDF,
                timeout=30,
            )
            if put.status_code in (200, 204) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert put.status_code in (200, 204), put.text
        for i in range(5):
            body = push_body(world.patient_ref, f"obs-full-{i}")
            for _ in range(60):
                response = client.post(
                    url, content=body, headers=signed(world.secret, body, f"full-{i}")
                )
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                time.sleep(0.5)
            assert response.status_code == 200, response.text
        done = client.post(f"/v1/uploads/{upload['id']}/complete", headers=headers)
        assert done.status_code == 201, done.text
        ids = timeline_ids(world)
        # obs-first, five pushes, the upload: each once.
        assert len(ids) == len(set(ids)) == 7, ids
        client.close()
    log = service.log()
    assert "disk unavailable (disk full)" in log, "no clear log line about the full disk"
    assert "Traceback" not in log
