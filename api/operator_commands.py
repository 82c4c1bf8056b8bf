"""Operator sub-commands beyond serve/migrate/openapi (keys, hospitals). Each
feature registers its own parser here."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager

from infra.settings import Settings

DsnProvider = Callable[[Settings], AbstractContextManager[str]]


def register(sub: argparse._SubParsersAction, database_dsn: DsnProvider) -> None:
    from api.commands import hospitals, keys

    keys.register(sub, database_dsn)
    hospitals.register(sub, database_dsn)
