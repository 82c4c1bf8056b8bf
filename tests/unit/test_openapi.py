"""The committed OpenAPI document is the contract: it must match the code."""

from __future__ import annotations

import json
from pathlib import Path

from api.openapi_document import render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app():
    generated = render_openapi()
    assert COMMITTED.read_text() == generated, (
        "openapi/openapi.json is out of date: run `phr openapi` and commit the result"
    )


def test_every_operation_has_an_id_a_summary_and_its_errors():
    document = json.loads(render_openapi())
    seen_ids = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), where
            assert operation["operationId"] not in seen_ids, where
            seen_ids.add(operation["operationId"])
            assert operation.get("summary"), where
            if path not in {
                "/healthz",
                "/.well-known/jwks.json",
                "/.well-known/phr-audit-log",
                "/v1/audit/checkpoint",
                "/imaging/viewer",
            }:
                errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
                assert errors, f"{where} declares no error responses"


def test_a_standard_generator_makes_a_client_of_every_operation(tmp_path):
    """openapi-python-client (as a client team would run it) warns about nothing it
    cannot generate: every request and response body, files included, is declared."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    command = [sys.executable, "-m", "openapi_python_client", "generate"]
    completed = subprocess.run(
        [
            *command,
            "--path",
            str(COMMITTED),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "client"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "WARNING" not in output and "Unable to" not in output, output
    generated = {p.stem for p in tmp_path.rglob("api/*/*.py")}
    assert {"get_link_qr", "get_local_blob", "export_records"} <= generated
