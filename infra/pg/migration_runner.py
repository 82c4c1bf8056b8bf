"""Numbered SQL migrations: each in its own transaction, recorded with a checksum,
serialised across processes with an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from importlib import resources
from typing import NamedTuple

import asyncpg

log = logging.getLogger("phr.migrations")

# Any constant works; it only has to be the same in every phr process.
_ADVISORY_LOCK_KEY = 0x7068_725F_6D69  # "phr_mi"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    pass


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("infra.pg") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number: {versions}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _applied(conn: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migration")
    return {row["version"]: row for row in rows}


def _check_applied(applied: dict[int, asyncpg.Record], migrations: list[Migration]) -> None:
    by_version = {m.version: m for m in migrations}
    for version, row in applied.items():
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"database has migration {row['name']} that this code does not know; "
                "is an older phr running against a newer database?"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {migration.name} was changed after it was applied "
                "(checksum differs); add a new migration instead of editing an applied one"
            )


async def migrate(dsn: str) -> list[str]:
    """Apply every pending migration; return the names applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
        try:
            await conn.execute(_CREATE_TABLE)
            migrations = available_migrations()
            applied = await _applied(conn)
            _check_applied(applied, migrations)
            done: list[str] = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                log.info("applied migration", extra={"migration": migration.name})
                done.append(migration.name)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def pending(conn: asyncpg.Connection) -> list[str]:
    """Names of migrations not yet applied (for readiness)."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migration') IS NOT NULL")
    applied = await _applied(conn) if exists else {}
    return [m.name for m in available_migrations() if m.version not in applied]
