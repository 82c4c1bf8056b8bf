"""`phr serve` with no DATABASE_URL: the embedded PostgreSQL starts with it,
stops with it on SIGTERM, and its data folder serves again after a restart."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from infra.embedded_postgres import EmbeddedPostgres, _process_alive
from tests.e2e.service import REPO_ROOT, running_service, service_env, stop_service
from tests.mail_support import code_from_folder


def test_serve_starts_and_stops_its_embedded_database_across_a_restart(serve_data_dir):
    data_dir = serve_data_dir
    embedded = EmbeddedPostgres(data_dir)

    with running_service(data_dir) as service:
        ready = httpx.get(service.url("/readyz"), timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}
        postmaster = embedded.running()
        assert postmaster is not None
        # An operator command beside the running service uses its server and
        # leaves it running.
        migrate = subprocess.run(
            [sys.executable, "-m", "api.cli", "migrate"],
            cwd=REPO_ROOT,
            env=service_env(data_dir, 0),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr
        report = json.loads(migrate.stdout)
        assert report["applied"] == [] and report["servingRole"].startswith("phr_serve_")
        assert embedded.running() == postmaster
        assert httpx.get(service.url("/readyz"), timeout=5).status_code == 200

        # A patient's whole account life over real HTTP.
        with service.client() as http:
            account = {"email": "Ada.Lovelace@Example.org", "password": "analytical engine notes"}
            assert http.post("/v1/auth/register", json=account).status_code == 202
            # The code comes by mail: an .eml file, sent by the worker inside `phr serve`.
            code = code_from_folder(data_dir / "mail", "Ada.Lovelace@example.org")
            verified = http.post(
                "/v1/auth/verify-email", json={"email": account["email"], "code": code}
            )
            assert verified.status_code == 204, verified.text
            tokens = http.post("/v1/auth/login", json=account).json()
            me = http.get("/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
            assert me.status_code == 200 and me.json()["email"] == "Ada.Lovelace@example.org"
            refreshed = http.post("/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
            assert refreshed.status_code == 200
            pair = refreshed.json()
            assert pair["refreshToken"] != tokens["refreshToken"]
            logout = http.post("/v1/auth/logout", json={"refreshToken": pair["refreshToken"]})
            assert logout.status_code == 204
            again = http.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
            assert again.status_code == 401
        exit_status = stop_service(service)

    assert exit_status == 0, service.log()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not _process_alive(postmaster.pid)
    assert "embedded PostgreSQL stopped" in service.log()

    with running_service(data_dir) as service:
        ready = httpx.get(service.url("/readyz"), timeout=5)
        assert ready.status_code == 200, ready.text
        restarted = embedded.running()
        assert restarted is not None and restarted.pid != postmaster.pid
        # The account survived the restart.
        with service.client() as http:
            login = http.post("/v1/auth/login", json=account)
            assert login.status_code == 200, login.text
            me = http.get(
                "/v1/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"}
            )
            assert me.json()["email"] == "Ada.Lovelace@example.org"
        exit_status = stop_service(service)

    assert exit_status == 0, service.log()
    assert embedded.running() is None
