"""DICOM with pydicom: header reading, archive unpacking and pixel rendering.

pydicom logs element values (UIDs, dates, names) through its own logger and
warns about damaged values: neither may reach the service's logs, so its logger
is cut off here, once, before any module of this package reads a file."""

from __future__ import annotations

import logging
import warnings


def _silence_pydicom() -> None:
    logger = logging.getLogger("pydicom")
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")

    import pydicom.config

    # Invalid values are read as they are (and refused by our checks where they
    # matter) instead of producing warnings that quote them.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    # pydicom.config.debug(False) re-installs its handler; keep ours.
    pydicom.config.debugging = False


_silence_pydicom()
