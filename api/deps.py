"""Typed dependencies that handlers declare."""

from __future__ import annotations

from litestar.di import NamedDependency

from infra.bootstrap import Services

ServicesDep = NamedDependency[Services]
