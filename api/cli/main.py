"""`phr`: the operator's command line: serve, migrate, openapi, and the
sub-commands in this package (keys, hospitals)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from api.cli import hospitals, keys, notifications
from api.cli.database import database_dsn
from api.request_log import configure_logging
from infra.settings import Settings, SettingsError, load_settings

log = logging.getLogger("phr.cli")


def _migrate(dsn: str) -> list[str]:
    from infra.pg.migration_runner import migrate

    return asyncio.run(migrate(dsn))


def _exit_after_graceful_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal
    # again with the handler it found; the default SIGTERM one would kill the
    # process before `database_dsn` stops the embedded server (and SIGINT's prints
    # a traceback), so leave through SystemExit, which runs the `finally`.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_after_graceful_shutdown)
    with database_dsn(settings) as dsn:
        applied = _migrate(dsn)
        log.info(
            "database ready",
            extra={"migrationsApplied": applied, "embedded": settings.uses_embedded_database},
        )
        os.environ["PHR_RESOLVED_DATABASE_URL"] = dsn
        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            access_log=False,
            proxy_headers=False,
        )
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """The background-job worker alone, for deployments that scale it apart from
    `phr serve` (which runs one too unless PHR_WORKER=off). Stops on SIGTERM/SIGINT,
    giving jobs in flight a grace period."""

    async def run(dsn: str) -> None:
        from infra.background_jobs import build_worker
        from infra.bootstrap import close_services, open_services

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        services = await open_services(settings, dsn)
        try:
            await build_worker(services).run_until_stopped(stop)
        finally:
            await close_services(services)

    with database_dsn(settings) as dsn:
        _migrate(dsn)
        asyncio.run(run(dsn))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Migrates as the owner, then checks (or, where phr may, makes) the role the
    service logs in as: no superuser, no BYPASSRLS, no table ownership."""
    from infra.pg.serving_role import ServingRoleError, serving_dsn

    with database_dsn(settings) as dsn:
        applied = _migrate(dsn)
        try:
            served = asyncio.run(serving_dsn(dsn, settings.data_dir, settings.serving_database_url))
        except ServingRoleError as exc:
            print(f"phr: {exc}", file=sys.stderr)
            return 1
    from urllib.parse import unquote, urlsplit

    role = unquote(urlsplit(served).username or "")
    print(json.dumps({"applied": applied, "servingRole": role}))
    return 0


def cmd_openapi(settings: Settings, args: argparse.Namespace) -> int:
    from api.openapi_document import render_openapi

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_openapi())
    print(str(out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phr", description="phr operator commands")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)

    worker = sub.add_parser("worker", help="run the background-job worker alone")
    worker.set_defaults(run=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=cmd_migrate)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", default="openapi/openapi.json")
    openapi.set_defaults(run=cmd_openapi)

    keys.register(sub)
    hospitals.register(sub)
    notifications.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"phr: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return int(args.run(settings, args) or 0)
