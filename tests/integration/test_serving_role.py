"""The service's pool logs in as a role that cannot rewrite history: connected as
it (a SQL foothold in the service), audit rows cannot be updated or deleted,
triggers cannot be switched off, and RESET ROLE leads nowhere stronger."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from infra.pg.serving_role import (
    ServingRoleError,
    check_serving_role,
    provision_serving_role,
    serving_dsn,
)


@pytest.fixture
async def serving_conn(services):
    conn = await asyncpg.connect(services.database.dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_pool_logs_in_as_a_plain_role_that_is_not_the_owner(
    serving_conn, superuser_conn, patient
):
    me = await serving_conn.fetchrow(
        "SELECT current_user AS name, session_user AS session, rolsuper, rolbypassrls "
        "FROM pg_roles WHERE rolname = current_user"
    )
    assert me["name"] == me["session"] and me["name"].startswith("phr_serve_")
    assert me["rolsuper"] is False and me["rolbypassrls"] is False
    owner = await superuser_conn.fetchval(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'audit_event'"
    )
    assert owner != me["name"]
    # It reads what the service needs.
    assert await serving_conn.fetchval("SELECT count(*) FROM audit_event") > 0


async def test_the_serving_role_cannot_change_or_remove_history(serving_conn, patient):
    for statement in (
        "UPDATE audit_event SET action = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "DELETE FROM audit_leaf",
        "UPDATE audit_tree_node SET hash = hash",
        "DELETE FROM audit_checkpoint",
        "ALTER TABLE audit_event DISABLE TRIGGER ALL",
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
        "DROP TRIGGER audit_event_append_only ON audit_event",
        "SET session_replication_role = replica",
        "SET ROLE postgres",
        "CREATE TABLE evil (id int)",
        "ALTER ROLE current_user SUPERUSER",
        "ALTER ROLE current_user BYPASSRLS",
    ):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await serving_conn.execute(statement)
        assert (
            isinstance(
                refused.value,
                asyncpg.InsufficientPrivilegeError | asyncpg.CantChangeRuntimeParamError,
            )
            or "permission denied" in str(refused.value)
            or "must be" in str(refused.value)
        ), (
            statement,
            refused.value,
        )


async def test_reset_role_leads_nowhere_stronger(serving_conn):
    await serving_conn.execute("SET ROLE phr_app")
    await serving_conn.execute("RESET ROLE")
    row = await serving_conn.fetchrow(
        "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert row["name"].startswith("phr_serve_") and not row["rolsuper"] and not row["rolbypassrls"]
    with pytest.raises(asyncpg.PostgresError):
        await serving_conn.execute("SET SESSION AUTHORIZATION postgres")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await serving_conn.execute("UPDATE audit_event SET action = 'x'")


async def test_making_the_role_is_idempotent_and_safe_under_a_race(database_dsn, data_dir):
    dsns = await asyncio.gather(*(provision_serving_role(database_dsn, data_dir) for _ in range(4)))
    assert len(set(dsns)) == 1
    assert await check_serving_role(dsns[0]) == []
    conn = await asyncpg.connect(dsns[0])
    await conn.close()


async def test_a_configured_role_that_is_too_strong_is_refused(database_dsn, data_dir):
    # The owner (a superuser here) as the serving role: refused at start and by migrate.
    problems = await check_serving_role(database_dsn)
    assert any("superuser" in p for p in problems)
    with pytest.raises(ServingRoleError, match="too strong"):
        await serving_dsn(database_dsn, data_dir, database_dsn)
