"""`phr keys rotate`: make a new current signing key for access tokens. Tokens
signed with the previous key keep verifying until they expire."""

from __future__ import annotations

import argparse
import asyncio
import json

from api.cli.database import database_dsn
from domain.clock import SystemClock
from domain.ports import Clock
from infra.access_tokens import verify_retired_for
from infra.pg.database import Database
from infra.pg.signing_keys import PgSigningKeys
from infra.settings import Settings


async def rotate_signing_key(
    dsn: str, settings: Settings, *, clock: Clock | None = None
) -> dict[str, str | None]:
    database = Database(dsn, min_size=1, max_size=1)
    await database.open()
    try:
        keys = PgSigningKeys(
            database, verify_retired_for=verify_retired_for(settings.access_token_ttl_seconds)
        )
        kid, retired = await keys.rotate((clock or SystemClock()).now())
    finally:
        await database.close()
    return {"kid": kid, "retiredKid": retired}


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
