"""`phr hospital add --name NAME [--city CITY]`, `phr hospital list` and
`phr hospital rotate-secret ID`.

They talk to the same database as `phr serve` (the embedded server already
running on the data folder is reused, never started twice). They do not migrate:
if migrations are pending they stop and say to run `phr migrate` (or start
`phr serve`), so an operator command never changes the schema under a running
server. The secrets key is the server's (Settings: PHR_SECRETS_KEY, else
<PHR_DATA_DIR>/keys/secrets.key)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from typing import Any
from uuid import UUID

from api.cli.database import PendingMigrations, database_dsn, operator_services
from domain.errors import DomainError
from domain.ports import Clock
from infra.settings import Settings


async def add_hospital(
    dsn: str,
    settings: Settings,
    name: str,
    *,
    city: str | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    async with operator_services(dsn, settings, clock) as services:
        hospital, secret = await services.hospitals.add(name, city)
    added = {"id": str(hospital.id), "name": hospital.name, "webhookSecret": secret}
    if hospital.city:
        added["city"] = hospital.city
    return added


async def list_hospitals(dsn: str, settings: Settings) -> list[dict[str, Any]]:
    """Ids, names and cities; never a secret."""
    async with operator_services(dsn, settings, None) as services:
        listed = await services.hospitals.list()
    return [
        {
            "id": str(h.id),
            "name": h.name,
            "city": h.city,
            "createdAt": h.created_at.isoformat().replace("+00:00", "Z"),
        }
        for h in listed
    ]


async def rotate_hospital_secret(
    dsn: str, settings: Settings, hospital_id: UUID, grace: timedelta, *, clock: Clock | None = None
) -> dict[str, Any]:
    async with operator_services(dsn, settings, clock) as services:
        secret, until = await services.hospitals.rotate_secret(UUID(str(hospital_id)), grace)
    return {
        "id": str(hospital_id),
        "webhookSecret": secret,
        "previousSecretsValidUntil": until.isoformat().replace("+00:00", "Z"),
    }


def _fail(message: str) -> int:
    print(f"phr: {message}", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    hospital = sub.add_parser("hospital", help="hospitals that push records")
    hospital_sub = hospital.add_subparsers(dest="hospital_command", required=True)

    add = hospital_sub.add_parser("add", help="add a hospital; prints its id and webhook secret")
    add.add_argument("--name", required=True)
    add.add_argument("--city", default=None)

    def run_add(settings: Settings, args: argparse.Namespace) -> int:
        try:
            with database_dsn(settings) as dsn:
                result = asyncio.run(add_hospital(dsn, settings, args.name, city=args.city))
        except (PendingMigrations, DomainError) as exc:
            return _fail(str(exc))
        print(json.dumps(result, ensure_ascii=False))
        return 0

    add.set_defaults(run=run_add)

    listing = hospital_sub.add_parser("list", help="every hospital: id, name, city (no secrets)")

    def run_list(settings: Settings, args: argparse.Namespace) -> int:
        try:
            with database_dsn(settings) as dsn:
                result = asyncio.run(list_hospitals(dsn, settings))
        except (PendingMigrations, DomainError) as exc:
            return _fail(str(exc))
        print(json.dumps(result, ensure_ascii=False))
        return 0

    listing.set_defaults(run=run_list)

    rotate = hospital_sub.add_parser(
        "rotate-secret", help="a new webhook secret; the old one stays valid for the grace period"
    )
    rotate.add_argument("hospital_id", type=UUID, metavar="ID")
    rotate.add_argument("--grace-hours", type=float, default=24.0)

    def run_rotate(settings: Settings, args: argparse.Namespace) -> int:
        try:
            with database_dsn(settings) as dsn:
                result = asyncio.run(
                    rotate_hospital_secret(
                        dsn, settings, args.hospital_id, timedelta(hours=args.grace_hours)
                    )
                )
        except (PendingMigrations, DomainError) as exc:
            return _fail(str(exc))
        print(json.dumps(result))
        return 0

    rotate.set_defaults(run=run_rotate)
