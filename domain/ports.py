"""What the domain needs from the outside world. `infra/` implements these."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from domain.clock import Clock

__all__ = ["Clock", "UnitOfWork", "UnitOfWorkFactory"]


class UnitOfWork(Protocol):
    """One transaction for one use case. Everything a store does inside it, audit
    rows included, is committed together by `commit()` or rolled back on exit."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
