"""GET /: where a newcomer (or a script) finds the documentation, health and the viewer."""

from __future__ import annotations

import msgspec
from litestar import get

from api.deps import ServicesDep


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
async def home(services: ServicesDep) -> Home:
    base = services.settings.public_url
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
