"""`Allow` on OPTIONS answers lists every method of the path.

Litestar answers OPTIONS with the methods of the first handler registered for a
path; where GET and POST (or GET and DELETE) are separate handlers, the others
were missing, and clients (and schemathesis) were told a documented method did
not exist. The full set is read from the app's routes for the matched path."""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send


@cache
def _methods(app: Any, path: str) -> bytes:
    methods = set()
    for route in app.routes:
        if route.path == path:
            methods |= set(getattr(route, "methods", ()))
    return ", ".join(sorted(methods | {"OPTIONS"})).encode()


def allow_header_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":
            await app(scope, receive, send)
            return

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                handler = scope.get("route_handler")
                litestar_app = scope.get("app")
                has_allow = any(name.lower() == b"allow" for name, _ in headers)
                if has_allow and handler is not None and litestar_app is not None:
                    path = sorted(handler.paths)[0]
                    headers = [(n, v) for n, v in headers if n.lower() != b"allow"]
                    headers.append((b"allow", _methods(litestar_app, path)))
                    message["headers"] = headers  # type: ignore[typeddict-unknown-key]
            await send(message)

        await app(scope, receive, send_allow)

    return middleware
