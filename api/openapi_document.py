"""The OpenAPI document as committed in openapi/openapi.json.

Litestar describes error responses in its own default shape; every error here
leaves as RFC 9457 problem+json, so the document is rewritten to say so."""

from __future__ import annotations

import json
from typing import Any

from api.app import create_app
from api.routes.records import RAW_REQUEST_BODIES
from infra.settings import load_settings

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each bad field of the request",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
}
_BINARY = {"type": "string", "format": "binary"}
# Responses whose body is a file, declared as binary so that generated clients
# hand back the bytes instead of dropping the response. The QR image is also
# offered as application/octet-stream (Accept decides) for generators that read
# only that type as bytes.
BINARY_RESPONSES: dict[str, dict[str, Any]] = {
    "getLinkQr": {
        "image/png": {"schema": _BINARY},
        "application/octet-stream": {"schema": _BINARY},
    },
    "getLocalBlob": {"application/octet-stream": {"schema": _BINARY}},
    "getShareQr": {
        "image/png": {"schema": _BINARY},
        "image/svg+xml": {"schema": _BINARY},
        "application/octet-stream": {"schema": _BINARY},
    },
    "getShlFile": {
        "application/jose": {"schema": _BINARY},
        "application/octet-stream": {"schema": _BINARY},
    },
}
# The viewers' static script and style sheet: their own types, not JSON.
_TEXT = {"type": "string"}
_VIEWER_ASSET = {"text/javascript": {"schema": _TEXT}, "text/css": {"schema": _TEXT}}
STATIC_RESPONSES: dict[str, dict[str, Any]] = {
    "getViewerAsset": _VIEWER_ASSET,
    "imagingViewerAsset": _VIEWER_ASSET,
}
_INVALID = {
    "description": "The request is well-formed but a value is invalid; `errors` names each field",
    "content": _PROBLEM_CONTENT,
}


def with_problem_details(document: dict[str, Any]) -> dict[str, Any]:
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            raw_body = RAW_REQUEST_BODIES.get(operation.get("operationId", ""))
            if raw_body is not None:
                operation["requestBody"] = raw_body
            responses = operation["responses"]
            operation_id = operation.get("operationId", "")
            content = BINARY_RESPONSES.get(operation_id) or STATIC_RESPONSES.get(operation_id)
            if content is not None:
                responses["200"]["content"] = content
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = _PROBLEM_CONTENT
                    response.pop("headers", None)
            if "400" in responses and "422" not in responses:
                responses["422"] = _INVALID
            if method in {"post", "put", "patch"} and "413" not in responses:
                responses["413"] = {
                    "description": "Request body too large",
                    "content": _PROBLEM_CONTENT,
                }
    return document


def _plain_path_parameters(document: dict[str, Any]) -> None:
    """A handler that serves paths with and without a UID (DICOMweb's study,
    series and instance levels) declares it optional; in each path that names
    it, it is a plain required string, never null."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters") or []:
                options = parameter.get("schema", {}).get("oneOf")
                if parameter.get("in") != "path" or not options:
                    continue
                [schema] = [o for o in options if o.get("type") != "null"]
                outer = {k: v for k, v in parameter["schema"].items() if k != "oneOf"}
                parameter["schema"] = schema = {**schema, **outer}
                if "description" in schema:
                    parameter["description"] = schema["description"]


def render_openapi() -> str:
    settings = load_settings({"DATABASE_URL": "postgresql://openapi@localhost/openapi"})
    app = create_app(settings)
    schema = with_problem_details(app.openapi_schema.to_schema())
    _plain_path_parameters(schema)
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
