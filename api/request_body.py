"""The one place request bodies are read: every route that takes a body (Litestar's
own data extraction and the routes that read raw bytes alike) goes through
`Request.body()`, so every JSON body is measured here before anything decodes it."""

from __future__ import annotations

from typing import Any

from litestar import Request

from domain.json_depth import check_json_depth

_CHECKED = "phr_body_depth_checked"


class BoundedRequest(Request[Any, Any, Any]):
    async def body(self) -> bytes:
        body = await super().body()
        state = self.scope.setdefault("state", {})
        if not state.get(_CHECKED):
            # Raises NestedTooDeep (400 problem+json) before any decoder sees it.
            check_json_depth(body)
            state[_CHECKED] = True
        return body
