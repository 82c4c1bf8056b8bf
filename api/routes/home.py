"""GET /: where a newcomer (or a script) finds the documentation, health and the viewer."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get


class HomeLinks(msgspec.Struct, rename="camel"):
    documentation: str
    openapi: str
    health: str
    readiness: str
    viewer: str


class Home(msgspec.Struct, rename="camel"):
    service: str
    description: str
    links: HomeLinks


@get(
    "/",
    operation_id="getHome",
    summary="Links to the API documentation, health checks and the share viewer",
    tags=["ops"],
)
async def home(request: Request[Any, Any, Any]) -> Home:
    # Absolute links on the address the caller used (PHR_TRUSTED_PROXIES decides
    # whether a proxy's forwarded host counts).
    base = str(request.base_url).rstrip("/")
    return Home(
        service="phr",
        description="Portable health record: the patient's records from every hospital, "
        "shared on the patient's terms.",
        links=HomeLinks(
            documentation=f"{base}/openapi",
            openapi=f"{base}/openapi/openapi.json",
            health=f"{base}/healthz",
            readiness=f"{base}/readyz",
            viewer=f"{base}/viewer",
        ),
    )
