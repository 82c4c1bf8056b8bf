from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException

# Why the service cannot serve yet (the database does not answer, migrations are
# pending), or None; provided by the wiring.
Readiness = NamedDependency[Callable[[], Awaitable[str | None]]]


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
async def readyz(readiness: Readiness) -> Response[Health]:
    problem = await readiness()
    if problem is not None:
        raise ServiceUnavailableException(problem, headers={"Retry-After": "5"})
    return Response(Health(status="ready"))
