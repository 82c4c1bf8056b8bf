"""WADO-RS frame retrieval (PS3.18 8.7.3.5.3): a frame's pixel data as bulk data.

Native (uncompressed) pixel data is cut frame by frame and answered as
`application/octet-stream` (little-endian; a big-endian file's 16-bit words are
swapped). Encapsulated pixel data is answered frame by frame as stored, with the
media type of its transfer syntax (image/jpeg, image/jls, image/jp2,
image/dicom-rle) when the client accepts it, else decoded (pydicom with the
pylibjpeg plugins) to native bytes if it accepts `application/octet-stream`;
NotAcceptable otherwise. Blocking: run in a worker."""

from __future__ import annotations

import io
from typing import Any

import infra.dicom  # noqa: F401  (silences pydicom's logger before first use)
from domain.errors import NotAcceptable, UnreadableDicom

OCTET_STREAM = "application/octet-stream"
# PS3.18 table 8.7.3-5: the media type of a frame kept in each transfer syntax.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
_BIG_ENDIAN = "1.2.840.10008.1.2.2"


def stored_media_type(transfer_syntax: str) -> str:
    return FRAME_MEDIA_TYPES.get(transfer_syntax, OCTET_STREAM)


def _native_frames(dataset: Any, numbers: list[int], syntax: str) -> list[bytes]:
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bits = int(dataset.BitsAllocated)
    pixels = bytes(dataset.PixelData)
    if bits == 1:
        # Bit-packed frames need not start on a byte: cut by bits.
        size_bits = rows * columns * samples
        out = []
        for n in numbers:
            start = (n - 1) * size_bits
            value = int.from_bytes(pixels, "little") >> start
            out.append((value & ((1 << size_bits) - 1)).to_bytes((size_bits + 7) // 8, "little"))
        return out
    size = rows * columns * samples * bits // 8
    out = []
    for n in numbers:
        frame = pixels[(n - 1) * size : n * size]
        if len(frame) != size:
            raise UnreadableDicom("The pixel data is shorter than its frames.")
        if syntax == _BIG_ENDIAN and bits > 8:
            step = bits // 8
            swapped = bytearray(frame)
            for i in range(step):
                swapped[i::step] = frame[step - 1 - i :: step]
            frame = bytes(swapped)
        out.append(frame)
    return out


def _encapsulated_frames(dataset: Any, numbers: list[int]) -> list[bytes]:
    from pydicom.encaps import generate_frames

    total = int(dataset.get("NumberOfFrames", 1) or 1)
    wanted = set(numbers)
    found: dict[int, bytes] = {}
    for index, frame in enumerate(
        generate_frames(dataset.PixelData, number_of_frames=total), start=1
    ):
        if index in wanted:
            found[index] = frame
        if len(found) == len(wanted):
            break
    if len(found) != len(wanted):
        raise UnreadableDicom("The pixel data holds fewer frames than it says.")
    return [found[n] for n in numbers]


def _decoded_frames(dataset: Any, numbers: list[int]) -> list[bytes]:
    from pydicom.pixels import pixel_array

    out = []
    for n in numbers:
        array = pixel_array(dataset, index=n - 1, raw=True)
        out.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return out


def read_frames(
    data: bytes, numbers: list[int], *, accept: frozenset[str] | None
) -> tuple[str, list[bytes]]:
    """`accept`: the media types the client takes for a frame; None: any."""
    from pydicom import dcmread

    def takes(media_type: str) -> bool:
        return accept is None or media_type in accept

    try:
        dataset = dcmread(io.BytesIO(data))
        if "PixelData" not in dataset:
            raise UnreadableDicom("The instance has no pixel data.")
        syntax = str(dataset.file_meta.TransferSyntaxUID)
        stored = stored_media_type(syntax)
        if not dataset.file_meta.TransferSyntaxUID.is_compressed and takes(OCTET_STREAM):
            return OCTET_STREAM, _native_frames(dataset, numbers, syntax)
        if dataset.file_meta.TransferSyntaxUID.is_compressed and takes(stored):
            return stored, _encapsulated_frames(dataset, numbers)
        if dataset.file_meta.TransferSyntaxUID.is_compressed and takes(OCTET_STREAM):
            return OCTET_STREAM, _decoded_frames(dataset, numbers)
        raise NotAcceptable(
            f"The frames can be sent as {stored} or {OCTET_STREAM}."
            if stored != OCTET_STREAM
            else f"The frames can be sent as {OCTET_STREAM}."
        )
    except (UnreadableDicom, NotAcceptable):
        raise
    except (Exception, RecursionError) as exc:
        raise UnreadableDicom(f"The frames could not be read ({type(exc).__name__}).") from None
