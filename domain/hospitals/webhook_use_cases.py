"""A hospital's signed deliveries: `patient.linked` completes a link,
`records.push` delivers records for a linked patient (or parks them until the
link completes).

The work flows one way. Before a byte of the body is read, the hospital must be
known and the signature headers sound (`begin`); the signature is computed as the
body streams in and then checked (`admit`). The api then decodes
the body and has the bundle validated (`prepare`) before any transaction opens;
then, in one transaction (`delivery`), the webhook-id is claimed, the delivery
runs and returns a typed outcome (or raises its refusal), and the api's rendering
of that answer is kept for redeliveries (`ClaimedDelivery.keep`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from domain.access import AccessRefused, Action, HospitalActor, Permit
from domain.audit.events import PURPOSE_OPERATIONS, AuditEvent, RequestContext
from domain.audited_access import authorize_audited
from domain.consents.consent import Consent
from domain.erasure_traces import PatientRefErased, erased_ref_digest
from domain.errors import FieldProblem, InvalidInput, RateLimited
from domain.fhir.bundle import ParsedEntry, parse_bundle
from domain.fhir.elements import unknown_elements
from domain.fhir.validation import InvalidFhir
from domain.hospitals.deliveries import (
    CODE_FAILURE_WINDOW,
    DeliveryIdReused,
    DeliveryOutcome,
    InvalidPush,
    LinkCompleted,
    LinkRequest,
    PreparedDelivery,
    PushParked,
    PushRequest,
    ValidatedPush,
    WebhookLimits,
    window_start,
)
from domain.hospitals.hospital import UnknownHospital
from domain.hospitals.link_codes import link_code_digest, normalise_link_code
from domain.hospitals.links import (
    LinkCodeExpired,
    LinkCodeInvalid,
    LinkCodeUsed,
    LinkRevoked,
    PatientRefTaken,
)
from domain.hospitals.webhook_signature import SignatureCheck, SignedDelivery
from domain.ports import (
    AuditLog,
    Clock,
    ConsentStore,
    HospitalStore,
    LinkStore,
    RecordStore,
    Throttle,
    UnitOfWork,
    WebhookDeliveryStore,
)
from domain.records.ingest import ingest
from domain.records.record import IngestResult
from domain.records.sources import RecordSource
from domain.throttle import ThrottleKey
from domain.throttle import subject as throttle_subject


class ClaimedDelivery:
    """One delivery whose webhook-id is claimed, inside its transaction."""

    def __init__(
        self,
        webhooks: HospitalWebhooks,
        uow: UnitOfWork,
        hospital_id: UUID,
        delivery: SignedDelivery,
        prepared: PreparedDelivery,
        context: RequestContext,
        replay: bytes | None,
    ):
        self._webhooks = webhooks
        self._uow = uow
        self._hospital_id = hospital_id
        self._delivery = delivery
        self._prepared = prepared
        self._context = context
        # The answer kept from an earlier delivery of this webhook-id and body.
        self.replay = replay

    async def run(self) -> DeliveryOutcome:
        """What the delivery does; its refusals are raised (audited first)."""
        webhooks, now = self._webhooks, self._webhooks._clock.now()
        match self._prepared:
            case LinkRequest():
                return await webhooks._link(
                    self._uow, self._hospital_id, self._prepared, now, self._context
                )
            case ValidatedPush():
                return await webhooks._push(
                    self._uow,
                    self._hospital_id,
                    self._delivery.id,
                    self._prepared,
                    now,
                    self._context,
                )
            case InvalidPush(problems=problems):
                raise InvalidFhir(list(problems))

    async def keep(self, reply: bytes) -> None:
        """Stores the answer (the api's rendering) and commits the delivery with it."""
        await self._webhooks._deliveries.record_reply(self._hospital_id, self._delivery.id, reply)
        await self._uow.commit()


# Told of every delivery stored, in its transaction (new results notify).
IngestListener = Callable[
    [Permit, RecordSource, list[ParsedEntry], IngestResult], Awaitable[object]
]


class HospitalWebhooks:
    """A hospital's signed deliveries: verify, limit, deduplicate, then link or push."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hospitals: HospitalStore,
        links: LinkStore,
        deliveries: WebhookDeliveryStore,
        consents: ConsentStore,
        records: RecordStore,
        audit: AuditLog,
        clock: Clock,
        code_key: bytes,
        limits: WebhookLimits,
        throttle: Throttle,
        ref_key: bytes,
        on_ingested: IngestListener | None = None,
    ):
        self._on_ingested = on_ingested
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
        self._ref_key = ref_key

    async def begin(self, hospital_id: UUID, headers: Mapping[str, str]) -> SignatureCheck:
        """Before any body byte is read: the hospital must exist (with a live
        secret; otherwise 404) and the signature headers must be well-formed and
        timely. The returned check is fed the body as it streams in."""
        now = self._clock.now()
        secrets_ = await self._hospitals.live_secrets(hospital_id, now)
        if not secrets_:
            raise UnknownHospital("No hospital with this id receives deliveries.")
        return SignatureCheck([s.key for s in secrets_], headers, now)

    async def authenticate(
        self, hospital_id: UUID, headers: Mapping[str, str], body: bytes
    ) -> SignedDelivery:
        """`begin`, the whole body, `admit`: for callers that hold the body already."""
        check = await self.begin(hospital_id, headers)
        check.update(body)
        return await self.admit(hospital_id, check)

    async def admit(self, hospital_id: UUID, check: SignatureCheck) -> SignedDelivery:
        """Completes the signature check, then counts the delivery against the
        hospital's rate limit (after verifying, so nobody else can spend a
        hospital's allowance)."""
        delivery = check.finish()
        now = self._clock.now()
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

    async def prepare(self, request: LinkRequest | PushRequest) -> PreparedDelivery:
        """What needs no database, done before the delivery's transaction opens.
        Validating a bundle is pure Python (about 40 ms per 1,000 entries): it runs
        in a thread, so a 20 MiB push stalls neither the event loop nor a connection."""
        if isinstance(request, LinkRequest):
            return request
        try:
            entries = await asyncio.to_thread(parse_bundle, request.bundle)
        except InvalidFhir as invalid:
            return InvalidPush(request.patient_ref, tuple(invalid.problems))
        # The rule for hospital pushes: an entry with elements FHIR R4 does not
        # define is kept as received (all or nothing stays the delivery's rule),
        # and every such path is named in the reply, never silently kept.
        unknown = tuple(
            f"bundle.entry[{entry.index}].resource.{path}"
            for entry in entries
            for path in unknown_elements(entry.resource)
        )
        return ValidatedPush(request.patient_ref, request.bundle, entries, unknown)

    @asynccontextmanager
    async def delivery(
        self,
        hospital_id: UUID,
        delivery: SignedDelivery,
        body: bytes,
        prepared: PreparedDelivery,
        *,
        context: RequestContext,
    ) -> AsyncIterator[ClaimedDelivery]:
        """Claims the webhook-id for one authenticated delivery, in the transaction
        that then runs it and keeps its answer: a redelivery waits for it and gets
        the kept answer (`replay`); nothing is stored twice. Leaving without
        `keep` rolls everything back (a rate limit, a failure: the hospital retries)."""
        digest = hashlib.sha256(body).digest()
        async with self._unit_of_work() as uow:
            known = await self._deliveries.claim(
                hospital_id, delivery.id, digest, self._clock.now()
            )
            replay = None
            if known is not None:
                known_digest, replay = known
                if known_digest != digest:
                    raise DeliveryIdReused(
                        "A delivery with this webhook-id and a different body was already received; "
                        "use a new webhook-id for new content."
                    )
            yield ClaimedDelivery(self, uow, hospital_id, delivery, prepared, context, replay)

    async def _authorize(
        self,
        uow: UnitOfWork,
        hospital_id: UUID,
        action: Action,
        patient_id: UUID,
        consent: Consent | None,
        context: RequestContext,
    ) -> Permit:
        # A refusal's row is committed with the answer the api keeps for it.
        return await authorize_audited(
            uow,
            self._audit,
            HospitalActor(hospital_id),
            action,
            patient_id,
            now=self._clock.now(),
            consent=consent,
            context=context,
            commit_refusal=False,
        )

    async def _ingest(
        self,
        uow: UnitOfWork,
        hospital_id: UUID,
        patient_id: UUID,
        entries: list[ParsedEntry],
        consent: Consent | None,
        context: RequestContext,
    ) -> IngestResult:
        permit = await self._authorize(
            uow, hospital_id, "record.ingest", patient_id, consent, context
        )
        source = RecordSource(kind="hospital", hospital_id=hospital_id)
        result = await ingest(permit, source, entries, records=self._records, audit=self._audit)
        if self._on_ingested is not None:
            # In the delivery's transaction: what the ingest causes commits with it.
            await self._on_ingested(permit, source, entries, result)
        return result

    def _hospital_event(
        self, action: str, hospital_id: UUID, patient_id: UUID | None, context: RequestContext
    ) -> AuditEvent:
        """For refusals before the policy can be asked: no link, so no patient yet."""
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
        self,
        uow: UnitOfWork,
        hospital_id: UUID,
        data: LinkRequest,
        now: datetime,
        context: RequestContext,
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
        # The code is the patient's consent to this hospital: its data-source consent
        # is what the policy checks before the hospital may complete the link.
        try:
            permit = await self._authorize(
                uow,
                hospital_id,
                "link.completed",
                link.patient_id,
                await self._consents.relied_on(link.consent_id),
                context,
            )
        except AccessRefused:
            raise LinkCodeUsed(
                "The code was already used or the patient withdrew it.",
                errors=[FieldProblem("data.code", "revoked")],
            ) from None
        await self._links.complete(permit, link.id, data.patient_ref, now)
        # A patient linking under an erased patientRef with a fresh code is a new
        # consent: the hospital may send for it again.
        await self._deliveries.lift_erasure(
            hospital_id, erased_ref_digest(self._ref_key, hospital_id, data.patient_ref)
        )
        await self._audit.append(permit.event("Consent", str(link.id), str(link.consent_id)))
        # Pushes that arrived before the link are applied now, in this transaction, oldest first.
        consent = await self._consents.remove_end(permit, link.consent_id)
        results = []
        for parked in await self._deliveries.take_parked(hospital_id, data.patient_ref):
            # Validated when it arrived; parsed again for its entries (it was parked
            # as received). A rare path: the transaction holds it.
            entries = await asyncio.to_thread(parse_bundle, parked.bundle)
            parked_context = msgspec.structs.replace(
                context, request_id=context.request_id or parked.delivery_id
            )
            results.append(
                await self._ingest(
                    uow, hospital_id, link.patient_id, entries, consent, parked_context
                )
            )
        return LinkCompleted(parked_applied=len(results), results=tuple(results))

    async def _push(
        self,
        uow: UnitOfWork,
        hospital_id: UUID,
        delivery_id: str,
        push: ValidatedPush,
        now: datetime,
        context: RequestContext,
    ) -> IngestResult | PushParked:
        digest = erased_ref_digest(self._ref_key, hospital_id, push.patient_ref)
        if await self._deliveries.erased(hospital_id, digest):
            # Never stored, never parked: the patient erased their account.
            raise PatientRefErased(
                "The patient behind this patientRef has erased their account; "
                "stop sending records for it."
            )
        link = await self._links.for_patient_ref(hospital_id, push.patient_ref)
        if link is None:
            await self._deliveries.park(
                hospital_id, push.patient_ref, delivery_id, push.bundle, now
            )
            return PushParked(unknown_elements=push.unknown_elements)
        try:
            result = await self._ingest(
                uow,
                hospital_id,
                link.patient_id,
                push.entries,
                # Held until this delivery commits: a revocation in flight either
                # finished before (and this push is refused) or waits for it.
                await self._consents.hold(link.consent_id),
                context,
            )
        except AccessRefused:
            # The policy's refusal is in the patient's audit chain.
            raise LinkRevoked(
                "The patient has revoked this link; records for this patientRef are no longer accepted."
            ) from None
        return msgspec.structs.replace(result, unknown_elements=push.unknown_elements)
