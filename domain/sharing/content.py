"""Builds a share's encrypted content: select the records in scope, read the
small files they carry, wrap them in a FHIR Bundle and encrypt it as JWE."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID, uuid4

from domain.access import Permit
from domain.errors import NotFound
from domain.fhir import json_codec
from domain.ports import BlobStore, ContentCipher, ShareStore
from domain.sharing.bundle import share_bundle, should_inline
from domain.sharing.imaging import SharedImaging, ShareLinkGrant
from domain.sharing.scope import Candidate, ShareScope, select

JWE_MEDIA_TYPE = "application/jose"
FHIR_MEDIA_TYPE = "application/fhir+json"


class EncryptedContent:
    __slots__ = ("jwe", "record_ids")

    def __init__(self, jwe: str, record_ids: tuple[UUID, ...]):
        self.jwe = jwe
        self.record_ids = record_ids


class ShareContent:
    def __init__(
        self,
        shares: ShareStore,
        files: BlobStore,
        cipher: ContentCipher,
        imaging: SharedImaging | None = None,
    ):
        self._shares = shares
        self._files = files
        self._cipher = cipher
        self._imaging = imaging

    async def records(
        self, permit: Permit, scope: ShareScope, now: datetime, *, live_sources_only: bool
    ) -> list[Candidate]:
        candidates = await self._shares.candidates(
            permit, scope, live_sources_only=live_sources_only
        )
        return select(scope, candidates, now)

    async def encrypt(
        self,
        permit: Permit,
        records: list[Candidate],
        key: bytes,
        now: datetime,
        grant: ShareLinkGrant | None = None,
    ) -> EncryptedContent:
        """`grant`: the share the bundle is for, which its imaging viewer links
        are bound to (without one, studies travel without previews or links)."""
        files: dict[UUID, bytes] = {}
        for record in records:
            if should_inline(record):
                assert record.file_key is not None
                try:
                    files[record.id] = await self._files.read(record.file_key)
                except NotFound:
                    pass  # described by its metadata, like a file too large to carry
        patient = await self._shares.patient_resource(permit)
        organizations = await self._shares.organizations(
            sorted({r.hospital_id for r in records if r.hospital_id is not None}, key=str)
        )
        imaging = (
            await self._imaging.extras(permit, records, grant)
            if self._imaging is not None and grant is not None
            else None
        )
        bundle = share_bundle(
            bundle_id=uuid4(),
            timestamp=now,
            patient_id=permit.patient_id,
            patient=patient,
            organizations=organizations,
            records=records,
            files=files,
            imaging=imaging,
        )
        # Encoding a bundle with files in it is CPU work: off the event loop.
        plaintext = await asyncio.to_thread(json_codec.encode, bundle)
        jwe = await self._cipher.encrypt(plaintext, key)
        return EncryptedContent(jwe, tuple(r.id for r in records))
