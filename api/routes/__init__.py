"""Every route the service exposes. Each feature module adds its handlers here."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from api.routes import health, local_blobs

    return [
        health.healthz,
        health.readyz,
        local_blobs.put_local_blob,
        local_blobs.get_local_blob,
    ]
