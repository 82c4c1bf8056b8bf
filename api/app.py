"""The Litestar application: routes, error mapping, and the lifespan that opens
the pool and every adapter."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api.allow_header import allow_header_middleware
from api.current_patient import provide_audited_reader, provide_current_patient
from api.deps import USE_CASES, request_context
from api.problems import exception_handlers, unavailable_handler
from api.request_body import BoundedRequest
from api.request_log import configure_logging, request_id_middleware
from api.routes import route_handlers
from api.struct_schemas import ContractStructSchemaPlugin
from domain.ports import Clock
from infra.bootstrap import close_services, open_services
from infra.pg.database import UNAVAILABLE_ERRORS, unavailable_reason
from infra.settings import Settings, load_settings

API_VERSION = "1.0.0"


def create_app(
    settings: Settings,
    dsn: str | None = None,
    *,
    clock: Clock | None = None,
    freeze_heap: bool = False,
) -> Litestar:
    """`dsn` is the database to use; by default the configured DATABASE_URL
    (the embedded server's DSN is passed in by `phr serve`). `freeze_heap` is for
    a serving process that runs one app for its whole life (see the lifespan)."""
    database_dsn = dsn or settings.database_url

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if database_dsn is None:
            raise RuntimeError("no database: set DATABASE_URL or start through `phr serve`")
        services = await open_services(settings, database_dsn, clock=clock)
        app.state.services = services
        app.state.outages = services.database.outages
        # For request_context: whose Forwarded / X-Forwarded-For is believed.
        app.state.trusted_proxies = settings.trusted_proxies
        worker = None
        try:
            if settings.worker_enabled:
                from infra.background_jobs import build_worker

                worker = build_worker(services)
                await worker.start()
            if freeze_heap:
                # Everything made so far (modules, routes, schemas, services) lives
                # as long as the process: moved out of the collector's reach, a
                # full collection no longer walks it, which was a pause of tens of
                # milliseconds now and then under load (the p99 of a read).
                gc.collect()
                gc.freeze()
            yield
        finally:
            try:
                if worker is not None:
                    await worker.stop()
            finally:
                await close_services(services)

    return Litestar(
        route_handlers=route_handlers(),
        lifespan=[lifespan],
        dependencies={
            **{name: _from_services(attribute) for name, attribute in USE_CASES.items()},
            "patient": Provide(provide_current_patient),
            "reader": Provide(provide_audited_reader),
            "context": Provide(request_context, sync_to_thread=False),
        },
        exception_handlers={
            **dict.fromkeys(UNAVAILABLE_ERRORS, unavailable_handler(unavailable_reason)),
            **exception_handlers,
        },
        middleware=[request_id_middleware, allow_header_middleware],
        request_max_body_size=settings.max_body_bytes,
        request_class=BoundedRequest,
        openapi_config=openapi_config(),
        plugins=[ContractStructSchemaPlugin()],
        debug=False,
        # Logging is ours (JSON lines with request ids), configured by the entry point.
        logging_config=None,
    )


def _from_services(attribute: str) -> Provide:
    """One use case (or the clock) from the services the lifespan opened."""

    def provide(state: State) -> Any:
        return getattr(state.services, attribute)

    return Provide(provide, sync_to_thread=False)


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="phr",
        version=API_VERSION,
        description="Portable health record: the patient's records from every hospital, "
        "shared on the patient's terms.",
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            }
        ),
        path="/openapi",
        create_examples=False,
        use_handler_docstrings=False,
    )


def create_app_from_env() -> Litestar:
    """Entry for `uvicorn --factory` workers; `phr serve` puts the resolved DSN
    (embedded or external) in PHR_RESOLVED_DATABASE_URL."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(
        settings,
        os.environ.get("PHR_RESOLVED_DATABASE_URL") or settings.database_url,
        freeze_heap=True,
    )
