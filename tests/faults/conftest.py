"""Fault tests: `phr serve` as a process, its backing services broken under load."""

from __future__ import annotations

from tests.e2e.conftest import serve_data_dir  # noqa: F401  (fixture)
