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
from domain.accounts.codes import StoredCode
from domain.accounts.login_throttle import LoginAttempt
from domain.accounts.passwords import PasswordCheck
from domain.accounts.sessions import Session
from domain.accounts.tokens import AccessClaims, IssuedAccessToken, RefreshTokenState
from domain.audit.events import AuditEvent
from domain.audit.ports import AuditLog, NoteSigner, TransparencyLogStore  # noqa: F401
from domain.blobs import BlobInfo, PresignedRequest
from domain.consents.consent import Consent, ConsentKind, ConsentScope
from domain.hospitals.deliveries import ParkedPush
from domain.hospitals.directory import DirectoryEntry, DirectoryQuery
from domain.hospitals.hospital import Hospital, WebhookSecret
from domain.hospitals.links import Link
from domain.mail import MailMessage
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

    async def exists(self, patient_id: UUID) -> bool: ...

    async def find(self, email: str) -> Account | None: ...  # by email, ignoring case
    async def password_hash(self, patient_id: UUID) -> str | None: ...
    async def set_password_hash(self, patient_id: UUID, new_hash: str, at: datetime) -> None: ...
    async def mark_verified(self, patient_id: UUID, at: datetime) -> None: ...
    async def update_profile(self, patient_id: UUID, *, display_name: str | None, locale: str,
                             time_zone: str) -> Account | None: ...  # fmt: skip
    async def change_email(self, patient_id: UUID, email: str, at: datetime) -> None: ...


class AccountCodeStore(Protocol):
    # Mailed one-time codes, one live per account and purpose; `replace` overwrites
    # the earlier one, `lock` holds it until the transaction ends.
    async def replace(self, *, patient_id: UUID, purpose: str, digest: bytes,
                      new_email: str | None, created_at: datetime, expires_at: datetime) -> None: ...  # fmt: skip
    async def lock(self, patient_id: UUID, purpose: str) -> StoredCode | None: ...
    async def count_failure(self, patient_id: UUID, purpose: str) -> None: ...
    async def use(self, patient_id: UUID, purpose: str, at: datetime) -> None: ...


class MailOutbox(Protocol):
    # `post` queues in the open unit of work (sent only if it commits); `deliver_soon`,
    # after the commit, starts delivery without waiting for it.
    async def post(self, message: MailMessage) -> None: ...
    def deliver_soon(self) -> None: ...


class PasswordHasher(Protocol):
    """Slow, salted, memory-hard hashing off the event loop. Both methods raise
    `domain.errors.Overloaded` rather than queue without bound."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """`stored_hash=None` checks against a dummy hash, so an unknown account
        costs the same time as a wrong password."""
        ...


class LoginThrottle(Protocol):
    async def begin(self, *, account_key: str, address_key: str, now: datetime) -> LoginAttempt:
        """Raises RateLimited when either key is over its limit; otherwise records
        the attempt (committed at once, so parallel attempts see it)."""
        ...

    async def release(self, attempt: LoginAttempt, *, reset_account: bool) -> None:
        """Forgets the attempt (it was not a failed guess); after a successful
        login also forgets the account's earlier failures."""
        ...


class AccessTokens(Protocol):
    async def issue(
        self, patient_id: UUID, now: datetime, session_id: UUID | None = None
    ) -> IssuedAccessToken: ...  # session_id (the token family) goes in as `sid`

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


class RefreshTokenStore(Protocol):
    # Refresh-token families, which are also the patient's sessions (devices).
    async def start_family(self, *, patient_id: UUID, token_hash: bytes, issued_at: datetime,
                           expires_at: datetime, device_name: str | None = None,
                           client_address: str | None = None) -> UUID: ...  # fmt: skip

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

    # Asked on every request: an ended session's access tokens stop at once.
    async def session_active(self, patient_id: UUID, family_id: UUID) -> bool: ...
    async def sessions(self, patient_id: UUID, now: datetime) -> list[Session]: ...
    async def revoke_session(self, patient_id: UUID, family_id: UUID, at: datetime,
                             reason: str) -> bool: ...  # fmt: skip
    async def revoke_all(self, patient_id: UUID, at: datetime, reason: str, *,
                         keep: UUID | None = None) -> list[UUID]: ...  # fmt: skip


class HospitalDirectoryStore(Protocol):
    # Name or city contains the text, by (name, id); `linked`: the permit's patient's.
    async def search(self, permit: Permit, query: DirectoryQuery) -> list[DirectoryEntry]: ...
    async def names(self, hospital_ids: list[UUID]) -> dict[UUID, str]: ...


class AccountEraser(Protocol):
    async def erase(self, permit: Permit) -> bool:
        """Deletes the account and everything that hangs off it; False if absent."""
        ...


class FileEraser(Protocol):
    async def delete_prefix(self, prefix: str) -> None: ...


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
    ) -> tuple[list[RecordSummary], bool]: ...

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

    async def delete_prefix(self, prefix: str) -> None:
        """Removes every object under `prefix` (which ends with "/"), e.g.
        `patients/<id>/` when an account is erased."""
        ...


class UploadStore(Protocol):
    async def add(self, permit: Permit, upload: Upload) -> None: ...

    async def get(self, permit: Permit, upload_id: UUID, *, lock: bool = False) -> Upload | None:
        """The permit's patient's upload; `lock` holds it for the unit of work."""
        ...

    async def mark_completed(
        self, permit: Permit, upload_id: UUID, record_id: UUID, at: datetime
    ) -> None: ...

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

    async def code_failures(self, hospital_id: UUID, window: datetime) -> int: ...

    async def add_code_failure(self, hospital_id: UUID, window: datetime) -> None: ...

    async def park(
        self,
        hospital_id: UUID,
        patient_ref: str,
        delivery_id: str,
        bundle: dict[str, Any],
        at: datetime,
    ) -> None: ...

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
