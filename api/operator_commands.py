"""Operator sub-commands beyond serve/migrate/openapi (keys, hospitals). Each
feature registers its own parser here."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager

from infra.settings import Settings

DsnProvider = Callable[[Settings], AbstractContextManager[str]]


def register(sub: argparse._SubParsersAction, database_dsn: DsnProvider) -> None:
    # Features add: `from api.commands import x; x.register(sub, database_dsn)`
    from api.commands import keys

    keys.register(sub, database_dsn)
    from api.commands import hospitals

    hospitals.register(sub, database_dsn)
