"""The composition root: builds the real adapters behind the domain's ports and
the use cases on top of them. `phr serve`, the operator commands and the tests
all wire the service through this one place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from domain.accounts.flow_throttle import AccountFlowLimits
from domain.accounts.login_throttle import SignInPolicy
from domain.accounts.passwords import PasswordPolicy
from domain.accounts.signing_key_use_cases import SigningKeyRotation
from domain.accounts.use_cases import AccountErasure, Authentication
from domain.audit.use_cases import AuditHistory
from domain.clock import SystemClock
from domain.consents.use_cases import PatientConsents
from domain.flood_guard import FloodGuard
from domain.hospitals.deliveries import WebhookLimits
from domain.hospitals.link_use_cases import PatientLinks
from domain.hospitals.operator_use_cases import Hospitals
from domain.hospitals.webhook_use_cases import HospitalWebhooks
from domain.ports import Clock
from domain.records.use_cases import PatientRecords
from domain.uploads.upload import UploadRules
from domain.uploads.use_cases import PatientUploads
from infra.access_tokens import JwtAccessTokens, verify_retired_for
from infra.account_alerts import MailedAccountAlerts
from infra.blobs.factory import OpenBlobStore, open_blob_store
from infra.blobs.local import LocalBlobStore
from infra.common_passwords import common_passwords
from infra.password_hasher import ThreadPoolPasswordHasher
from infra.pg.accounts import PgAccountStore
from infra.pg.audit import PgAuditLog
from infra.pg.consents import PgConsentStore
from infra.pg.database import Database
from infra.pg.erasure import PgAccountEraser
from infra.pg.hospitals import PgHospitalStore
from infra.pg.links import PgLinkStore
from infra.pg.migration_runner import pending
from infra.pg.records import PgRecordStore
from infra.pg.refresh_tokens import PgRefreshTokenStore
from infra.pg.signing_keys import PgSigningKeys
from infra.pg.throttle import PgThrottle
from infra.pg.unit_of_work import PgUnitOfWork
from infra.pg.uploads import PgUploadStore
from infra.pg.webhook_deliveries import PgWebhookDeliveryStore
from infra.secret_box import SecretBox, load_secret_box
from infra.settings import Settings


@dataclass
class Services:
    settings: Settings
    database: Database
    clock: Clock
    audit: PgAuditLog
    # None for operator commands, which touch no files.
    opened_blobs: OpenBlobStore | None

    def unit_of_work(self) -> PgUnitOfWork:
        return PgUnitOfWork(self.database)

    @property
    def blobs(self) -> OpenBlobStore:
        if self.opened_blobs is None:
            raise RuntimeError("opened without a blob store (with_blobs=False)")
        return self.opened_blobs

    @property
    def local_files(self) -> LocalBlobStore | None:
        """The local store, whose signed URLs phr serves itself; None with S3."""
        return self.opened_blobs if isinstance(self.opened_blobs, LocalBlobStore) else None

    async def pending_migrations(self) -> list[str]:
        async with self.database.pool.acquire(timeout=2) as conn:
            return await pending(conn)

    async def readiness_problem(self) -> str | None:
        """Why the service cannot serve yet, or None when it can."""
        try:
            missing = await self.pending_migrations()
        except Exception:
            return "database is not reachable"
        return f"{len(missing)} migration(s) not applied" if missing else None

    # --- stores ---------------------------------------------------------------

    @cached_property
    def records(self) -> PgRecordStore:
        return PgRecordStore(self.database, self.clock)

    @cached_property
    def consents(self) -> PgConsentStore:
        return PgConsentStore(self.database)

    # Hospital webhook secrets and link codes are sealed with a key kept outside
    # the database (PHR_SECRETS_KEY, else <data dir>/keys/secrets.key).
    @cached_property
    def secret_box(self) -> SecretBox:
        return load_secret_box(self.settings.data_dir, self.settings.secrets_key)

    @cached_property
    def hospital_store(self) -> PgHospitalStore:
        return PgHospitalStore(self.database, self.secret_box)

    @cached_property
    def link_store(self) -> PgLinkStore:
        return PgLinkStore(self.database, self.secret_box)

    @cached_property
    def signing_keys(self) -> PgSigningKeys:
        return PgSigningKeys(
            self.database,
            self.secret_box,
            verify_retired_for=verify_retired_for(self.settings.access_token_ttl_seconds),
        )

    # One throttle for every guessable thing (sign-in, registration, refresh, codes).
    @cached_property
    def throttle(self) -> PgThrottle:
        return PgThrottle(self.database)

    @cached_property
    def sign_in_policy(self) -> SignInPolicy:
        settings = self.settings
        return SignInPolicy(
            pair_failures=settings.login_account_failures,
            address_failures=settings.login_address_failures,
            delay_after=settings.login_account_failures,
            window_seconds=settings.login_window_seconds,
            registrations_per_hour=settings.registrations_per_hour,
            refresh_failures=settings.refresh_failures,
        )

    @cached_property
    def webhook_flood_guard(self) -> FloodGuard:
        return FloodGuard(
            self.settings.webhook_address_requests, self.settings.webhook_window_seconds
        )

    @cached_property
    def account_alerts(self) -> MailedAccountAlerts:
        return MailedAccountAlerts(
            PgAccountStore(self.database), self.mail_outbox, self.unit_of_work
        )

    # The hasher's pool is shut down in close_services.
    @cached_property
    def password_hasher(self) -> ThreadPoolPasswordHasher:
        return ThreadPoolPasswordHasher(
            workers=self.settings.password_hash_workers,
            queue_limit=self.settings.password_hash_queue,
        )

    @cached_property
    def access_tokens(self) -> JwtAccessTokens:
        return JwtAccessTokens(
            self.signing_keys,
            issuer=self.settings.public_url,
            ttl_seconds=self.settings.access_token_ttl_seconds,
        )

    def _content_url(self, record_id: UUID) -> str:
        return f"{self.settings.public_url}/v1/records/{record_id}/content"

    # --- use cases: what the api and the operator commands call ----------------

    @cached_property
    def patient_records(self) -> PatientRecords:
        return PatientRecords(self.unit_of_work, self.records, self.audit, self.clock)

    @cached_property
    def patient_consents(self) -> PatientConsents:
        return PatientConsents(self.unit_of_work, self.consents, self.audit, self.clock)

    @cached_property
    def audit_history(self) -> AuditHistory:
        return AuditHistory(self.unit_of_work, self.audit, self.clock)

    @cached_property
    def account_erasure(self) -> AccountErasure:
        return AccountErasure(
            self.unit_of_work,
            PgAccountEraser(self.database),
            self.blobs,
            self.audit,
            self.clock,
            self.secret_box.derive(b"erased-ref"),
        )

    @cached_property
    def authentication(self) -> Authentication:
        settings = self.settings
        return Authentication(
            accounts=PgAccountStore(self.database),
            hasher=self.password_hasher,
            policy=PasswordPolicy(common_passwords()),
            access_tokens=self.access_tokens,
            refresh_tokens=self.refresh_tokens,
            throttle=self.throttle,
            throttle_policy=self.sign_in_policy,
            alerts=self.account_alerts,
            audit=self.audit,
            unit_of_work=self.unit_of_work,
            clock=self.clock,
            refresh_token_ttl_seconds=settings.refresh_token_ttl_seconds,
            refresh_family_lifetime_seconds=settings.refresh_family_lifetime_seconds,
            verification_required=settings.email_verification,
            on_signed_in=self.notifier.signed_in,
        )

    # Account flows: mailed codes, password changes, sessions, profile.
    @cached_property
    def refresh_tokens(self) -> PgRefreshTokenStore:
        return PgRefreshTokenStore(self.database)

    @cached_property
    def mailer(self):  # -> domain.mail.Mailer
        from infra.mail.factory import open_mailer

        return open_mailer(self.settings)

    @cached_property
    def mail_outbox(self):  # -> infra.mail.outbox.JobMailOutbox
        from infra.mail.outbox import JobMailOutbox

        return JobMailOutbox(
            self.database,
            self.jobs,
            self.secret_box,
            self.mailer,
            retry_base_seconds=self.settings.job_retry_base_seconds,
        )

    @cached_property
    def account_ports(self):  # -> domain.accounts.flow_support.AccountPorts
        from domain.accounts.flow_support import AccountPorts
        from infra.pg.account_codes import PgAccountCodeStore

        settings = self.settings
        return AccountPorts(
            accounts=PgAccountStore(self.database),
            codes=PgAccountCodeStore(self.database),
            code_key=self.secret_box.derive(b"account-code"),
            hasher=self.password_hasher,
            policy=PasswordPolicy(common_passwords()),
            sessions=self.refresh_tokens,
            outbox=self.mail_outbox,
            # The one throttle of sign-in; a current-password guess counts on the
            # sign-in keys: one budget of password guesses.
            throttle=self.throttle,
            limits=AccountFlowLimits(
                mail_per_email=settings.account_mail_per_email,
                mail_per_address=settings.account_mail_per_address,
                mail_window_seconds=settings.account_mail_window_seconds,
                code_failures_per_email=settings.code_failures_per_email,
                code_failures_per_address=settings.login_address_failures,
                code_window_seconds=settings.login_window_seconds,
            ),
            sign_in=self.sign_in_policy,
            audit=self.audit,
            unit_of_work=self.unit_of_work,
            clock=self.clock,
            verification_required=settings.email_verification,
        )

    @cached_property
    def registration(self):  # -> domain.accounts.registration.Registration
        from domain.accounts.registration import Registration

        return Registration(self.account_ports)

    @cached_property
    def password_changes(self):  # -> domain.accounts.password_changes.PasswordChanges
        from domain.accounts.password_changes import PasswordChanges

        return PasswordChanges(self.account_ports)

    @cached_property
    def profile_changes(self):  # -> domain.accounts.profile_use_cases.ProfileChanges
        from domain.accounts.profile_use_cases import ProfileChanges

        return ProfileChanges(self.account_ports, self.account_erasure)

    @cached_property
    def hospital_names(self):  # -> infra.pg.hospital_directory.PgHospitalNames
        from infra.pg.hospital_directory import PgHospitalNames

        return PgHospitalNames(self.database)

    @cached_property
    def hospital_directory(self):  # -> domain.hospitals.directory_use_cases.HospitalDirectory
        from domain.hospitals.directory_use_cases import HospitalDirectory

        return HospitalDirectory(self.unit_of_work, self.hospital_names, self.audit, self.clock)

    @cached_property
    def sessions(self):  # -> domain.accounts.session_use_cases.Sessions
        from domain.accounts.session_use_cases import Sessions

        return Sessions(self.unit_of_work, self.refresh_tokens, self.audit, self.clock)

    @cached_property
    def signing_key_rotation(self) -> SigningKeyRotation:
        return SigningKeyRotation(self.unit_of_work, self.signing_keys, self.audit, self.clock)

    @cached_property
    def hospitals(self) -> Hospitals:
        return Hospitals(self.unit_of_work, self.hospital_store, self.audit, self.clock)

    @cached_property
    def patient_links(self) -> PatientLinks:
        return PatientLinks(
            self.unit_of_work,
            self.hospital_store,
            self.link_store,
            self.consents,
            self.audit,
            self.clock,
            self.secret_box.derive(b"link-code"),
        )

    @cached_property
    def hospital_webhooks(self) -> HospitalWebhooks:
        from domain.notifications.results import ResultsNotifier

        settings = self.settings
        return HospitalWebhooks(
            self.unit_of_work,
            self.hospital_store,
            self.link_store,
            PgWebhookDeliveryStore(self.database),
            self.consents,
            self.records,
            self.audit,
            self.clock,
            self.secret_box.derive(b"link-code"),
            WebhookLimits(
                deliveries_per_window=settings.webhook_deliveries_per_window,
                window_seconds=settings.webhook_window_seconds,
                code_failures_per_hour=settings.link_code_failures_per_hour,
            ),
            self.throttle,
            self.secret_box.derive(b"erased-ref"),
            # New final results notify in the delivery's own transaction.
            on_ingested=ResultsNotifier(self.notifier, self.hospital_store),
        )

    # The audit transparency log: its own Ed25519 key (PHR_AUDIT_LOG_KEY, else
    # <data dir>/keys/audit-log.key), the sequencer's store, the patient's proofs.
    @cached_property
    def log_signer(self):  # -> infra.log_key.Ed25519NoteSigner
        from infra.log_key import load_log_signer, log_origin

        return load_log_signer(
            log_origin(self.settings.public_url),
            self.settings.data_dir,
            self.settings.audit_log_key,
        )

    @cached_property
    def transparency_log(self):  # -> infra.pg.audit_log.PgTransparencyLog
        from infra.pg.audit_log import PgTransparencyLog

        return PgTransparencyLog(self.database, self.log_signer)

    @cached_property
    def audit_trail(self):  # -> domain.audit.trail.AuditTrail
        from domain.audit.trail import AuditTrail

        return AuditTrail(
            self.unit_of_work, self.transparency_log, self.audit, self.log_signer, self.clock
        )

    # Background jobs: the JobQueue port (enqueue joins the open unit of work).
    @cached_property
    def jobs(self):  # -> infra.pg.jobs.PgJobQueue
        from infra.pg.jobs import PgJobQueue

        return PgJobQueue(self.database)

    # Patient uploads: presigned PUT to the blob store, checked and registered
    # as records on completion.
    @cached_property
    def patient_uploads(self) -> PatientUploads:
        return PatientUploads(
            unit_of_work=self.unit_of_work,
            uploads=PgUploadStore(self.database),
            records=self.records,
            blobs=self.blobs,
            imaging=self.imaging_import,
            audit=self.audit,
            clock=self.clock,
            rules=UploadRules(max_bytes=self.settings.upload_max_bytes),
            content_url=self._content_url,
        )

    # Imaging the patient stores: CD imports, previews, DICOMweb, viewer tokens.
    @cached_property
    def imaging_store(self):  # -> infra.pg.imaging.PgImagingStore
        from infra.pg.imaging import PgImagingStore

        return PgImagingStore(self.database)

    @cached_property
    def imaging_jobs(self):  # -> infra.imaging_jobs.QueuedImagingJobs
        from infra.imaging_jobs import QueuedImagingJobs

        return QueuedImagingJobs(self.jobs)

    # DICOM parsing and rendering run in worker processes killed at their
    # deadline (a thread cannot be stopped); the pool is closed in close_services.
    @cached_property
    def dicom_processes(self):  # -> infra.dicom.processes.DicomProcesses
        from infra.dicom.processes import DicomProcesses

        return DicomProcesses()

    @cached_property
    def frame_renderer(self):  # -> infra.dicom.render.PillowRenderer
        from infra.dicom.render import PillowRenderer

        return PillowRenderer(processes=self.dicom_processes)

    @cached_property
    def dicom_reader(self):  # -> infra.dicom.header.PydicomReader
        from infra.dicom.header import PydicomReader

        return PydicomReader(processes=self.dicom_processes)

    @cached_property
    def dicomweb_base(self) -> str:
        return f"{self.settings.public_url}/v1/dicomweb"

    @cached_property
    def imaging_import(self):  # -> domain.imaging.importing.ImagingImport
        from domain.imaging.dicom_archive import ArchiveLimits
        from domain.imaging.importing import ImagingImport
        from infra.dicom.archive import ZipArchives

        settings = self.settings
        importer = ImagingImport(
            unit_of_work=self.unit_of_work,
            store=self.imaging_store,
            records=self.records,
            blobs=self.blobs,
            reader=self.dicom_reader,
            archives=ZipArchives(
                self.blobs,
                ArchiveLimits(
                    max_entries=settings.archive_max_entries,
                    max_expanded_bytes=settings.archive_max_expanded_bytes,
                    max_ratio=settings.archive_max_ratio,
                ),
            ),
            renderer=self.frame_renderer,
            jobs=self.imaging_jobs,
            audit=self.audit,
            clock=self.clock,
            bulk_base=self.dicomweb_base,
        )
        return importer

    @cached_property
    def dicomweb(self):  # -> domain.imaging.dicomweb.DicomWeb
        from domain.imaging.dicomweb import DicomWeb

        return DicomWeb(
            unit_of_work=self.unit_of_work,
            store=self.imaging_store,
            blobs=self.blobs,
            renderer=self.frame_renderer,
            audit=self.audit,
            clock=self.clock,
            viewer_tokens=self.viewer_tokens,
            reader=self.dicom_reader,
            consents=self.consents,
            shares=self.share_store,
            base_url=self.dicomweb_base,
        )

    @cached_property
    def imaging_catalog(self):  # -> domain.imaging.catalog.ImagingCatalog
        from domain.imaging.catalog import ImagingCatalog, ImagingLinks

        settings = self.settings
        return ImagingCatalog(
            unit_of_work=self.unit_of_work,
            records=self.records,
            store=self.imaging_store,
            viewer_tokens=self.viewer_tokens,
            links=ImagingLinks(settings.public_url, self.dicomweb_base, settings.dicom_viewer_url),
            audit=self.audit,
            clock=self.clock,
        )

    @cached_property
    def viewer_tokens(self):  # -> infra.viewer_tokens.ViewerTokens
        from infra.viewer_tokens import ViewerTokens

        return ViewerTokens(
            self.secret_box.derive(b"dicomweb-viewer"), self.settings.imaging_token_ttl_seconds
        )

    # Sharing through SMART Health Links.
    @cached_property
    def share_store(self):  # -> infra.pg.shares.PgShareStore
        from infra.pg.shares import PgShareStore

        return PgShareStore(self.database, self.secret_box)

    @cached_property
    def share_content(self):  # -> domain.sharing.content.ShareContent
        from domain.sharing.content import ShareContent
        from domain.sharing.imaging import SharedImaging
        from infra.shl_jose import JoseContentCipher

        imaging = SharedImaging(
            store=self.imaging_store,
            blobs=self.blobs,  # type: ignore[arg-type]
            viewer_tokens=self.viewer_tokens,
            public_url=self.settings.public_url,
        )
        return ShareContent(self.share_store, self.blobs, JoseContentCipher(), imaging)  # type: ignore[arg-type]

    # QR codes render in a process of their own (pure Python that would hold this
    # process's GIL); its pool is shut down in close_services.
    @cached_property
    def qr_renderer(self):  # -> infra.qr.ProcessQrRenderer
        from infra.qr import ProcessQrRenderer

        return ProcessQrRenderer()

    @cached_property
    def patient_shares(self):  # -> domain.sharing.patient_shares.PatientShares
        from domain.sharing.patient_shares import PatientShares

        return PatientShares(
            unit_of_work=self.unit_of_work,
            shares=self.share_store,
            consents=self.consents,
            content=self.share_content,
            files=self.blobs,  # type: ignore[arg-type]
            hasher=self.password_hasher,
            qr=self.qr_renderer,
            audit=self.audit,
            clock=self.clock,
            public_url=self.settings.public_url,
        )

    @cached_property
    def share_manifests(self):  # -> domain.sharing.recipient.ShareManifests
        from domain.sharing.recipient import ShareManifests
        from infra.pg.shares import PgShareRequestThrottle

        settings = self.settings
        return ShareManifests(
            unit_of_work=self.unit_of_work,
            shares=self.share_store,
            consents=self.consents,
            content=self.share_content,
            files=self.blobs,  # type: ignore[arg-type]
            hasher=self.password_hasher,
            throttle=PgShareRequestThrottle(
                self.database,
                per_link=settings.share_requests_per_link,
                per_address=settings.share_requests_per_address,
                window_seconds=settings.share_request_window_seconds,
            ),
            audit=self.audit,
            clock=self.clock,
            public_url=settings.public_url,
            on_accessed=lambda access, share_id, label, recipient: self.notifier.share_accessed(
                access.patient_id, share_id, label, recipient
            ),
        )

    # Notifications, medications and push delivery.
    @cached_property
    def notification_store(self):  # -> infra.pg.notifications.PgNotificationStore
        from infra.pg.notifications import PgNotificationStore

        return PgNotificationStore(self.database)

    @cached_property
    def notifier(self):  # -> domain.notifications.notifier.Notifier
        from domain.notifications.notifier import Notifier

        return Notifier(self.notification_store, self.clock)

    @cached_property
    def inbox(self):  # -> domain.notifications.inbox.Inbox
        from domain.notifications.inbox import Inbox

        return Inbox(self.unit_of_work, self.notification_store, self.audit, self.clock)

    @cached_property
    def patient_medications(self):  # -> domain.medications.use_cases.PatientMedications
        from domain.medications.use_cases import PatientMedications

        return PatientMedications(
            self.unit_of_work,
            self.records,
            self.notification_store,
            self.hospital_store,
            self.audit,
            self.clock,
        )

    @cached_property
    def refill_scan(self):  # -> domain.medications.use_cases.RefillScan
        from domain.medications.use_cases import RefillScan

        return RefillScan(
            self.unit_of_work,
            self.notification_store,
            self.records,
            self.notification_store,
            self.notifier,
            self.audit,
            self.clock,
        )

    @cached_property
    def push_settings(self):  # -> infra.push.settings.PushSettings
        from infra.push.settings import load_push_settings

        return load_push_settings(self.settings.public_url)

    @cached_property
    def vapid(self):  # -> py_vapid.Vapid02, made on first use and kept in <data dir>/keys
        from infra.push.webpush import load_vapid

        return load_vapid(self.settings.data_dir)

    @cached_property
    def devices(self):  # -> domain.notifications.devices.Devices
        from domain.notifications.devices import Devices
        from infra.pg.notifications import PgDeviceStore
        from infra.push.webpush import application_server_key

        push = self.push_settings
        return Devices(
            self.unit_of_work,
            PgDeviceStore(self.database),
            self.audit,
            self.clock,
            configured=push.configured,
            allowed_origins=push.webpush_allow,
            web_push_key=lambda: application_server_key(self.vapid),
        )

    @cached_property
    def push_client(self):  # -> httpx.AsyncClient, closed in close_services
        import httpx

        # No redirects: a push endpoint must not bounce phr to another address.
        return httpx.AsyncClient(timeout=15.0, follow_redirects=False)

    @cached_property
    def push_senders(self) -> dict:
        from infra.push.webpush import WebPushSender

        senders: dict = {
            "webpush": WebPushSender(self.vapid, self.push_settings.vapid_subject, self.push_client)
        }
        if self.push_settings.apns is not None:
            from infra.push.apns import ApnsSender

            senders["apns"] = ApnsSender(self.push_settings.apns, self.clock)
        if self.push_settings.fcm is not None:
            from infra.push.fcm import FcmSender

            senders["fcm"] = FcmSender(self.push_settings.fcm, self.push_client, self.clock)
        from infra.push.outage_reporting import OutageReportingSender

        outages = self.database.outages
        return {
            kind: OutageReportingSender(kind, sender, outages) for kind, sender in senders.items()
        }

    @cached_property
    def outbox(self):  # -> infra.pg.notifications.PgOutboxStore
        from infra.pg.notifications import PgOutboxStore

        return PgOutboxStore(self.database)

    @cached_property
    def push_dispatcher(self):  # -> domain.notifications.delivery.PushDispatcher
        from domain.notifications.delivery import PushDispatcher, RetryPolicy

        push = self.push_settings
        return PushDispatcher(
            self.outbox,
            self.push_senders,
            self.clock,
            RetryPolicy(
                max_attempts=push.max_attempts,
                base_seconds=push.retry_base_seconds,
                lease_seconds=push.lease_seconds,
            ),
        )


async def open_services(
    settings: Settings,
    dsn: str,
    *,
    clock: Clock | None = None,
    pool_size: int = 10,
    with_blobs: bool = True,
) -> Services:
    """Opens the pool (and the blob store unless `with_blobs` is False, as for
    operator commands); close with `close_services`. `dsn` is the owner's (it ran
    the migrations); the pool logs in as the serving role."""
    from infra.pg.serving_role import serving_dsn

    served = await serving_dsn(dsn, settings.data_dir, settings.serving_database_url)
    # The login role holds phr_app's rights itself: nothing to SET ROLE to or from.
    database = Database(
        served,
        min_size=min(2, pool_size),
        max_size=pool_size,
        role=None,
        statement_timeout=settings.database_statement_timeout_seconds,
    )
    await database.open()
    clock = clock or SystemClock()
    try:
        blobs = await open_blob_store(settings, clock) if with_blobs else None
    except BaseException:
        await database.close()
        raise
    return Services(
        settings=settings,
        database=database,
        clock=clock,
        audit=PgAuditLog(database, clock),
        opened_blobs=blobs,
    )


async def close_services(services: Services) -> None:
    if "mail_outbox" in services.__dict__:
        await services.mail_outbox.close()
    if "password_hasher" in services.__dict__:
        services.password_hasher.close()
    if "qr_renderer" in services.__dict__:
        services.qr_renderer.close()
    if "dicom_processes" in services.__dict__:
        services.dicom_processes.close()
    for sender in services.__dict__.get("push_senders", {}).values():
        close = getattr(sender, "close", None)
        if close is not None:
            await close()
    if "push_client" in services.__dict__:
        await services.push_client.aclose()
    try:
        if services.opened_blobs is not None:
            await services.opened_blobs.close()
    finally:
        await services.database.close()
