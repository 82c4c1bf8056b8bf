"""The OpenAPI document as committed in openapi/openapi.json."""

from __future__ import annotations

import json

from api.app import create_app
from infra.settings import load_settings


def render_openapi() -> str:
    settings = load_settings({"DATABASE_URL": "postgresql://openapi@localhost/openapi"})
    app = create_app(settings)
    schema = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
