"""Where a record came from: a hospital, or the patient themself."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

SourceKind = Literal["hospital", "self"]


class RecordSource(msgspec.Struct, frozen=True):
    kind: SourceKind
    hospital_id: UUID | None = None

    @property
    def key(self) -> str:
        return "self" if self.kind == "self" else str(self.hospital_id)


SELF = RecordSource(kind="self")
