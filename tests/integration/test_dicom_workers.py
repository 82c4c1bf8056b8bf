"""DICOM parsing in killable worker processes (infra.dicom.processes): a read
past its deadline stops burning a CPU (its process is killed, not left running
as a thread would be), the pool carries on with a fresh worker, and the
reader's own errors come back as themselves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from domain.errors import UnreadableDicom
from infra.dicom.header import PydicomReader
from infra.dicom.processes import DicomProcesses


def spin(pid_file: str) -> None:
    """Stands in for a file that makes the parser spin forever."""
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_read_past_its_deadline_is_killed_and_the_pool_carries_on(tmp_path):
    pool = DicomProcesses(workers=1)
    reader = PydicomReader(timeout=20, processes=pool)
    try:
        pid_file = tmp_path / "pid"
        first = await pool.run(60, os.getpid)  # started (spawned) outside the deadline
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.run(5.0, spin, str(pid_file))
        # Stopped at its deadline (plus the kill), however busy the machine.
        assert time.monotonic() - started < 20
        spun = int(pid_file.read_text())
        assert spun == first
        assert spun != os.getpid() and not _alive(spun)

        # The one worker slot is free again: a real read goes through a new worker.
        with open(get_testdata_file("CT_small.dcm"), "rb") as handle:
            instance = await reader.read(handle.read(), bulk_base="https://x/dicomweb")
        assert instance.modality == "CT" and instance.rows == 128
        with pytest.raises(UnreadableDicom):
            await reader.read(b"\0" * 128 + b"DICM" + b"\xff" * 64, bulk_base="https://x")
        assert await pool.run(5, os.getpid) not in (os.getpid(), spun)
    finally:
        pool.close()
