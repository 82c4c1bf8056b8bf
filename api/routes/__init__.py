"""Every route the service exposes. Each feature module adds its handlers here."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from api.routes import health, local_blobs
    from api.routes import auth, me
    from api.routes import links, webhooks

    return [
        health.healthz,
        health.readyz,
        auth.register,
        auth.login,
        auth.refresh,
        auth.logout,
        auth.jwks,
        me.get_me,
        links.create_link,
        links.list_links,
        links.get_link,
        links.get_link_qr,
        links.revoke_link,
        webhooks.receive_webhook,
        local_blobs.put_local_blob,
        local_blobs.get_local_blob,
    ]
