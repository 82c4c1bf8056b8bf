"""`phr notifications`: the push outbox as the operator sees it.

`dead-letters` lists deliveries given up on (after the bounded attempts, or
refused by the push service); `deliver` sends what is due now (the worker does
this every second); `scan` runs the refill scan once (the worker runs it hourly)."""

from __future__ import annotations

import argparse
import asyncio
import json

from api.cli.database import database_dsn
from infra.settings import Settings


async def _with_services(settings: Settings, dsn: str, action):
    from infra.bootstrap import close_services, open_services

    services = await open_services(settings, dsn)
    try:
        return await action(services)
    finally:
        await close_services(services)


async def dead_letters(settings: Settings, dsn: str, limit: int) -> list[dict]:
    async def action(services) -> list[dict]:
        rows = await services.outbox.dead_letters(limit)
        return [
            {
                "deliveryId": str(r.delivery_id),
                "notificationId": str(r.notification_id),
                "patientId": str(r.patient_id),
                "kind": r.kind,
                "attempts": r.attempts,
                "lastError": r.last_error,
                "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
            }
            for r in rows
        ]

    return await _with_services(settings, dsn, action)


async def deliver_due(settings: Settings, dsn: str) -> int:
    async def action(services) -> int:
        sent = 0
        while (claimed := await services.push_dispatcher.run_once()) > 0:
            sent += claimed
        return sent

    return await _with_services(settings, dsn, action)


async def refill_scan(settings: Settings, dsn: str) -> int:
    return await _with_services(settings, dsn, lambda services: services.refill_scan.run())


def register(sub: argparse._SubParsersAction) -> None:
    notifications = sub.add_parser("notifications", help="the push outbox and refill scan")
    commands = notifications.add_subparsers(dest="notifications_command", required=True)

    dead = commands.add_parser("dead-letters", help="deliveries given up on, newest first")
    dead.add_argument("--limit", type=int, default=100)

    def run_dead(settings: Settings, args: argparse.Namespace) -> int:
        with database_dsn(settings) as dsn:
            rows = asyncio.run(dead_letters(settings, dsn, args.limit))
        for row in rows:
            print(json.dumps(row))
        return 0

    dead.set_defaults(run=run_dead)

    deliver = commands.add_parser("deliver", help="send every push that is due now")

    def run_deliver(settings: Settings, args: argparse.Namespace) -> int:
        with database_dsn(settings) as dsn:
            print(json.dumps({"claimed": asyncio.run(deliver_due(settings, dsn))}))
        return 0

    deliver.set_defaults(run=run_deliver)

    scan = commands.add_parser("scan", help="run the refill scan once")

    def run_scan(settings: Settings, args: argparse.Namespace) -> int:
        with database_dsn(settings) as dsn:
            print(json.dumps({"added": asyncio.run(refill_scan(settings, dsn))}))
        return 0

    scan.set_defaults(run=run_scan)
