"""Every store over a patient's rows takes a Permit, never a bare patient id.

The walk covers every Protocol in domain/ports.py, domain/imaging/ports.py and
domain/audit/ports.py (a new port must be placed in one of the lists below, on
purpose) and every adapter class in infra/."""

from __future__ import annotations

import ast
import inspect
from typing import Protocol

import domain.audit.ports as audit_ports
import domain.imaging.ports as imaging_ports
import domain.ports as ports
from tests.architecture.imports import ROOT

# Stores whose rows belong to one patient: every method takes a Permit...
PATIENT_DATA_STORES = {
    "RecordStore",
    "ConsentStore",
    "LinkStore",
    "UploadStore",
    "AuditLog",
    "AccountEraser",
    "ImagingStore",
    "TransparencyLogStore",
    "ShareStore",
    "NotificationStore",
    "DeviceStore",
}
# ...except these, each for a reason no Permit can cover.
WITHOUT_PERMIT = {
    ("AuditLog", "append"): "writes the event the policy produced, which names its patient",
    ("ConsentStore", "relied_on"): "the consent an actor presents, read so the policy can check it",
    ("LinkStore", "by_code"): "how a hospital finds the patient behind a code in the first place",
    ("LinkStore", "for_patient_ref"): "how a push finds the patient behind the hospital's MRN",
    ("UploadStore", "expired_pending"): "the sweeper's scan for abandoned uploads across patients",
    ("UploadStore", "delete_pending"): "the sweeper deletes an abandoned upload it found",
    ("ConsentStore", "hold"): "relied_on, held for the transaction so a revocation waits",
    ("AccountEraser", "due_file_sweeps"): "erased accounts' file prefixes: no patient is left",
    ("AccountEraser", "file_sweep_done"): "forgets a swept prefix of an erased account",
    ("TransparencyLogStore", "latest_checkpoint"): "one signed log for the whole service",
    ("TransparencyLogStore", "checkpoint"): "one signed log for the whole service",
    ("TransparencyLogStore", "node_hashes"): "hashes of the service-wide tree, no event contents",
    (
        "TransparencyLogStore",
        "leaf_count",
    ): "how many leaves a range of the service-wide tree holds",
    ("ShareStore", "by_token"): "how a doctor's request finds the share (and patient) at all",
    ("ShareStore", "use_ticket"): "how a file location finds its share (and patient) at all",
    ("ShareStore", "forget_links"): "a sweep that erases expired held links; it reads nothing",
    ("ShareStore", "organizations"): "hospital names, no patient's rows",
    ("NotificationStore", "add"): "writes emissions whose recipients were read through permits",
    ("NotificationStore", "recipients"): "one permit per patient (a fan-out), in a list",
}
# Ports that hold no patient's health data. Those that name a patient id do so
# because they establish who the patient is (sign-in, tokens): no Permit exists yet.
OTHER_PORTS = {
    "UnitOfWork": "transactions",
    "UnitOfWorkFactory": "transactions",
    "Clock": "time",
    "AccountStore": "sign-in: finds the account behind an email or a token's subject",
    "PasswordHasher": "password hashing",
    "AccessTokens": "issues the token that later identifies the patient",
    "RefreshTokenStore": "refresh-token families of a signed-in patient",
    "SigningKeyStore": "the service's own signing keys",
    "FileEraser": "deletes a prefix of object storage",
    "BlobStore": "object storage by key; keys are checked by the use cases",
    "HospitalStore": "hospitals and their secrets",
    "WebhookDeliveryStore": "deliveries by hospital and webhook-id",
    "ImagingIntake": "a use case (it authorizes itself), not a store",
    "ImagingJobs": "enqueues work for a patient; the job authorizes itself when it runs",
    "DicomInstanceReader": "reads a file's header",
    "ArchiveReader": "unpacks a zip by storage key",
    "UnpackedArchive": "the files of an unpacked zip",
    "FrameRenderer": "renders pixel data it is given",
    "ImagingBlobStore": "object storage by key, streamed; keys are checked by the use cases",
    "ViewerTokens": "issues the study-scoped token that later identifies the patient",
    "NoteSigner": "the audit log's signing key",
    "AccountCodeStore": "mailed codes that prove who owns an address, before any sign-in",
    "MailOutbox": "queues a message in the open unit of work",
    "HospitalDirectoryStore": "hospital names; whether the caller linked one is read by permit",
    "RequestThrottle": "counts manifest requests per link digest and client address",
    "ContentCipher": "encrypts bytes with a key it is given",
    "QrRenderer": "draws a QR code of a text",
    "OutboxStore": "the push worker's queue across patients; no health data in it",
    "PushSender": "sends a push that carries no health detail",
    "PrescribedPatients": "the refill scan's list of patients to look at (ids only)",
}
# Use cases and job queues name the patient they act for; they authorize themselves.
SELF_AUTHORIZING = {"ImagingIntake", "ImagingJobs"}
IDENTITY_PORTS = {
    "AccountStore",
    "AccessTokens",
    "RefreshTokenStore",
    "ViewerTokens",
    "AccountCodeStore",
}


