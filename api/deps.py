"""Typed dependencies that handlers declare: the request's context and, one each,
the use cases the handlers call. `api/app.py` provides them from the composition
root; nothing else in `api/` reaches into `infra/`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from api.client_address import client_address
from domain.accounts.password_changes import PasswordChanges
from domain.accounts.profile_use_cases import ProfileChanges
from domain.accounts.registration import Registration
from domain.accounts.session_use_cases import Sessions
from domain.accounts.use_cases import AccountErasure, Authentication
from domain.audit.events import RequestContext
from domain.audit.trail import AuditTrail
from domain.audit.use_cases import AuditHistory
from domain.consents.use_cases import PatientConsents
from domain.flood_guard import FloodGuard
from domain.hospitals.directory_use_cases import HospitalDirectory
from domain.hospitals.link_use_cases import PatientLinks
from domain.hospitals.webhook_use_cases import HospitalWebhooks
from domain.imaging.dicomweb import DicomWeb
from domain.imaging.importing import ImagingImport
from domain.medications.use_cases import PatientMedications
from domain.notifications.devices import Devices
from domain.notifications.inbox import Inbox
from domain.notifications.notifier import Notifier
from domain.ports import Clock
from domain.records.use_cases import PatientRecords
from domain.sharing.patient_shares import PatientShares
from domain.sharing.recipient import ShareManifests
from domain.uploads.use_cases import PatientUploads


def raw_header(scope: Any, name: bytes) -> str | None:
    """A request header straight from the ASGI scope (names arrive lowercased):
    the hot routes read two or three, which costs less than building the
    request's header mapping."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def request_context(request: Request[Any, Any, Any]) -> RequestContext:
    """Where the request came from, for audit rows."""
    scope = request.scope
    client = scope.get("client")
    peer = client[0] if client else None
    # PHR_TRUSTED_PROXIES, put in the app's state by create_app.
    trusted = getattr(request.app.state, "trusted_proxies", ())
    if trusted:
        peer = client_address(peer, request.headers.items(), trusted)
    user_agent = raw_header(scope, b"user-agent")
    return RequestContext(
        client_address=peer,
        user_agent=user_agent[:256] if user_agent else None,
        request_id=scope.get("state", {}).get("request_id"),
    )


RequestContextDep = NamedDependency[RequestContext]
ClockDep = NamedDependency[Clock]
AuthenticationDep = NamedDependency[Authentication]
AccountErasureDep = NamedDependency[AccountErasure]
AuditHistoryDep = NamedDependency[AuditHistory]
AuditTrailDep = NamedDependency[AuditTrail]
PatientConsentsDep = NamedDependency[PatientConsents]
PatientLinksDep = NamedDependency[PatientLinks]
PatientRecordsDep = NamedDependency[PatientRecords]
PatientUploadsDep = NamedDependency[PatientUploads]
HospitalWebhooksDep = NamedDependency[HospitalWebhooks]
WebhookFloodGuardDep = NamedDependency[FloodGuard]
ImagingImportDep = NamedDependency[ImagingImport]
DicomWebDep = NamedDependency[DicomWeb]
RegistrationDep = NamedDependency[Registration]
PasswordChangesDep = NamedDependency[PasswordChanges]
ProfileChangesDep = NamedDependency[ProfileChanges]
SessionsDep = NamedDependency[Sessions]
HospitalDirectoryDep = NamedDependency[HospitalDirectory]
PatientSharesDep = NamedDependency[PatientShares]
ShareManifestsDep = NamedDependency[ShareManifests]
InboxDep = NamedDependency[Inbox]
DevicesDep = NamedDependency[Devices]
NotifierDep = NamedDependency[Notifier]
PatientMedicationsDep = NamedDependency[PatientMedications]

# Dependency name -> the composition root's attribute that provides it.
USE_CASES = {
    "clock": "clock",
    "authentication": "authentication",
    "account_erasure": "account_erasure",
    "audit_history": "audit_history",
    "audit_trail": "audit_trail",
    "patient_consents": "patient_consents",
    "patient_links": "patient_links",
    "patient_records": "patient_records",
    "patient_uploads": "patient_uploads",
    "hospital_webhooks": "hospital_webhooks",
    "webhook_flood_guard": "webhook_flood_guard",
    "imaging_import": "imaging_import",
    "dicomweb": "dicomweb",
    "inbox": "inbox",
    "devices": "devices",
    "notifier": "notifier",
    "patient_medications": "patient_medications",
    "readiness": "readiness_problem",
    "local_files": "local_files",
    "registration": "registration",
    "password_changes": "password_changes",
    "profile_changes": "profile_changes",
    "sessions": "sessions",
    "hospital_directory": "hospital_directory",
    "patient_shares": "patient_shares",
    "share_manifests": "share_manifests",
}
