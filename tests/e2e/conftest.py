"""Fixtures for tests that run `phr serve` as a process on the embedded default."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.embedded_postgres import EmbeddedPostgres


@pytest.fixture
def serve_data_dir() -> Iterator[Path]:
    """An empty PHR_DATA_DIR; a server `phr serve` failed to stop is stopped here
    so that a failing test leaves nothing running. Not under pytest's tmp_path:
    every pytest session (each xdist worker too) chmods /tmp/pytest-of-<user> to
    0700, which masks the ACL entry that lets the server user through."""
    top = Path(tempfile.mkdtemp(prefix="phr-serve-test-"))
    data_dir = top / "phr-data"
    data_dir.mkdir()
    try:
        yield data_dir
    finally:
        leftover = EmbeddedPostgres(data_dir).running()
        if leftover is not None:
            os.kill(leftover.pid, signal.SIGINT)
        shutil.rmtree(top, ignore_errors=True)
