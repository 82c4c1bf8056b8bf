"""Every route the service exposes. Each feature module adds its handlers here."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from api.routes import health

    return [
        health.healthz,
        health.readyz,
    ]
