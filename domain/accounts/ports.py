"""The ports of accounts and tokens (re-exported by domain.ports, where every
port is found): sign-in, tokens, sessions, signing keys, mailed codes, erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.access import Permit
from domain.accounts.account import Account, Credentials, NewAccount
from domain.accounts.codes import StoredCode
from domain.accounts.passwords import PasswordCheck
from domain.accounts.sessions import Session
from domain.accounts.tokens import AccessClaims, IssuedAccessToken, RefreshTokenState
from domain.mail import MailMessage

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

    async def revoke(self, kid: str, now: datetime) -> bool:
        """Tokens signed with `kid` stop verifying; False if no such unrevoked key."""
        ...


class RefreshTokenStore(Protocol):
    # Refresh-token families, which are also the patient's sessions (devices).
    async def start_family(
        self,
        *,
        patient_id: UUID,
        token_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
        family_expires_at: datetime,
        device_name: str | None = None,
        client_address: str | None = None,
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

    async def session_active(
        self, patient_id: UUID, family_id: UUID, *, signed_with: str | None = None
    ) -> bool:
        """Asked on every request: an ended session's access tokens stop at once,
        and so do those signed with a revoked key (`signed_with`)."""
        ...

    async def sessions(self, patient_id: UUID, now: datetime) -> list[Session]: ...
    async def revoke_session(self, patient_id: UUID, family_id: UUID, at: datetime,
                             reason: str) -> bool: ...  # fmt: skip
    async def revoke_all(self, patient_id: UUID, at: datetime, reason: str, *,
                         keep: UUID | None = None) -> list[UUID]: ...  # fmt: skip


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
        """No write under `prefix` from now on, where the store can refuse one."""
        ...
