"""Hospitals, patient links and signed webhook deliveries.

A hospital is known by an id and one or more webhook secrets (Standard Webhooks:
`whsec_<base64>`); during a rotation the old secret stays live for a grace period.
A patient links a hospital with a one-time code they read out or type at the
hospital; the hospital's system confirms it (`patient.linked`) with its own patient
identifier (MRN, `patientRef`), and from then on pushes records for that MRN
(`records.push`). A push for an MRN not linked yet is validated and parked, then
applied when the link completes.

Everything here is pure (standard library and msgspec) except the use cases, which
talk to the stores through the ports declared below."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID, uuid4

import msgspec

from domain.access import AccessRefused, HospitalActor
from domain.audit import PURPOSE_OPERATIONS, AuditEvent, AuditLog, RequestContext
from domain.clock import Clock
from domain.consent import Consent, ConsentScope
from domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
)
from domain.fhir import ParsedEntry, parse_bundle
from domain.ports import UnitOfWork
from domain.records import IngestResult, RecordSource
from domain.throttle import Throttle, ThrottleKey
from domain.throttle import subject as throttle_subject

# --------------------------------------------------------------------------
# Webhook secrets and Standard Webhooks signatures
# --------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_ROTATION_GRACE = timedelta(hours=24)


def new_webhook_secret() -> tuple[str, bytes]:
    """A fresh secret: the text the operator hands to the hospital, and its key."""
    key = secrets.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode(), key


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    hospital_id: UUID
    key: bytes
    created_at: datetime
    # None while it is the current secret; set when a rotation retires it.
    retires_at: datetime | None

    def is_live(self, now: datetime) -> bool:
        return self.retires_at is None or now < self.retires_at


class Hospital(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    created_at: datetime


class WebhookSignatureInvalid(AuthenticationFailed):
    """Bad or missing signature, or an unknown hospital: one error, one body, so
    that nobody learns which hospital ids exist."""

    kind = "webhook-signature-invalid"
    title = "The webhook signature is not valid"


class WebhookTimestampOutOfRange(AuthenticationFailed):
    kind = "webhook-timestamp-out-of-range"
    title = "The webhook timestamp is too old or too far ahead"


class WebhookHeadersMissing(AuthenticationFailed):
    kind = "webhook-headers-missing"
    title = "The webhook-id, webhook-timestamp and webhook-signature headers are required"


class SignedDelivery(msgspec.Struct, frozen=True):
    """A delivery whose signature verified: its id and the time it claims."""

    id: str
    timestamp: datetime


_MAX_DELIVERY_ID = 256


def verify_webhook(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> SignedDelivery:
    """Standard Webhooks verification over the exact bytes received.

    `headers` maps lower-case names to values. Any `v1,<base64>` entry of the
    space-separated `webhook-signature` that equals HMAC-SHA256 with any of `keys`
    over `{id}.{timestamp}.{body}` is accepted; the timestamp must be within
    `tolerance` of `now` either way. The timestamp is checked first: it is public
    and says nothing about the hospital, so an unknown hospital (no keys) gets
    exactly the bad-signature answer."""
    delivery_id = headers.get("webhook-id")
    raw_timestamp = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not delivery_id or not raw_timestamp or not signature_header:
        raise WebhookHeadersMissing()
    if len(delivery_id) > _MAX_DELIVERY_ID:
        raise WebhookSignatureInvalid()
    try:
        seconds = int(raw_timestamp)
    except ValueError:
        raise WebhookTimestampOutOfRange(
            "webhook-timestamp must be whole seconds since the epoch."
        ) from None
    if abs(now.timestamp() - seconds) > tolerance.total_seconds():
        raise WebhookTimestampOutOfRange(
            f"webhook-timestamp must be within {int(tolerance.total_seconds())} seconds of the "
            "current time; check the sender's clock."
        )
    signed = f"{delivery_id}.{seconds}.".encode() + body
    presented: list[bytes] = []
    for item in signature_header.split(" "):
        version, _, encoded = item.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            presented.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    matched = False
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for candidate in presented:
            # Every comparison runs (no early exit) so timing says nothing about which key.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureInvalid()
    return SignedDelivery(id=delivery_id, timestamp=datetime.fromtimestamp(seconds, UTC))


# --------------------------------------------------------------------------
# Link codes
# --------------------------------------------------------------------------

# Crockford base32: no I, L, O, U, so a code read out loud or typed survives.
LINK_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LINK_CODE_LENGTH = 8  # 40 bits
LINK_CODE_TTL = timedelta(hours=24)
_CROCKFORD_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_link_code() -> str:
    return "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))


def format_link_code(code: str) -> str:
    """XXXX-XXXX, the way it is shown to the patient."""
    return f"{code[:4]}-{code[4:]}"


def normalise_link_code(text: str) -> str | None:
    """The canonical code for what someone typed: case-insensitive, hyphens and
    spaces ignored, I/L read as 1 and O as 0. None if it cannot be a code."""
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_CROCKFORD_ALIASES)
    if len(cleaned) != LINK_CODE_LENGTH or any(ch not in LINK_CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def link_code_digest(key: bytes, hospital_id: UUID, code: str) -> bytes:
    """What is stored and looked up instead of the code. Keyed (the key lives
    outside the database), so a dump cannot be searched for the 2^40 codes."""
    return hmac.new(key, hospital_id.bytes + code.encode(), hashlib.sha256).digest()


LinkStatus = Literal["pending", "linked", "expired", "revoked"]


class Link(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    hospital_id: UUID
    consent_id: UUID
    expires_at: datetime
    created_at: datetime
    patient_ref: str | None
    linked_at: datetime | None
    # The data-source consent's revocation: revoking the consent (here or under
    # /v1/consents) is what revokes the link.
    revoked_at: datetime | None

    def status_at(self, now: datetime) -> LinkStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.linked_at is not None:
            return "linked"
        if now >= self.expires_at:
            return "expired"
        return "pending"


class UnknownHospital(NotFound):
    kind = "hospital-not-found"
    title = "No hospital with this id"


class LinkNotFound(NotFound):
    kind = "link-not-found"
    title = "No link with this id"


class LinkNotPending(Conflict):
    kind = "link-not-pending"
    title = "The link is no longer waiting for its code"


class LinkCodeInvalid(InvalidInput):
    """Unknown, mistyped, or meant for another hospital."""

    kind = "link-code-invalid"
    title = "The link code is not valid"


class LinkCodeExpired(InvalidInput):
    kind = "link-code-expired"
    title = "The link code has expired"


class LinkCodeUsed(InvalidInput):
    kind = "link-code-used"
    title = "The link code has already been used"


class PatientRefTaken(Conflict):
    kind = "patient-ref-taken"
    title = "This patientRef is already linked to another patient"


class LinkRevoked(Forbidden):
    """The patient revoked this hospital's link: its pushes are refused."""

    kind = "link-revoked"
    title = "The patient has revoked this hospital's link"


