"""Hostile DICOM through the upload flow: 1,200 mutated copies of pydicom's test
files (bytes flipped, cut short, lengths and VRs garbled, junk spliced in; the
"DICM" magic kept, so each one reaches the header reader) are uploaded and
completed one by one. Each answer is 201 (the damage was harmless) or 422
problem+json naming the problem, never a 500, and a refused file leaves no object
behind. pydicom's own log lines (which quote element values) never reach ours."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tests.app_in_loop import client_from, in_loop_app  # noqa: F401  (fixture)
from tests.conftest import register_patient

SEEDS = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "rtplan.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "nested_priv_SQ.dcm",
    "UN_sequence.dcm",
]
MUTANTS = 1200


def mutate(data: bytes, rng: random.Random) -> bytes:
    body = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(132, len(body)) if len(body) > 133 else 132
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 16)):
                body[rng.randrange(132, len(body))] = rng.randrange(256)
        elif kind == 1:  # cut short
            del body[at:]
        elif kind == 2:  # a garbled element length (32-bit, little endian)
            body[at : at + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", rng.randbytes(4)]
            )
        elif kind == 3:  # junk spliced in
            body[at:at] = rng.randbytes(rng.randint(1, 64))
        elif kind == 4:  # a garbled VR
            body[at : at + 2] = rng.choice([b"SQ", b"UN", b"OB", b"XX", b"\x00\x00"])
        else:  # a chunk repeated (nested sequences, duplicated tags)
            end = min(len(body), at + rng.randint(8, 256))
            body[at:at] = body[at:end] * rng.randint(1, 8)
        if len(body) <= 132:
            break
    body[128:132] = b"DICM"
    return bytes(body[: max(len(body), 133)])


@pytest.mark.slow
async def test_mutated_dicom_is_201_or_422_and_refused_files_leave_nothing(
    app, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(20261130)
    seeds = [Path(get_testdata_file(name)).read_bytes() for name in SEEDS]
    statuses: dict[int, int] = {}
    async with client_from(app) as client:
        patient = await register_patient(client)
        for n in range(MUTANTS):
            data = mutate(rng.choice(seeds), rng)
            started = await client.post(
                "/v1/uploads",
                json={
                    "filename": f"m{n}.dcm",
                    "contentType": "application/dicom",
                    "size": len(data),
                },
                headers=patient.headers,
            )
            assert started.status_code == 201, started.text
            body = started.json()
            put = await client.put(body["uploadUrl"], content=data, headers=body["headers"])
            assert put.status_code < 300, put.text
            done = await client.post(f"/v1/uploads/{body['id']}/complete", headers=patient.headers)
            statuses[done.status_code] = statuses.get(done.status_code, 0) + 1
            assert done.status_code in (201, 422), (n, done.status_code, done.text)
            if done.status_code == 422:
                assert done.headers["content-type"].startswith("application/problem+json")
                assert done.json()["type"].endswith("unreadable-dicom"), done.text
                leftover = data_dir / "files" / "patients" / patient.id / "uploads" / body["id"]
                assert not leftover.exists(), n
    # Both outcomes occur: the mutations are neither all harmless nor all fatal.
    assert statuses.get(201, 0) > 50 and statuses.get(422, 0) > 50, statuses
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
