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

# Ports defined beside the rules they serve, re-exported so every port is found here.
from domain.accounts.alerts import AccountAlerts  # noqa: F401
from domain.accounts.ports import (  # noqa: F401
    AccessTokens,
    AccountCodeStore,
    AccountEraser,
    AccountStore,
    FileEraser,
    MailOutbox,
    PasswordHasher,
    RefreshTokenStore,
    SigningKeyStore,
)
from domain.audit.events import AuditEvent
from domain.audit.ports import AuditLog, NoteSigner, TransparencyLogStore  # noqa: F401
from domain.blobs import BlobInfo, PresignedRequest
from domain.consents.consent import Consent, ConsentKind, ConsentScope
from domain.hospitals.deliveries import ParkedPush
from domain.hospitals.directory import DirectoryEntry, DirectoryQuery
from domain.hospitals.hospital import Hospital, WebhookSecret
from domain.hospitals.links import Link
from domain.notifications.model import (
    DeadLetter,
    Delivery,
    Device,
    Emission,
    InboxQuery,
    Notification,
    Preferences,
    PushMessage,
    PushResult,
    Recipient,
    SeenDevice,
)
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

# Sharing's ports live beside the sharing rules (this module would pass ~450 lines);
# imported here so every port is still found in one place.
from domain.sharing.ports import (  # noqa: F401
    ContentCipher,
    QrRenderer,
    RequestThrottle,
    ShareStore,
)
from domain.throttle import Throttle  # noqa: F401
from domain.uploads.upload import Upload

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


# --- hospital directory --------------------------------------------------------


class HospitalDirectoryStore(Protocol):
    # Name or city contains the text, by (name, id); `linked`: the permit's patient's.
    async def search(self, permit: Permit, query: DirectoryQuery) -> list[DirectoryEntry]: ...
    async def names(self, hospital_ids: list[UUID]) -> dict[UUID, str]: ...


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
    async def get_audited(
        self, permit: Permit, record_id: UUID, found: AuditEvent, missing: AuditEvent
    ) -> tuple[StoredRecord | None, bool]:
        """Read + audit row (`found`/`missing`) in one statement; (rows, account exists)."""

    async def history(self, permit: Permit, record_id: UUID) -> list[RecordVersion]: ...

    async def timeline(self, permit: Permit, query: TimelineQuery) -> list[RecordSummary]: ...
    async def timeline_audited(
        self, permit: Permit, query: TimelineQuery, event: AuditEvent
    ) -> tuple[list[RecordSummary], bool]:
        """Up to `query.limit + 1` rows (the extra one only says a next page exists)
        and whether the account is active; the audit event lists the page's ids."""

    async def of_types(self, permit: Permit, resource_types: list[str]) -> list[ImagingRecord]:
        """Every record of these types (supporting ones included), within scope."""

    async def of_types_audited(
        self, permit: Permit, resource_types: list[str], event: AuditEvent, listed_type: str
    ) -> tuple[list[ImagingRecord], bool]: ...

    def export_resources(self, permit: Permit) -> AsyncIterator[tuple[UUID, bytes]]:
        """(record id, the resource's JSON exactly as stored), one by one."""


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

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """A whole object phr writes itself (a share's ciphertext)."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the object; deleting a missing object is not an error."""
        ...

    async def finalize(self, key: str, final_key: str) -> None:
        """Moves an upload from `key` (upload URLs write it) to `final_key` (none
        can), then `key` takes no more writes where the store can refuse them."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Removes every object under `prefix` (which ends with "/"), e.g.
        `patients/<id>/` when an account is erased."""
        ...

    async def seal_prefix(self, prefix: str) -> None:
        """See FileEraser.seal_prefix."""
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
    async def all(self) -> list[Hospital]: ...  # by name, for the operator


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

    async def erased(self, hospital_id: UUID, ref_digest: bytes) -> bool: ...

    async def lift_erasure(self, hospital_id: UUID, ref_digest: bytes) -> None: ...

    async def take_parked(self, hospital_id: UUID, patient_ref: str) -> list[ParkedPush]:
        """Removes and returns the parked pushes for this MRN, oldest first."""
        ...


# --- notifications, push and medications -------------------------------------


class NotificationStore(Protocol):
    async def recipients(self, permits: list[Permit]) -> list[Recipient]: ...
    async def add(self, emissions: list[Emission], now: datetime) -> list[UUID]: ...
    async def inbox(self, permit: Permit, q: InboxQuery, now: datetime) -> list[Notification]: ...
    async def mark_read(self, permit: Permit, notification_id: UUID, now: datetime) -> bool: ...
    async def mark_all_read(self, permit: Permit, now: datetime) -> int: ...
    async def unread_count(self, permit: Permit, now: datetime) -> int: ...
    async def preferences(self, permit: Permit) -> Preferences: ...
    async def save_preferences(self, permit: Permit, value: Preferences, now: datetime) -> None: ...
    async def seen_device(self, permit: Permit, device: bytes, now: datetime) -> SeenDevice: ...
    async def stored_keys(self, permit: Permit, ids: list[UUID]) -> set[tuple[str, str]]: ...


class DeviceStore(Protocol):
    async def add(self, permit: Permit, device: Device) -> Device: ...
    async def list(self, permit: Permit) -> list[Device]: ...
    async def remove(self, permit: Permit, device_id: UUID) -> bool: ...


class OutboxStore(Protocol):
    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[Delivery]: ...
    async def delivered(self, delivery_id: UUID, now: datetime) -> None: ...
    async def retry(self, delivery_id: UUID, due_at: datetime, error: str) -> None: ...
    async def dead(self, delivery_id: UUID, now: datetime, error: str) -> None: ...
    async def gone(self, delivery: Delivery, now: datetime, error: str) -> None: ...
    async def dead_letters(self, limit: int) -> list[DeadLetter]: ...


class PushSender(Protocol):
    async def send(self, device: Device, message: PushMessage) -> PushResult: ...


class PrescribedPatients(Protocol):
    async def with_active_orders(self, after: UUID | None, limit: int) -> list[UUID]: ...
