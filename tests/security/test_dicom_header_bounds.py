"""Item: hostile DICOM (the 1,200-mutant fuzz through the upload flow is
tests/integration/test_dicom_fuzz.py). Here: the header read is bounded in
time. A file whose header takes longer than the bound to read is refused as
unreadable (422 naming the problem), not left running the request."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from domain.errors import UnreadableDicom
from infra.dicom.header import PydicomReader


async def test_a_header_read_past_its_time_bound__unreadable_dicom_naming_it():
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert (await PydicomReader().read(data, bulk_base="/bulk")).study_uid
    with pytest.raises(UnreadableDicom, match="took too long"):
        await PydicomReader(timeout=1e-9).read(data, bulk_base="/bulk")