def _protocols() -> dict[str, type]:
    return {
        name: value
        for module in (ports, imaging_ports, audit_ports)
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ in (module.__name__, "domain.sharing.ports", "domain.accounts.ports")
        and Protocol in value.__mro__
    }


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def _annotation(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")


def test_every_port_is_placed_on_purpose():
    unplaced = set(_protocols()) - PATIENT_DATA_STORES - set(OTHER_PORTS)
    assert unplaced == set(), "put each new port in PATIENT_DATA_STORES or OTHER_PORTS"
    assert PATIENT_DATA_STORES <= set(_protocols())


def test_every_method_of_a_patient_data_store_takes_a_permit():
    offenders = []
    for name in sorted(PATIENT_DATA_STORES):
        for method, signature in _methods(_protocols()[name]).items():
            takes_permit = any(_annotation(p) == "Permit" for p in signature.parameters.values())
            if not takes_permit and (name, method) not in WITHOUT_PERMIT:
                offenders.append(f"{name}.{method}")
    assert offenders == []


def test_the_exemptions_name_methods_that_exist():
    protocols = _protocols()
    stale = [
        f"{store}.{method}"
        for store, method in WITHOUT_PERMIT
        if method not in _methods(protocols[store])
    ]
    assert stale == []


def test_no_port_outside_sign_in_accepts_a_bare_patient_id():
    offenders = []
    for name, cls in _protocols().items():
        if name in IDENTITY_PORTS or name in SELF_AUTHORIZING:
            continue
        for method, signature in _methods(cls).items():
            if "patient_id" in signature.parameters:
                offenders.append(f"{name}.{method}")
    assert offenders == []


def test_no_adapter_outside_sign_in_accepts_a_bare_patient_id():
    """The adapters in infra/ too: a method added there without its port is caught."""
    # account_alerts: the owner of an account under a sign-in attack, told about it.
    allowed_files = {
        "infra/pg/accounts.py",
        "infra/access_tokens.py",
        "infra/pg/refresh_tokens.py",
        "infra/account_alerts.py",
        # A study-scoped viewer token names its patient, as an access token does.
        "infra/viewer_tokens.py",
        # The job queue's adapter: the job authorizes itself when it runs.
        "infra/imaging_jobs.py",
        "infra/pg/account_codes.py",
    }
    offenders = []
    for path in (ROOT / "infra").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in allowed_files:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not (
                    item.name.startswith("_")
                ):
                    names = [a.arg for a in item.args.args + item.args.kwonlyargs]
                    if "patient_id" in names:
                        offenders.append(f"{relative}:{node.name}.{item.name}")
    assert offenders == []
