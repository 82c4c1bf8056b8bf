"""A database that answers too slowly (here: a table held under an exclusive lock
by someone else) costs a request the statement timeout, then a 503 with
Retry-After, never a hang; the outage is one log line, however many requests."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from litestar.testing import AsyncTestClient

from tests.conftest import register_patient, settings_for

PROBLEM = "application/problem+json"


async def test_a_stuck_statement_answers_503_within_the_timeout(
    database_dsn: str, data_dir: Path, superuser_conn, caplog
):
    from api.app import create_app

    settings = settings_for(database_dsn, data_dir, {"PHR_DB_STATEMENT_TIMEOUT": "1"})
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        patient = await register_patient(client)
        assert (await client.get("/v1/records", headers=patient.headers)).status_code == 200
        transaction = superuser_conn.transaction()
        await transaction.start()
        try:
            await superuser_conn.execute("LOCK TABLE record IN ACCESS EXCLUSIVE MODE")
            caplog.set_level(logging.WARNING)
            timings = []
            for _ in range(3):
                started = time.monotonic()
                response = await client.get("/v1/records", headers=patient.headers)
                timings.append(time.monotonic() - started)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith(PROBLEM)
                assert response.headers["retry-after"].isdigit()
                assert "statement timeout" in response.json()["detail"]
            # The profile does not touch the locked table: unaffected.
            assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200
        finally:
            await transaction.rollback()
        assert max(timings) < 4, timings
        response = await client.get("/v1/records", headers=patient.headers)
        assert response.status_code == 200
    began = [r for r in caplog.records if r.name == "phr.outage" and "unavailable" in r.message]
    assert len(began) == 1, [r.message for r in began]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"
