"""Imaging the patient keeps: DICOM files and CDs made into studies, stored
series with previews, the imaging list, DICOMweb (QIDO-RS, WADO-RS) over what
phr stores, and viewer links."""
