"""`phr keys rotate`: make a new current signing key for access tokens. Tokens
signed with the previous key keep verifying until they expire. `phr keys revoke
KID`: tokens signed with that key stop verifying at once (a leaked key). The rotation is
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


async def revoke_signing_key(
    dsn: str, settings: Settings, kid: str, *, clock: Clock | None = None
) -> dict[str, str | bool]:
    async with operator_services(dsn, settings, clock) as services:
        revoked = await services.signing_key_rotation.revoke(kid)
    return {"kid": kid, "revoked": revoked}


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

    revoke = keys_sub.add_parser(
        "revoke", help="revoke a signing key: tokens it signed stop verifying at once"
    )
    revoke.add_argument("kid", help="the key's id (the `kid` of tokens it signed)")

    def run_revoke(settings: Settings, args: argparse.Namespace) -> int:
        try:
            with database_dsn(settings) as dsn:
                result = asyncio.run(revoke_signing_key(dsn, settings, args.kid))
        except PendingMigrations as exc:
            print(f"phr: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result))
        return 0 if result["revoked"] else 1

    revoke.set_defaults(run=run_revoke)
