"""Hospital names shown beside hospital ids: a name once found is kept, and an id
the directory does not hold is asked again only after a while, not on every
request that shows it (each ask was a database round trip per audited read)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.clock import FixedClock
from domain.hospitals import directory_use_cases
from domain.hospitals.directory_use_cases import UNKNOWN_RETRY_SECONDS, HospitalDirectory
from tests.fakes import FakeAuditLog, FakeUnitOfWork


class CountingNames:
    """The directory's names (the port's look-up), counting the asks."""

    def __init__(self) -> None:
        self.known: dict[UUID, str] = {}
        self.asked: list[set[UUID]] = []

    async def search(self, permit, query):
        raise AssertionError("not used here")

    async def names(self, hospital_ids: list[UUID]) -> dict[UUID, str]:
        self.asked.append(set(hospital_ids))
        return {i: self.known[i] for i in hospital_ids if i in self.known}


def directory(store: CountingNames) -> HospitalDirectory:
    return HospitalDirectory(FakeUnitOfWork, store, FakeAuditLog(), FixedClock(datetime.now(UTC)))


async def test_a_found_name_is_kept_and_an_unknown_id_is_asked_again_only_later(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(directory_use_cases.time, "monotonic", lambda: now[0])
    store = CountingNames()
    known, unknown = uuid4(), uuid4()
    store.known[known] = "华西医院"
    names = directory(store)

    assert await names.names([known, unknown, None]) == {known: "华西医院"}
    assert store.asked == [{known, unknown}]
    for _ in range(3):
        assert await names.names([known, unknown]) == {known: "华西医院"}
    assert len(store.asked) == 1  # neither asked again

    # The hospital joins the directory: named once the retry time has passed.
    store.known[unknown] = "协和医院"
    now[0] += UNKNOWN_RETRY_SECONDS - 1
    assert await names.names([unknown]) == {}
    now[0] += 2
    assert await names.names([unknown]) == {unknown: "协和医院"}
    assert store.asked[1:] == [{unknown}]
    assert await names.names([unknown]) == {unknown: "协和医院"}
    assert len(store.asked) == 2
