"""QR codes of share links (error correction M), PNG or SVG, rendered in a worker
process so the event loop keeps answering.

`qrcode` computes the matrix; the images are written here from it. Its own PNG
and SVG writers draw module by module in pure Python (about 30 ms for a viewer
URL, five times the matrix itself), while a row of pixels is a byte string
that repeats."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import struct
import zlib

import qrcode

from domain.sharing.model import QrFormat

# qrcode tries all eight masks and scores each unless one is given; any mask is
# valid and every reader handles it, so we fix one.
_MASK = 2
_BORDER = 4
_PNG_SCALE = 6
_SVG_SCALE = 10


def qr_matrix(text: str) -> list[list[bool]]:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=_BORDER, mask_pattern=_MASK
    )
    qr.add_data(text)
    qr.make(fit=True)
    return qr.get_matrix()  # with the quiet zone


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png(matrix: list[list[bool]], scale: int = _PNG_SCALE) -> bytes:
    """A 1-bit greyscale PNG: black modules on white."""
    size = len(matrix) * scale
    rows = bytearray()
    for modules in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in modules)
        bits += "1" * (-len(bits) % 8)
        row = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")
        rows += row * scale
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def svg(matrix: list[list[bool]], scale: int = _SVG_SCALE) -> bytes:
    """One path of horizontal runs of dark modules."""
    size = len(matrix)
    parts: list[str] = []
    for y, modules in enumerate(matrix):
        x = 0
        while x < size:
            if modules[x]:
                start = x
                while x < size and modules[x]:
                    x += 1
                parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    pixels = size * scale
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(parts)}"/></svg>\n'
    ).encode()


def render_qr(text: str, fmt: QrFormat) -> bytes:
    matrix = qr_matrix(text)
    return png(matrix) if fmt == "png" else svg(matrix)


class ProcessQrRenderer:
    """Renders in a worker process: QR encoding is pure Python and would hold this
    process's GIL for milliseconds per code, competing with the event loop; a
    process of its own runs it on another core. Started on first use."""

    def __init__(self, workers: int = 1):
        self._workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process running threads and an event loop is unsafe.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def render(self, text: str, fmt: QrFormat) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), render_qr, text, fmt)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
