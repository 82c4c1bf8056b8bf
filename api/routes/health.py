from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.exceptions import ServiceUnavailableException

from api.deps import ServicesDep
from infra.pg.migration_runner import pending


class Health(msgspec.Struct):
    status: str


@get("/healthz", operation_id="getHealth", summary="Liveness: the process is up", tags=["ops"])
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers and every migration is applied",
    tags=["ops"],
    raises=[ServiceUnavailableException],
)
async def readyz(services: ServicesDep) -> Response[Health]:
    try:
        async with services.database.pool.acquire(timeout=2) as conn:
            missing = await pending(conn)
    except Exception as exc:
        raise ServiceUnavailableException(
            "database is not reachable", headers={"Retry-After": "5"}
        ) from exc
    if missing:
        raise ServiceUnavailableException(
            f"{len(missing)} migration(s) not applied", headers={"Retry-After": "5"}
        )
    return Response(Health(status="ready"))
