"""The doctor's viewer: one static page (HTML, CSS, JavaScript with WebCrypto; no
build step, no third-party script) that reads `#shlink:/...`, resolves the
manifest, decrypts in the browser and renders the summary. The key stays in the
fragment, which browsers never send."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Literal

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

# Scripts and styles from our origin only, never inline; the manifest may live on
# any issuer's origin (other SHL servers), so connect-src is open to https and,
# for local testing, http. PDFs open from blob: URLs made by the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' https: http:; frame-src blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_ASSETS = {"viewer.js": "text/javascript", "viewer.css": "text/css"}


@cache
def _read_static(name: str) -> bytes:
    return resources.files("api").joinpath("static", "viewer", name).read_bytes()


def _static(name: str) -> bytes:
    try:
        return _read_static(name)
    except FileNotFoundError:
        # An installation without the package data: say so, not 500.
        raise NotFoundException("The viewer is not installed with this service.") from None


@get(
    "/viewer",
    operation_id="getViewer",
    summary="The doctor's SMART Health Link viewer (reads #shlink:/... in the browser)",
    tags=["smart-health-links"],
    security=[],
    media_type="text/html",
    raises=[NotFoundException],
)
async def viewer_page() -> Response[bytes]:
    return Response(_static("index.html"), media_type="text/html", headers=SECURITY_HEADERS)


@get(
    "/viewer/{name:str}",
    operation_id="getViewerAsset",
    summary="The viewer's script and stylesheet",
    tags=["smart-health-links"],
    security=[],
    raises=[NotFoundException],
)
async def viewer_asset(
    name: Annotated[
        Literal["viewer.js", "viewer.css"], PathParameter(description="viewer.js or viewer.css")
    ],
) -> Response[bytes]:
    if name not in _ASSETS:
        raise NotFoundException("No such file.")
    return Response(_static(name), media_type=_ASSETS[name], headers=SECURITY_HEADERS)
