"""`phr keys rotate`: make a new current signing key for access tokens (tokens
signed with the previous key keep verifying until they expire). `phr keys revoke
KID`: tokens signed with that key stop verifying at once (a leaked key)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.cli.database import database_dsn
from domain.clock import SystemClock
from domain.ports import Clock
from infra.access_tokens import verify_retired_for
from infra.pg.database import Database
from infra.pg.signing_keys import PgSigningKeys
from infra.secret_box import load_secret_box
from infra.settings import Settings


@asynccontextmanager
async def _signing_keys(dsn: str, settings: Settings) -> AsyncIterator[PgSigningKeys]:
    database = Database(dsn, min_size=1, max_size=1)
    await database.open()
    try:
        yield PgSigningKeys(
            database,
            load_secret_box(settings.data_dir, os.environ.get("PHR_SECRETS_KEY")),
            verify_retired_for=verify_retired_for(settings.access_token_ttl_seconds),
        )
    finally:
        await database.close()


async def rotate_signing_key(
    dsn: str, settings: Settings, *, clock: Clock | None = None
) -> dict[str, str | None]:
    async with _signing_keys(dsn, settings) as keys:
        kid, retired = await keys.rotate((clock or SystemClock()).now())
    return {"kid": kid, "retiredKid": retired}


async def revoke_signing_key(
    dsn: str, settings: Settings, kid: str, *, clock: Clock | None = None
) -> dict[str, str | bool]:
    async with _signing_keys(dsn, settings) as keys:
        revoked = await keys.revoke(kid, (clock or SystemClock()).now())
    return {"kid": kid, "revoked": revoked}


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="access-token signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="make a new current signing key (the previous one still verifies)"
    )

    def run(settings: Settings, args: argparse.Namespace) -> int:
        with database_dsn(settings) as dsn:
            result = asyncio.run(rotate_signing_key(dsn, settings))
        print(json.dumps(result))
        return 0

    rotate.set_defaults(run=run)

    revoke = keys_sub.add_parser(
        "revoke", help="revoke a signing key: tokens it signed stop verifying at once"
    )
    revoke.add_argument("kid", help="the key's id (the `kid` of tokens it signed)")

    def run_revoke(settings: Settings, args: argparse.Namespace) -> int:
        with database_dsn(settings) as dsn:
            result = asyncio.run(revoke_signing_key(dsn, settings, args.kid))
        print(json.dumps(result))
        return 0 if result["revoked"] else 1

    revoke.set_defaults(run=run_revoke)
