"""Frames as images people can look at: pydicom decodes the pixel data (with the
pylibjpeg plugins for JPEG, JPEG-LS, JPEG 2000 and RLE), the modality LUT
(rescale slope and intercept) and the file's own window centre and width are
applied, and the result is scaled to 8 bits and written as PNG or JPEG by
Pillow. Runs in a worker thread: all of it is CPU."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import infra.dicom  # noqa: F401  (silences pydicom's logger before first use)
from domain.errors import NotFound, UnreadableDicom
from domain.imaging.store import RenderedImage
from infra.dicom.processes import DicomProcesses

RENDER_TIMEOUT_SECONDS = 30.0
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}


def _window(dataset: Any) -> tuple[float, float] | None:
    """The file's first window centre and width, if it has usable ones."""
    try:
        centre, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
        if centre is None or width is None:
            return None
        centre = centre[0] if not isinstance(centre, int | float | str) else centre
        width = width[0] if not isinstance(width, int | float | str) else width
        centre, width = float(centre), float(width)
    except (TypeError, ValueError, IndexError):
        return None
    return (centre, width) if width >= 1 else None


def _to_8bit(dataset: Any, pixels: Any) -> Any:
    import numpy as np
    from pydicom.pixels import apply_modality_lut

    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        # Colour: pydicom already gives RGB; only the depth needs scaling.
        if pixels.dtype != np.uint8:
            top = float(pixels.max()) or 1.0
            pixels = (pixels.astype(np.float64) * (255.0 / top)).clip(0, 255)
        return pixels.astype(np.uint8)[..., :3]
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return _to_8bit(dataset, apply_color_lut(pixels, dataset))
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    window = _window(dataset)
    if window is not None:
        # PS3.3 C.11.2.1.2.1, the linear VOI function, straight to 0..255.
        centre, width = window
        scaled = ((values - (centre - 0.5)) / max(width - 1, 1.0) + 0.5) * 255.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / ((high - low) or 1.0))
    scaled = scaled.clip(0, 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        scaled = 255 - scaled
    return scaled


def render_frame(data: bytes, frame: int, media_type: str) -> RenderedImage:
    """Blocking: the 1-based `frame` of the instance in `data`."""
    from PIL import Image
    from pydicom import dcmread
    from pydicom.pixels import pixel_array

    if media_type not in _FORMATS:
        raise ValueError(f"cannot render {media_type}")
    try:
        dataset = dcmread(io.BytesIO(data))
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except Exception as exc:
        raise UnreadableDicom(
            f"The file could not be read as DICOM ({type(exc).__name__})."
        ) from None
    if "PixelData" not in dataset or not 1 <= frame <= frames:
        raise NotFound("No such frame.")
    try:
        pixels = pixel_array(dataset, index=frame - 1) if frames > 1 else dataset.pixel_array
        image = Image.fromarray(_to_8bit(dataset, pixels))
        out = io.BytesIO()
        if _FORMATS[media_type] == "JPEG":
            image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
                out, "JPEG", quality=90
            )
        else:
            image.save(out, "PNG", optimize=False)
    except Exception as exc:
        raise UnreadableDicom(f"The image could not be decoded ({type(exc).__name__}).") from None
    return RenderedImage(out.getvalue(), media_type, image.width, image.height)


class PillowRenderer:
    """Renders in a killable worker process when given one (see PydicomReader)."""

    def __init__(
        self, timeout: float = RENDER_TIMEOUT_SECONDS, processes: DicomProcesses | None = None
    ):
        self._timeout = timeout
        self._processes = processes

    async def render(self, data: bytes, frame: int, media_type: str) -> RenderedImage:
        try:
            if self._processes is not None:
                return await self._processes.run(
                    self._timeout, render_frame, data, frame, media_type
                )
            return await asyncio.wait_for(
                asyncio.to_thread(render_frame, data, frame, media_type), self._timeout
            )
        except TimeoutError:
            raise UnreadableDicom("The image took too long to render.") from None
