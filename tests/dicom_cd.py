"""A patient's CD made at test time from pydicom's bundled test files (shipped in
the pydicom wheel, MIT-licensed; nothing is downloaded or committed): one study
with two series of twenty instances under fresh UIDs (each series carrying a
different PatientID, as two hospitals' CDs would), plus one instance each in
JPEG baseline, JPEG 2000, JPEG-LS and RLE, written as a DICOM File-set with a
DICOMDIR by pydicom itself, and a non-DICOM README beside it."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

# (file, transfer syntax it is in, series description)
COMPRESSED = [
    ("SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.4.50", "JPEG baseline"),
    ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90", "JPEG 2000"),
    ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80", "JPEG-LS"),
    ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5", "RLE"),
]


def _fresh(
    name: str,
    study_uid: str,
    series_uid: str,
    number: int,
    series_number: int,
    description: str,
    patient_id: str,
) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.PatientID = patient_id
    ds.PatientName = "Test^Patient"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101500"
    ds.StudyDescription = "Test CD"
    ds.StudyID = "1"
    ds.AccessionNumber = "A1"
    return ds


class DicomCd:
    def __init__(self, instances: int = 20):
        self.study_uid = generate_uid()
        self.datasets: list[pydicom.Dataset] = []
        for series_number, (name, patient_id) in enumerate(
            [("CT_small.dcm", "HOSP-A-1"), ("MR_small.dcm", "HOSP-B-7")], start=1
        ):
            series_uid = generate_uid()
            for n in range(1, instances + 1):
                self.datasets.append(
                    _fresh(
                        name,
                        self.study_uid,
                        series_uid,
                        n,
                        series_number,
                        f"{name} series",
                        patient_id,
                    )
                )
        for offset, (name, _, description) in enumerate(COMPRESSED, start=3):
            self.datasets.append(
                _fresh(name, self.study_uid, generate_uid(), 1, offset, description, "HOSP-A-1")
            )

    @property
    def series_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ds in self.datasets:
            counts[ds.SeriesInstanceUID] = counts.get(ds.SeriesInstanceUID, 0) + 1
        return counts

    def files(self) -> dict[str, bytes]:
        """SOPInstanceUID -> the file's bytes, exactly as they go on the CD."""
        out = {}
        for ds in self.datasets:
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            out[ds.SOPInstanceUID] = buffer.getvalue()
        return out

    def zip(self, *, dicomdir: bool = True) -> tuple[bytes, dict[str, bytes]]:
        """The zip and, by SOPInstanceUID, each instance's bytes as written on it."""
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            if dicomdir:
                fileset = FileSet()
                for ds in self.datasets:
                    fileset.add(ds)
                fileset.write(root)
            else:
                for n, data in enumerate(self.files().values()):
                    (root / f"IM{n:06d}").write_bytes(data)
            (root / "README.TXT").write_text("Viewer software not included.\n")
            files: dict[str, bytes] = {}
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        data = path.read_bytes()
                        archive.writestr(str(path.relative_to(root)), data)
                        if data[128:132] == b"DICM" and path.name != "DICOMDIR":
                            files[pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID] = data
        return buffer.getvalue(), files