class DeliveryIdReused(Conflict):
    kind = "webhook-id-reused"
    title = "This webhook-id was already used for a different body"


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


class WebhookLimits(msgspec.Struct, frozen=True, kw_only=True):
    # Deliveries accepted per hospital per window (fixed window).
    deliveries_per_window: int = 600
    window_seconds: int = 60
    # Wrong link codes a hospital may send per hour before it is told to wait.
    code_failures_per_hour: int = 20


CODE_FAILURE_WINDOW = timedelta(hours=1)


def window_start(now: datetime, seconds: int) -> datetime:
    """The fixed window `now` falls in."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------


class HospitalStore(Protocol):
    async def add(self, hospital: Hospital, secret: WebhookSecret) -> None: ...

    async def get(self, hospital_id: UUID) -> Hospital | None: ...

    async def rotate_secret(self, secret: WebhookSecret, retire_others_at: datetime) -> None: ...

    async def live_secrets(self, hospital_id: UUID, now: datetime) -> list[WebhookSecret]: ...


class LinkStore(Protocol):
    async def create(self, link: Link, code_digest: bytes, code: str) -> bool:
        """False when the code collides with a pending one of the same hospital."""
        ...

    async def get(self, patient_id: UUID, link_id: UUID) -> Link | None: ...

    async def list(self, patient_id: UUID) -> list[Link]: ...

    async def pending_code(self, patient_id: UUID, link_id: UUID) -> str | None: ...

    async def by_code(self, hospital_id: UUID, code_digest: bytes) -> Link | None:
        """The link with this code, locked for the rest of the transaction."""
        ...

    async def complete(self, link: Link, patient_ref: str, at: datetime) -> None: ...

    async def for_patient_ref(self, hospital_id: UUID, patient_ref: str) -> Link | None:
        """The latest completed link for this MRN at this hospital."""
        ...


class StoredReply(msgspec.Struct, frozen=True):
    """What a delivery was answered, kept to answer a redelivery the same way."""

    status: int
    media_type: str
    body: bytes


class ParkedPush(msgspec.Struct, frozen=True):
    delivery_id: str
    bundle: dict[str, Any]


class WebhookDeliveryStore(Protocol):
    async def admit(self, hospital_id: UUID, window: datetime, limit: int) -> bool:
        """Count one delivery in the hospital's window; False once the limit is reached.
        Runs on its own (not in the caller's transaction) so the counter's row lock is brief."""
        ...

    async def claim(
        self, hospital_id: UUID, delivery_id: str, body_digest: bytes, at: datetime
    ) -> tuple[bytes, StoredReply | None] | None:
        """Claims the id inside the caller's transaction; None when it is new. For
        a known id: the digest of its body and the reply given (concurrent
        redeliveries wait for the first one's transaction)."""
        ...

    async def record_reply(
        self, hospital_id: UUID, delivery_id: str, reply: StoredReply
    ) -> None: ...

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


class ConsentCreator(Protocol):
    async def create(
        self,
        patient_id: UUID,
        *,
        kind: Any,
        grantee_type: str,
        grantee_id: str,
        scope: ConsentScope,
        start: datetime,
        end: datetime | None,
    ) -> Consent: ...

    async def remove_end(self, patient_id: UUID, consent_id: UUID) -> Consent | None:
        """Makes a live consent open-ended (it stays revocable)."""
        ...

    async def get(self, patient_id: UUID, consent_id: UUID) -> Consent | None: ...

    async def hold(self, patient_id: UUID, consent_id: UUID) -> Consent | None:
        """Reads the consent and keeps it from changing until the caller's
        transaction ends: a revocation waits for an ingest that relies on it."""
        ...

    async def revoke(self, patient_id: UUID, consent_id: UUID, at: datetime) -> Consent | None: ...


class DeliveryIngest(Protocol):
    """PatientRecords.ingest_delivery, joining the webhook's unit of work."""

    async def ingest_delivery(
        self,
        actor: HospitalActor,
        patient_id: UUID,
        source: RecordSource,
        entries: list[ParsedEntry],
        *,
        context: RequestContext,
        consent: Consent | None,
    ) -> IngestResult: ...


# --------------------------------------------------------------------------
# Use cases
# --------------------------------------------------------------------------


def _operator_event(action: str, hospital_id: UUID) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="success",
        actor_type="system",
        actor_id="operator-cli",
        patient_id=None,
        resource_type="Organization",
        resource_ids=(str(hospital_id),),
        purpose=PURPOSE_OPERATIONS,
    )


class Hospitals:
    """The operator's use cases."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._hospitals = hospitals
        self._audit = audit
        self._clock = clock

    async def add(self, name: str) -> tuple[Hospital, str]:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput(
                "A hospital needs a name of 1 to 200 characters.",
                errors=[FieldProblem("name", "1 to 200 characters")],
            )
        now = self._clock.now()
        hospital = Hospital(id=uuid4(), name=name, created_at=now)
        text, key = new_webhook_secret()
        secret = WebhookSecret(
            id=uuid4(), hospital_id=hospital.id, key=key, created_at=now, retires_at=None
        )
        async with self._unit_of_work() as uow:
            await self._hospitals.add(hospital, secret)
            await self._audit.append(_operator_event("hospital.added", hospital.id))
            await uow.commit()
        return hospital, text

    async def rotate_secret(self, hospital_id: UUID, grace: timedelta) -> tuple[str, datetime]:
        """A new current secret; the ones live now keep verifying until now + grace."""
        if grace < timedelta(0):
            raise InvalidInput(
                "The grace period cannot be negative.", errors=[FieldProblem("grace", ">= 0")]
            )
        now = self._clock.now()
        text, key = new_webhook_secret()
        async with self._unit_of_work() as uow:
            if await self._hospitals.get(hospital_id) is None:
                raise UnknownHospital(f"No hospital with id {hospital_id}.")
            secret = WebhookSecret(
                id=uuid4(), hospital_id=hospital_id, key=key, created_at=now, retires_at=None
            )
            await self._hospitals.rotate_secret(secret, now + grace)
            await self._audit.append(_operator_event("hospital.secret-rotated", hospital_id))
            await uow.commit()
        return text, now + grace


class PatientLinks:
    """The patient's side: ask for a code (consenting to the hospital's pushes),
    list links, show the code as a QR, revoke."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        links: LinkStore,
        consents: ConsentCreator,
        audit: AuditLog,
        clock: Clock,
        code_key: bytes,
    ):
        self._unit_of_work = unit_of_work
        self._hospitals = hospitals
        self._links = links
        self._consents = consents
        self._audit = audit
        self._clock = clock
        self._code_key = code_key

    def _event(
        self, action: str, patient_id: UUID, link_id: UUID, context: RequestContext
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            outcome="success",
            actor_type="patient",
            actor_id=str(patient_id),
            patient_id=patient_id,
            resource_type="Consent",
            resource_ids=(str(link_id),),
            context=context,
        )

    async def create(
        self, patient_id: UUID, hospital_id: UUID, *, context: RequestContext
    ) -> tuple[Link, str]:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            if await self._hospitals.get(hospital_id) is None:
                raise UnknownHospital("No hospital with this id.")
            consent = await self._consents.create(
                patient_id,
                kind="data-source",
                grantee_type="hospital",
                grantee_id=str(hospital_id),
                scope=ConsentScope(),
                start=now,
                # Until the hospital uses the code; completing the link makes the
                # consent open-ended, an unused code lets it lapse with the code.
                end=now + LINK_CODE_TTL,
            )
            link = Link(
                id=uuid4(),
                patient_id=patient_id,
                hospital_id=hospital_id,
                consent_id=consent.id,
                expires_at=now + LINK_CODE_TTL,
                created_at=now,
                patient_ref=None,
                linked_at=None,
                revoked_at=None,
            )
            for _ in range(8):  # a collision among one hospital's pending codes is ~n/2^40
                code = new_link_code()
                if await self._links.create(
                    link, link_code_digest(self._code_key, hospital_id, code), code
                ):
                    break
            else:  # pragma: no cover - would take astronomically bad luck
                raise Conflict("Could not allocate a link code; try again.")
            await self._audit.append(
                self._event("link.created", patient_id, link.id, context).with_resources(
                    "Consent", str(link.id), str(consent.id)
                )
            )
            await uow.commit()
        return link, code

    async def list(self, patient_id: UUID) -> list[Link]:
        async with self._unit_of_work():
            return await self._links.list(patient_id)

    async def _refuse_missing(
        self, uow: UnitOfWork, action: str, patient_id: UUID, link_id: UUID, context: RequestContext
    ) -> LinkNotFound:
        """Another patient's link, or none: audited in the caller's own history."""
        await self._audit.append(
            self._event(action, patient_id, link_id, context).refused("not-found")
        )
        await uow.commit()
        return LinkNotFound()

    async def get(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> Link:
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.read", patient_id, link_id, context)
        return link

    async def code(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> str:
        """The pending link's code, to show again (as a QR)."""
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.read", patient_id, link_id, context)
            if link.status_at(self._clock.now()) != "pending":
                raise LinkNotPending("Only a pending link has a code to show.")
            code = await self._links.pending_code(patient_id, link_id)
        if code is None:
            raise LinkNotPending("Only a pending link has a code to show.")
        return code

    async def revoke(self, patient_id: UUID, link_id: UUID, *, context: RequestContext) -> None:
        """Revokes the link's data-source consent: later pushes are refused,
        records already received stay. Revoking twice is not an error."""
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            link = await self._links.get(patient_id, link_id)
            if link is None:
                raise await self._refuse_missing(uow, "link.revoked", patient_id, link_id, context)
            if link.revoked_at is None:
                await self._consents.revoke(patient_id, link.consent_id, now)
                await self._audit.append(
                    self._event("link.revoked", patient_id, link.id, context).with_resources(
                        "Consent", str(link.id), str(link.consent_id)
                    )
                )
            await uow.commit()


class LinkCompleted(msgspec.Struct, frozen=True):
    parked_applied: int
    results: tuple[IngestResult, ...] = ()


class PushParked(msgspec.Struct, frozen=True):
    pass


DeliveryOutcome = LinkCompleted | IngestResult | PushParked


class ReplyRenderer(Protocol):
    """The api layer's rendering of an outcome or a refusal, stored for redeliveries."""

    def success(self, outcome: DeliveryOutcome) -> StoredReply: ...

    def refusal(self, error: DomainError) -> StoredReply: ...


# Refusals that are answers about the delivery itself: stored, so a redelivery
# gets the same answer. Anything else (rate limits, failures) is not stored and
# the hospital may retry.
_STORED_REFUSALS = (InvalidInput, Forbidden, Conflict)


class HospitalWebhooks:
    """A hospital's signed deliveries: verify, limit, deduplicate, then link or push."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        links: LinkStore,
        deliveries: WebhookDeliveryStore,
        consents: ConsentCreator,
        records: DeliveryIngest,
        audit: AuditLog,
        clock: Clock,
        code_key: bytes,
        limits: WebhookLimits,
        throttle: Throttle,
    ):
        self._unit_of_work = unit_of_work
        self._hospitals = hospitals
        self._links = links
        self._deliveries = deliveries
        self._consents = consents
        self._records = records
        self._audit = audit
        self._clock = clock
        self._code_key = code_key
        self._limits = limits
        self._throttle = throttle

    async def authenticate(
        self, hospital_id: UUID, headers: Mapping[str, str], body: bytes
    ) -> SignedDelivery:
        """Verifies the signature with the hospital's live secrets, then counts the
        delivery against its rate limit (after verifying, so nobody else can spend
        a hospital's allowance)."""
        now = self._clock.now()
        secrets_ = await self._hospitals.live_secrets(hospital_id, now)
        delivery = verify_webhook([s.key for s in secrets_], headers, body, now)
        limits = self._limits
        window = window_start(now, limits.window_seconds)
        if not await self._deliveries.admit(hospital_id, window, limits.deliveries_per_window):
            retry = (
                int((window + timedelta(seconds=limits.window_seconds) - now).total_seconds()) + 1
            )
            raise RateLimited(
                "This hospital has sent too many deliveries; retry after the indicated time.",
                retry_after_seconds=retry,
                limit=limits.deliveries_per_window,
                window_seconds=limits.window_seconds,
            )
        return delivery

    async def deliver(
        self,
        hospital_id: UUID,
        delivery: SignedDelivery,
        body: bytes,
        event: PatientLinkedEvent | RecordsPushEvent,
        *,
        context: RequestContext,
        render: ReplyRenderer,
    ) -> StoredReply:
        """Processes one authenticated delivery exactly once per webhook-id.

        The claim of the id, everything the delivery does (link, records, parked
        pushes, audit) and the reply given are one transaction: a redelivery
        waits for it and then gets the stored reply; nothing is stored twice."""
        digest = hashlib.sha256(body).digest()
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            known = await self._deliveries.claim(hospital_id, delivery.id, digest, now)
            if known is not None:
                known_digest, reply = known
                if known_digest != digest:
                    raise DeliveryIdReused(
                        "A delivery with this webhook-id and a different body was already received; "
                        "use a new webhook-id for new content."
                    )
                if reply is not None:
                    return reply
            try:
                if isinstance(event, PatientLinkedEvent):
                    outcome: DeliveryOutcome = await self._link(
                        hospital_id, event.data, now, context
                    )
                else:
                    outcome = await self._push(hospital_id, delivery.id, event.data, now, context)
                reply = render.success(outcome)
            except _STORED_REFUSALS as refusal:
                reply = render.refusal(refusal)
            await self._deliveries.record_reply(hospital_id, delivery.id, reply)
            await uow.commit()
            return reply

    def _hospital_event(
        self, action: str, hospital_id: UUID, patient_id: UUID | None, context: RequestContext
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            outcome="success",
            actor_type="hospital",
            actor_id=str(hospital_id),
            patient_id=patient_id,
            resource_type="Consent",
            purpose=PURPOSE_OPERATIONS,
            context=context,
        )

    async def _link(
        self, hospital_id: UUID, data: PatientLinkedData, now: datetime, context: RequestContext
    ) -> LinkCompleted:
        # Counted before the code is looked up, in one step under the hospital's
        # throttle lock (held until this delivery commits): parallel wrong codes
        # cannot all read the count before any of them adds to it.
        code_check = await self._throttle.admit(
            [
                ThrottleKey(
                    "link-code.hospital",
                    throttle_subject(str(hospital_id)),
                    self._limits.code_failures_per_hour,
                    int(CODE_FAILURE_WINDOW.total_seconds()),
                )
            ],
            now=now,
        )
        code = normalise_link_code(data.code)
        link = (
            await self._links.by_code(
                hospital_id, link_code_digest(self._code_key, hospital_id, code)
            )
            if code is not None
            else None
        )
        refusal: InvalidInput | None = None
        if link is None:
            refusal = LinkCodeInvalid(
                "No pending link has this code at this hospital.",
                errors=[FieldProblem("data.code", "unknown code")],
            )
        else:
            status = link.status_at(now)
            if status == "expired":
                refusal = LinkCodeExpired(
                    "The code has expired; the patient can create a new one.",
                    errors=[FieldProblem("data.code", "expired")],
                )
            elif status != "pending":
                refusal = LinkCodeUsed(
                    "The code was already used or the patient withdrew it.",
                    errors=[FieldProblem("data.code", status)],
                )
        if refusal is not None:
            event = self._hospital_event(
                "link.completed", hospital_id, link.patient_id if link else None, context
            )
            await self._audit.append(
                event.with_resources("Consent", *([str(link.id)] if link else [])).refused(
                    refusal.kind
                )
            )
            raise refusal
        assert link is not None
        await self._throttle.forget(code_check)
        existing = await self._links.for_patient_ref(hospital_id, data.patient_ref)
        if (
            existing is not None
            and existing.patient_id != link.patient_id
            and existing.revoked_at is None
        ):
            await self._audit.append(
                self._hospital_event("link.completed", hospital_id, link.patient_id, context)
                .with_resources("Consent", str(link.id))
                .refused("patient-ref-taken")
            )
            raise PatientRefTaken(
                "Another patient is already linked under this patientRef.",
                errors=[FieldProblem("data.patientRef", "already linked to another patient")],
            )
        await self._links.complete(link, data.patient_ref, now)
        await self._audit.append(
            self._hospital_event(
                "link.completed", hospital_id, link.patient_id, context
            ).with_resources("Consent", str(link.id), str(link.consent_id))
        )
        # Pushes that arrived before the link are applied now, in this transaction, oldest first.
        consent = await self._consents.remove_end(link.patient_id, link.consent_id)
        results = []
        for parked in await self._deliveries.take_parked(hospital_id, data.patient_ref):
            results.append(
                await self._records.ingest_delivery(
                    HospitalActor(hospital_id),
                    link.patient_id,
                    RecordSource(kind="hospital", hospital_id=hospital_id),
                    await asyncio.to_thread(parse_bundle, parked.bundle),
                    context=msgspec.structs.replace(
                        context, request_id=context.request_id or parked.delivery_id
                    ),
                    consent=consent,
                )
            )
        return LinkCompleted(parked_applied=len(results), results=tuple(results))

    async def _push(
        self,
        hospital_id: UUID,
        delivery_id: str,
        data: RecordsPushData,
        now: datetime,
        context: RequestContext,
    ) -> IngestResult | PushParked:
        # InvalidFhir names the bad entry; nothing is stored. Validation is pure Python
        # (about 40 ms per 1,000 entries): run it in a thread so that a 20 MiB bundle
        # does not stall every other request on the event loop.
        entries = await asyncio.to_thread(parse_bundle, data.bundle)
        link = await self._links.for_patient_ref(hospital_id, data.patient_ref)
        if link is None:
            await self._deliveries.park(
                hospital_id, data.patient_ref, delivery_id, data.bundle, now
            )
            return PushParked()
        # Held until this delivery commits: a revocation in flight either finished
        # before (and this push is refused) or waits until the push is stored.
        consent = await self._consents.hold(link.patient_id, link.consent_id)
        try:
            return await self._records.ingest_delivery(
                HospitalActor(hospital_id),
                link.patient_id,
                RecordSource(kind="hospital", hospital_id=hospital_id),
                entries,
                context=context,
                consent=consent,
            )
        except AccessRefused:
            # The policy has recorded the refusal in the patient's audit chain.
            raise LinkRevoked(
                "The patient has revoked this link; records for this patientRef are no longer accepted."
            ) from None


# --------------------------------------------------------------------------
# The webhook body: {type, data}, a tagged union on `type`
# --------------------------------------------------------------------------

PatientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
CodeText = Annotated[str, msgspec.Meta(max_length=32)]


class PatientLinkedData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    code: CodeText
    patient_ref: PatientRef


class RecordsPushData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    patient_ref: PatientRef
    bundle: dict[str, Any]


class PatientLinkedEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="patient.linked"
):
    data: PatientLinkedData


class RecordsPushEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="records.push"
):
    data: RecordsPushData


WebhookEvent = PatientLinkedEvent | RecordsPushEvent
