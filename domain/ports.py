"""What the domain needs from the outside world, in one place: every port is a
Protocol here, and `infra/` implements it. Stores over a patient's rows take a
`Permit` (minted only by `domain.access`), never a bare patient id; the few
methods that cannot (look-ups that find the patient in the first place, the
sweeper's scans) say why, and tests/architecture/test_ports.py holds them to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from uuid import UUID

from domain.access import Permit
from domain.accounts.account import Account, Credentials, NewAccount

# Ports defined beside the rules they serve, re-exported so every port is found here.
from domain.accounts.alerts import AccountAlerts  # noqa: F401
from domain.accounts.passwords import PasswordCheck
from domain.accounts.tokens import AccessClaims, IssuedAccessToken, RefreshTokenState
from domain.audit.events import AuditEvent, RecordedAuditEvent
from domain.blobs import BlobInfo, PresignedRequest
from domain.consents.consent import Consent, ConsentKind, ConsentScope
from domain.hospitals.deliveries import ParkedPush
from domain.hospitals.hospital import Hospital, WebhookSecret
from domain.hospitals.links import Link
from domain.records.imaging import ImagingRecord
from domain.records.record import (
    CurrentVersion,
    IncomingRecord,
    RecordSummary,
    RecordVersion,
    StoredRecord,
    TimelineQuery,
)
from domain.records.sources import RecordSource
from domain.throttle import Throttle  # noqa: F401
from domain.uploads.upload import DicomHeader, Upload

# --- transactions and time ---------------------------------------------------


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


@runtime_checkable  # handlers declare the clock as a dependency; Litestar checks its type
class Clock(Protocol):
    def now(self) -> datetime: ...


# --- audit --------------------------------------------------------------------


class AuditLog(Protocol):
    """Appends inside the caller's unit of work: if the append fails, the whole
    use case fails with it (fail closed)."""

    async def append(self, event: AuditEvent) -> None: ...

    async def page(
        self, permit: Permit, before_id: int | None, limit: int
    ) -> list[RecordedAuditEvent]:
        """The permit's patient's history, newest first, ids below `before_id`."""
        ...

    async def chain(self, permit: Permit) -> list[RecordedAuditEvent]:
        """The permit's patient's hash chain, in sequence order."""
        ...


# --- accounts and tokens -------------------------------------------------------


class AccountStore(Protocol):
    async def add(self, account: NewAccount) -> Account:
        """Raises EmailAlreadyRegistered when the email (ignoring case) is taken."""
        ...

    async def credentials(self, email: str) -> Credentials | None: ...

    async def replace_password_hash(
        self, patient_id: UUID, old_hash: str, new_hash: str, at: datetime
    ) -> None: ...

    async def get(self, patient_id: UUID) -> Account | None: ...

    async def exists(self, patient_id: UUID, *, signed_with: str | None = None) -> bool:
        """The account is there, and (with `signed_with`) the access token's
        signing key has not been revoked: one question, one round trip per request."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted, memory-hard hashing off the event loop. Both methods raise
    `domain.errors.Overloaded` rather than queue without bound."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """`stored_hash=None` checks against a dummy hash, so an unknown account
        costs the same time as a wrong password."""
        ...


class AccessTokens(Protocol):
    async def issue(self, patient_id: UUID, now: datetime) -> IssuedAccessToken: ...

    async def jwks(self, now: datetime) -> list[dict[str, str]]:
        """The public keys that verify tokens now, as JWKs."""
        ...

    async def verify(self, token: str, now: datetime) -> AccessClaims:
        """Raises AuthenticationFailed for anything but a valid token."""
        ...


class SigningKeyStore(Protocol):
    async def rotate(self, now: datetime) -> tuple[str, str | None]:
        """Makes a new current key; returns (new kid, retired kid or None)."""
        ...

    async def revoke(self, kid: str, now: datetime) -> bool:
        """Tokens signed with `kid` stop verifying; False if no such unrevoked key."""
        ...


class RefreshTokenStore(Protocol):
    async def start_family(
        self,
        *,
        patient_id: UUID,
        token_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
        family_expires_at: datetime,
    ) -> UUID: ...

    async def lock(self, token_hash: bytes) -> RefreshTokenState | None:
        """The token's state, with its family locked until the transaction ends, so
        concurrent uses of one family line up."""
        ...

    async def spend_and_issue(
        self,
        *,
        spent_hash: bytes,
        state: RefreshTokenState,
        new_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
    ) -> bool:
        """Marks the token spent only if it was not; False if someone else spent it."""
        ...

    async def revoke_family(
        self, family_id: UUID, patient_id: UUID, at: datetime, reason: str
    ) -> None: ...


class AccountEraser(Protocol):
    async def erase(self, permit: Permit) -> bool:
        """Deletes the account and everything that hangs off it; False if absent."""
        ...

    async def patient_refs(self, permit: Permit) -> list[tuple[UUID, str]]:
        """(hospital id, patientRef) of every link the patient ever completed."""
        ...

    async def bury_patient_refs(
        self, permit: Permit, refs: list[tuple[UUID, str, bytes]], at: datetime
    ) -> None:
        """For each (hospital id, patientRef, tombstone digest): records the
        tombstone and deletes the pushes parked for that patientRef."""
        ...

    async def schedule_file_sweep(self, permit: Permit, prefix: str, after: datetime) -> None:
        """Remembers to empty `prefix` once more after `after`."""
        ...

    async def due_file_sweeps(self, now: datetime, limit: int) -> list[str]:
        """Prefixes whose second sweep is due, across erased accounts (there is
        no patient left to hold a permit for)."""
        ...

    async def file_sweep_done(self, prefix: str) -> None: ...


class FileEraser(Protocol):
    async def delete_prefix(self, prefix: str) -> None: ...

    async def seal_prefix(self, prefix: str) -> None:
        """From now on no write under `prefix` is taken where the store can refuse
        one (phr's own disk store); S3 cannot refuse a presigned PUT, which is
        why erasure also schedules a second sweep."""
        ...


# --- records and consents ------------------------------------------------------


class RecordStore(Protocol):
    async def current_versions(
        self, permit: Permit, source: RecordSource, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], CurrentVersion]: ...

    async def insert(
        self, permit: Permit, source: RecordSource, records: list[IncomingRecord]
    ) -> list[UUID]: ...

    async def supersede(
        self, permit: Permit, updates: list[tuple[CurrentVersion, IncomingRecord]]
    ) -> None: ...

    async def get(self, permit: Permit, record_id: UUID) -> StoredRecord | None: ...

    async def history(self, permit: Permit, record_id: UUID) -> list[RecordVersion]: ...

    async def timeline(self, permit: Permit, query: TimelineQuery) -> list[RecordSummary]: ...

    async def of_types(self, permit: Permit, resource_types: list[str]) -> list[ImagingRecord]:
        """Every record of these types (supporting ones included), within scope."""
        ...

    def export_resources(self, permit: Permit) -> AsyncIterator[tuple[UUID, bytes]]:
        """(record id, the resource's JSON exactly as stored), one by one."""
        ...


class ConsentStore(Protocol):
    async def create(
        self,
        permit: Permit,
        *,
        kind: ConsentKind,
        grantee_type: str,
        grantee_id: str,
        scope: ConsentScope,
        start: datetime,
        end: datetime | None,
    ) -> Consent: ...

    async def get(self, permit: Permit, consent_id: UUID) -> Consent | None: ...

    async def list(self, permit: Permit) -> list[Consent]: ...

    async def remove_end(self, permit: Permit, consent_id: UUID) -> Consent | None:
        """Makes a live consent open-ended (it stays revocable)."""
        ...

    async def revoke(self, permit: Permit, consent_id: UUID, at: datetime) -> Consent | None:
        """Archives the consent; None when it does not exist for this patient or
        was already revoked."""
        ...

    async def relied_on(self, consent_id: UUID) -> Consent | None:
        """The consent an actor relies on (a hospital's link, a share), read
        before the policy decides: `authorize` checks whose it is and for whom."""
        ...

    async def hold(self, consent_id: UUID) -> Consent | None:
        """`relied_on`, and kept from changing until the caller's transaction
        ends: a revocation waits for an ingest that relies on the consent."""
        ...


# --- files and uploads ---------------------------------------------------------


class BlobStore(Protocol):
    async def presign_put(
        self, key: str, *, content_type: str, size: int, expires_in: timedelta
    ) -> PresignedRequest: ...

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: timedelta,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> PresignedRequest: ...

    async def stat(self, key: str) -> BlobInfo | None: ...

    async def read_prefix(self, key: str, length: int) -> bytes:
        """The first `length` bytes (fewer if the object is shorter), for sniffing
        what a file really is. Raises NotFound if there is no such object."""
        ...

    async def read(self, key: str) -> bytes:
        """The whole object, for modest files (DICOM headers). Raises NotFound."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the object; deleting a missing object is not an error."""
        ...

    async def finalize(self, key: str, final_key: str) -> None:
        """Moves an uploaded object from `key` (which upload URLs can write) to
        `final_key` (which none can), so what is checked afterwards is what is
        kept. The local store also refuses every later write to `key`; on S3 the
        copy is kept and the object at `key` deleted (a later PUT through a
        still-valid URL makes an object nothing reads). Raises NotFound if there
        is no object at `key`."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Removes every object under `prefix` (which ends with "/"), e.g.
        `patients/<id>/` when an account is erased."""
        ...

    async def seal_prefix(self, prefix: str) -> None:
        """See FileEraser.seal_prefix."""
        ...


class DicomReader(Protocol):
    async def read_header(self, data: bytes) -> DicomHeader:
        """The header of a DICOM Part 10 file (or its first bytes); UnreadableDicom
        if it is not one or lacks the study and series UIDs."""
        ...


class UploadStore(Protocol):
    async def add(self, permit: Permit, upload: Upload) -> None: ...

    async def get(self, permit: Permit, upload_id: UUID, *, lock: bool = False) -> Upload | None:
        """The permit's patient's upload; `lock` holds it for the unit of work."""
        ...

    async def mark_completed(
        self, permit: Permit, upload_id: UUID, record_id: UUID, at: datetime, final_key: str
    ) -> None:
        """Completed, with the object now at `final_key` (see BlobStore.finalize)."""
        ...

    async def for_record(self, permit: Permit, record_id: UUID) -> tuple[Upload, str] | None:
        """The completed upload behind a record, with the record's resource type,
        if the record is within the permit's scope."""
        ...

    async def expired_pending(self, expired_before: datetime, limit: int) -> list[Upload]:
        """Pending uploads whose URL expired before `expired_before`, oldest first,
        across patients: the sweeper's one scan that is not per patient."""
        ...

    async def delete_pending(self, upload: Upload) -> bool:
        """Deletes the row if it is still pending; False if it is not."""
        ...


# --- hospitals, links and deliveries ------------------------------------------


class HospitalStore(Protocol):
    async def add(self, hospital: Hospital, secret: WebhookSecret) -> None: ...

    async def get(self, hospital_id: UUID) -> Hospital | None: ...

    async def rotate_secret(self, secret: WebhookSecret, retire_others_at: datetime) -> None: ...

    async def live_secrets(self, hospital_id: UUID, now: datetime) -> list[WebhookSecret]: ...


class LinkStore(Protocol):
    async def create(self, permit: Permit, link: Link, code_digest: bytes, code: str) -> bool:
        """False when the code collides with a pending one of the same hospital."""
        ...

    async def get(self, permit: Permit, link_id: UUID) -> Link | None: ...

    async def list(self, permit: Permit) -> list[Link]: ...

    async def pending_code(self, permit: Permit, link_id: UUID) -> str | None: ...

    async def complete(
        self, permit: Permit, link_id: UUID, patient_ref: str, at: datetime
    ) -> None: ...

    async def by_code(self, hospital_id: UUID, code_digest: bytes) -> Link | None:
        """The link with this code, locked for the rest of the transaction: how a
        hospital finds the patient in the first place."""
        ...

    async def for_patient_ref(self, hospital_id: UUID, patient_ref: str) -> Link | None:
        """The latest completed link for this MRN at this hospital: how a push
        finds its patient."""
        ...


class WebhookDeliveryStore(Protocol):
    async def admit(self, hospital_id: UUID, window: datetime, limit: int) -> bool:
        """Count one delivery in the hospital's window; False once the limit is reached.
        Runs on its own (not in the caller's transaction) so the counter's row lock is brief."""
        ...

    async def claim(
        self, hospital_id: UUID, delivery_id: str, body_digest: bytes, at: datetime
    ) -> tuple[bytes, bytes | None] | None:
        """Claims the id inside the caller's transaction; None when it is new. For
        a known id: the digest of its body and the reply given (concurrent
        redeliveries wait for the first one's transaction)."""
        ...

    async def record_reply(self, hospital_id: UUID, delivery_id: str, reply: bytes) -> None:
        """Keeps the answer given (opaque bytes: the api's rendering)."""
        ...

    async def park(
        self,
        hospital_id: UUID,
        patient_ref: str,
        delivery_id: str,
        bundle: dict[str, Any],
        at: datetime,
    ) -> None: ...

    async def erased(self, hospital_id: UUID, ref_digest: bytes) -> bool:
        """Whether the patient behind this patientRef erased their account."""
        ...

    async def lift_erasure(self, hospital_id: UUID, ref_digest: bytes) -> None:
        """A new link under the patientRef: the tombstone no longer applies."""
        ...

    async def take_parked(self, hospital_id: UUID, patient_ref: str) -> list[ParkedPush]:
        """Removes and returns the parked pushes for this MRN, oldest first."""
        ...
