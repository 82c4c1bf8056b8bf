"""Typed dependencies that handlers declare."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from api.client_address import client_address
from domain.audit.events import RequestContext
from infra.bootstrap import Services

ServicesDep = NamedDependency[Services]


def request_context(request: Request[Any, Any, Any]) -> RequestContext:
    """Where the request came from, for audit rows."""
    peer = request.client.host if request.client else None
    services = getattr(request.app.state, "services", None)
    trusted = services.settings.trusted_proxies if services is not None else ()
    client = client_address(peer, request.headers.items(), trusted)
    user_agent = request.headers.get("user-agent")
    return RequestContext(
        client_address=client,
        user_agent=user_agent[:256] if user_agent else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


RequestContextDep = NamedDependency[RequestContext]
