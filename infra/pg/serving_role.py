"""The role the service logs in as: not the owner of any table, no superuser, no
BYPASSRLS, a member of `phr_app` (which holds the grants the migrations give).

Migrations run as the owner (DATABASE_URL). `phr serve` and `phr worker` connect as:
- PHR_SERVING_DATABASE_URL when set (an operator-made role; `phr migrate` checks it);
- otherwise a login role phr makes itself when the owner may create roles (the
  embedded default, and a server where DATABASE_URL is a superuser or has
  CREATEROLE): `phr_serve_<hash of the database name>`, one per database because
  roles are cluster-wide and several databases (test runs) may share a server. Its
  password is made on first start and kept in PHR_DATA_DIR/keys/db-serving-role.key.

With the login role itself holding only phr_app's rights, a SQL foothold in the
service cannot `RESET ROLE` into anything stronger, switch triggers off (that
needs ownership) or set session_replication_role (superuser only)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from infra.secret_box import _key_file

APP_ROLE = "phr_app"


class ServingRoleError(Exception):
    """The serving role is missing or stronger than it may be; the message says what."""


def serving_role_name(database: str) -> str:
    return "phr_serve_" + hashlib.sha256(database.encode()).hexdigest()[:16]


def _database_name(dsn: str) -> str:
    return unquote(urlsplit(dsn).path.lstrip("/")) or "postgres"


def _with_login(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# Roles are cluster-wide: two processes may both see it missing. The advisory lock
# lines up processes on this database; duplicate_object / unique_violation covers
# anyone else creating the same name at the same moment.
_ENSURE_ROLE = """
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('phr.serving_role', 0));
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name_literal}) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
                           ' NOREPLICATION INHERIT', {name_literal});
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
                   ' NOREPLICATION INHERIT PASSWORD %L', {name_literal}, {password_literal});
    EXECUTE format('GRANT %I TO %I', 'phr_app', {name_literal});
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), {name_literal});
END
$$
"""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision_serving_role(owner_dsn: str, data_dir: Path) -> str:
    """Makes (or re-keys) this database's serving role; returns a DSN that logs in as it."""
    password = _key_file(data_dir / "keys" / "db-serving-role.key").hex()
    role = serving_role_name(_database_name(owner_dsn))
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(
            _ENSURE_ROLE.format(name_literal=_literal(role), password_literal=_literal(password))
        )
    except asyncpg.InsufficientPrivilegeError as exc:
        raise ServingRoleError(
            "DATABASE_URL's role may not create roles; create a serving role (see README, "
            f"'Database roles') and set PHR_SERVING_DATABASE_URL ({exc})"
        ) from None
    finally:
        await conn.close()
    return _with_login(owner_dsn, role, password)


_CHECK = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       pg_has_role(current_user, 'phr_app', 'USAGE') AS has_app_rights,
       (SELECT array_agg(DISTINCT pg_get_userbyid(c.relowner))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
          AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owns_through
FROM pg_roles r WHERE r.rolname = current_user
"""


async def check_serving_role(serving_dsn: str) -> list[str]:
    """What is wrong with the role `serving_dsn` logs in as (empty: nothing)."""
    conn = await asyncpg.connect(serving_dsn)
    try:
        row = await conn.fetchrow(_CHECK)
    finally:
        await conn.close()
    problems = []
    name = row["rolname"]
    if row["rolsuper"]:
        problems.append(f"{name} is a superuser")
    if row["rolbypassrls"]:
        problems.append(f"{name} has BYPASSRLS")
    if row["rolcreaterole"] or row["rolcreatedb"]:
        problems.append(f"{name} may create roles or databases")
    if not row["has_app_rights"]:
        problems.append(f"{name} is not a member of {APP_ROLE} (GRANT {APP_ROLE} TO {name})")
    if row["owns_through"]:
        owners = ", ".join(sorted(row["owns_through"]))
        problems.append(f"{name} owns tables or can act as their owner ({owners})")
    return problems


async def serving_dsn(owner_dsn: str, data_dir: Path, configured: str | None) -> str:
    """The DSN the service's pool uses, checked."""
    if configured:
        dsn = configured
    else:
        try:
            dsn = await provision_serving_role(owner_dsn, data_dir)
        except ServingRoleError:
            # Given a DSN that already logs in as a plain serving role (an operator
            # command handed the service's own DSN): use it as it is.
            if await check_serving_role(owner_dsn):
                raise
            dsn = owner_dsn
    problems = await check_serving_role(dsn)
    if problems:
        raise ServingRoleError("the serving database role is too strong: " + "; ".join(problems))
    return dsn
