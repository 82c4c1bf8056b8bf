"""The one place request bodies are read: every route that takes a body (Litestar's
own data extraction and the routes that read raw bytes alike) goes through
`Request.body()`, so every JSON body is measured here before anything decodes it.

A JSON body is then held to its declared type as the contract reads it. Litestar
converts the decoded body leniently (msgspec `strict=False`): "3" for an integer,
0 or "true" for a boolean were accepted although the OpenAPI document says
`integer` and `boolean`. Here the body is checked strictly first, with one
concession that is JSON Schema's own: a number with a zero fraction (3.0) is an
integer."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

from domain.json_depth import check_json_depth

_CHECKED = "phr_body_depth_checked"
_PATH = re.compile(r"`\$\.(.+)`$")


def _as_json_schema_reads_it(value: Any) -> Any:
    """The decoded body with each integral float an int: JSON Schema does not tell
    3.0 from 3 (and msgspec accepts an int wherever a float is declared)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_as_json_schema_reads_it(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_json_schema_reads_it(item) for key, item in value.items()}
    return value


def _problem(error: msgspec.ValidationError) -> ValidationException:
    # The same field naming as Litestar's own body errors (path below the body).
    text = str(error)
    match = _PATH.search(text)
    key = match.group(1) if match else "data"
    message = {"message": text.split(" - ", 1)[0], "key": key, "source": "body"}
    return ValidationException(detail="Validation failed for the request body", extra=[message])


class BoundedRequest(Request[Any, Any, Any]):
    async def body(self) -> bytes:
        body = await super().body()
        state = self.scope.setdefault("state", {})
        if not state.get(_CHECKED):
            # Raises NestedTooDeep (400 problem+json) before any decoder sees it.
            check_json_depth(body)
            state[_CHECKED] = True
        return body

    async def json(self) -> Any:
        value = await super().json()
        data = self.route_handler.parsed_fn_signature.parameters.get("data")
        if data is not None:
            try:
                msgspec.convert(_as_json_schema_reads_it(value), data.annotation, strict=True)
            except msgspec.ValidationError as error:
                raise _problem(error) from None
        return value
