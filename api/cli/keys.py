"""`phr keys rotate`: make a new current signing key for access tokens. Tokens
signed with the previous key keep verifying until they expire. The rotation is
the domain's use case and leaves an audit row."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from api.cli.database import PendingMigrations, database_dsn, operator_services
from domain.ports import Clock
from infra.settings import Settings


async def rotate_signing_key(
    dsn: str, settings: Settings, *, clock: Clock | None = None
) -> dict[str, str | None]:
    async with operator_services(dsn, settings, clock) as services:
        rotated = await services.signing_key_rotation.rotate()
    return {"kid": rotated.kid, "retiredKid": rotated.retired_kid}


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="access-token signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="make a new current signing key (the previous one still verifies)"
    )

    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            with database_dsn(settings) as dsn:
                result = asyncio.run(rotate_signing_key(dsn, settings))
        except PendingMigrations as exc:
            print(f"phr: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result))
        return 0

    rotate.set_defaults(run=run)
