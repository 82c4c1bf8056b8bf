"""Settings from the environment, validated once at start."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from domain.blobs import MAX_UPLOAD_BYTES
from domain.uploads.upload import DEFAULT_MAX_UPLOAD_BYTES

# Mail-sending account requests (register, resend, reset, email change) admitted
# per client address per window when PHR_ACCOUNT_MAIL_PER_ADDRESS is not set.
DEFAULT_ACCOUNT_MAIL_PER_ADDRESS = 30


class SettingsError(Exception):
    """A setting has a value the service cannot run with; the message names it."""


class SecretText(str):
    """A secret setting: its value never shows in a repr or a log line."""

    def __repr__(self) -> str:
        return "SecretText('***')"


class S3Settings(msgspec.Struct, frozen=True):
    endpoint_url: str | None
    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key: str | None


class Settings(msgspec.Struct, frozen=True):
    database_url: str | None
    data_dir: Path
    public_url: str
    s3: S3Settings | None = None
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # A sign-in's refresh-token family ends this long after the sign-in, however
    # often it was rotated.
    refresh_family_lifetime_seconds: int = 30 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    password_hash_workers: int = 2
    log_level: str = "INFO"
    # Hashes admitted beyond the running ones before sign-ins get 503 + Retry-After.
    password_hash_queue: int = 64
    # Login throttling: failed attempts allowed per account and per client address
    # within the window.
    login_account_failures: int = 5
    login_address_failures: int = 50
    login_window_seconds: int = 15 * 60
    # Registrations per client address per hour; refused refresh tokens per client
    # address within the login window.
    registrations_per_hour: int = 30
    refresh_failures: int = 30
    # Reverse proxies (CIDRs) whose Forwarded / X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    # Hospital webhooks: deliveries admitted per hospital per fixed window, and
    # wrong link codes a hospital may send per hour.
    webhook_deliveries_per_window: int = 600
    webhook_window_seconds: int = 60
    link_code_failures_per_hour: int = 20
    # Webhook requests per client address per webhook window, counted before the
    # sender is authenticated (per API process).
    webhook_address_requests: int = 1200
    # Largest file a patient may upload (bytes); at most domain.blobs.MAX_UPLOAD_BYTES.
    upload_max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Longest a single SQL statement may run (lock waits included) before the
    # request answers 503 + Retry-After instead of hanging.
    database_statement_timeout_seconds: int = 15
    # Imaging: an external viewer URL template ({studyUid}, {dicomwebUrl}), the
    # lifetime of study-scoped viewer tokens, and what a CD (zip) may hold.
    dicom_viewer_url: str | None = None
    imaging_token_ttl_seconds: int = 3600
    archive_max_entries: int = 20_000
    archive_max_expanded_bytes: int = 2 * 1024 * 1024 * 1024
    archive_max_ratio: int = 200
    # Account mail: SMTP when smtp_url is set, else .eml files under data_dir/mail.
    # May hold the relay's password: never shown in a repr or a log line.
    smtp_url: SecretText | None = None
    smtp_from: str = "phr <no-reply@phr.invalid>"
    # CA certificates to trust for the SMTP server (a relay with a private CA);
    # unset: the system's.
    smtp_ca_file: Path | None = None
    # Off for deployments that verify addresses elsewhere: accounts are verified
    # at registration.
    email_verification: bool = True
    # Requests that send account mail (register, resend, reset, email change):
    # per email and per client address within the window.
    account_mail_per_email: int = 5
    account_mail_per_address: int = 30
    account_mail_window_seconds: int = 15 * 60
    # Wrong mailed codes per email within the login window, across codes (each
    # code also dies after 5); per client address the login limit applies.
    code_failures_per_email: int = 10
    # The background-job worker runs inside `phr serve` unless PHR_WORKER=off
    # (deployments that run `phr worker` separately).
    worker_enabled: bool = True
    # The first retry of a failed background job (mail to an SMTP server that is
    # down) waits between half and all of this, doubling per attempt
    # (PHR_JOB_RETRY_BASE_SECONDS; the fault tests shorten it).
    job_retry_base_seconds: float = 5.0
    # How often the sequencer seals new audit events into a signed checkpoint.
    audit_seal_interval_ms: int = 250
    # The audit log's Ed25519 key seed, base64 (PHR_AUDIT_LOG_KEY); unset: a file
    # in <data dir>/keys made on first use.
    audit_log_key: SecretText | None = None
    # The role the service logs in as (PHR_SERVING_DATABASE_URL); unset: a role phr
    # makes itself (infra/pg/serving_role.py).
    serving_database_url: SecretText | None = None
    # Modules whose `register_jobs(worker, services)` adds jobs (PHR_WORKER_MODULES).
    worker_modules: tuple[str, ...] = ()
    # Base64 key that seals hospital webhook secrets and link codes at rest; None:
    # the key file <data_dir>/keys/secrets.key, made on first use.
    secrets_key: SecretText | None = None
    # SMART Health Link manifests: requests admitted per link and per client
    # address within the window.
    share_requests_per_link: int = 30
    share_requests_per_address: int = 120
    share_request_window_seconds: int = 60

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero, got {value}")
    return value


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 86400:
        raise SettingsError(f"{name} must be more than 0 and less than a day, got {raw}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or (not parts.netloc and parts.scheme.startswith("http")):
        raise SettingsError(
            f"{name} must be a URL starting with {' or '.join(schemes)}, got {raw!r}"
        )
    return raw


def default_hash_workers() -> int:
    """Argon2 threads: every core but one. The spare core keeps the event loop and
    PostgreSQL answering during a login flood; measured on 2 cores, two hashing
    threads pushed /healthz p99 to 2.5x idle and cost logins 20-30% against raw
    hashing, one thread kept both within target in most runs."""
    return max(1, (os.cpu_count() or 2) - 1)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL") or None
    if database_url is not None:
        _url("DATABASE_URL", database_url, ("postgres", "postgresql"))

    data_dir = Path(env.get("PHR_DATA_DIR") or "./.phr").expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"PHR_DATA_DIR must be a folder, but {data_dir} is a file")

    public_url = _url(
        "PHR_PUBLIC_URL", env.get("PHR_PUBLIC_URL") or "http://127.0.0.1:8000", ("http", "https")
    ).rstrip("/")

    s3 = None
    bucket = env.get("S3_BUCKET") or None
    endpoint = env.get("S3_ENDPOINT_URL") or None
    if endpoint is not None:
        _url("S3_ENDPOINT_URL", endpoint, ("http", "https"))
    if endpoint is not None and bucket is None:
        raise SettingsError("S3_ENDPOINT_URL is set but S3_BUCKET is not; set both or neither")
    if bucket is not None:
        s3 = S3Settings(
            endpoint_url=endpoint,
            bucket=bucket,
            region=env.get("S3_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        )

    log_level = (env.get("PHR_LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(
            f"PHR_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    ttl = _positive_int(env, "PHR_ACCESS_TOKEN_TTL", 900)
    if ttl > 900:
        raise SettingsError("PHR_ACCESS_TOKEN_TTL must be at most 900 seconds (15 minutes)")

    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        public_url=public_url,
        s3=s3,
        access_token_ttl_seconds=ttl,
        refresh_token_ttl_seconds=_positive_int(env, "PHR_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        refresh_family_lifetime_seconds=_positive_int(
            env, "PHR_REFRESH_FAMILY_LIFETIME", 30 * 24 * 3600
        ),
        max_body_bytes=_positive_int(env, "PHR_MAX_BODY_BYTES", 1024 * 1024),
        password_hash_workers=_positive_int(
            env, "PHR_PASSWORD_HASH_WORKERS", default_hash_workers()
        ),
        log_level=log_level,
        password_hash_queue=_positive_int(env, "PHR_PASSWORD_HASH_QUEUE", 64),
        login_account_failures=_positive_int(env, "PHR_LOGIN_ACCOUNT_FAILURES", 5),
        login_address_failures=_positive_int(env, "PHR_LOGIN_ADDRESS_FAILURES", 50),
        login_window_seconds=_positive_int(env, "PHR_LOGIN_WINDOW_SECONDS", 15 * 60),
        registrations_per_hour=_positive_int(env, "PHR_REGISTRATIONS_PER_HOUR", 30),
        refresh_failures=_positive_int(env, "PHR_REFRESH_FAILURES", 30),
        trusted_proxies=_networks(env, "PHR_TRUSTED_PROXIES"),
        webhook_deliveries_per_window=_positive_int(env, "PHR_WEBHOOK_RATE_LIMIT", 600),
        webhook_window_seconds=_positive_int(env, "PHR_WEBHOOK_RATE_WINDOW_SECONDS", 60),
        link_code_failures_per_hour=_positive_int(env, "PHR_LINK_CODE_FAILURES_PER_HOUR", 20),
        webhook_address_requests=_positive_int(env, "PHR_WEBHOOK_ADDRESS_LIMIT", 1200),
        upload_max_bytes=_upload_max_bytes(env),
        database_statement_timeout_seconds=_positive_int(env, "PHR_DB_STATEMENT_TIMEOUT", 15),
        dicom_viewer_url=_viewer_template(env),
        imaging_token_ttl_seconds=_positive_int(env, "PHR_IMAGING_TOKEN_TTL", 3600),
        archive_max_entries=_positive_int(env, "PHR_ARCHIVE_MAX_ENTRIES", 20_000),
        archive_max_expanded_bytes=_positive_int(
            env, "PHR_ARCHIVE_MAX_EXPANDED_BYTES", 2 * 1024 * 1024 * 1024
        ),
        archive_max_ratio=_positive_int(env, "PHR_ARCHIVE_MAX_RATIO", 200),
        smtp_url=_smtp_url(env),
        smtp_from=_smtp_from(env),
        smtp_ca_file=_existing_file(env, "SMTP_CA_FILE"),
        email_verification=_on_off(env, "PHR_EMAIL_VERIFICATION", True),
        account_mail_per_email=_positive_int(env, "PHR_ACCOUNT_MAIL_PER_EMAIL", 5),
        account_mail_per_address=_positive_int(
            env, "PHR_ACCOUNT_MAIL_PER_ADDRESS", DEFAULT_ACCOUNT_MAIL_PER_ADDRESS
        ),
        account_mail_window_seconds=_positive_int(env, "PHR_ACCOUNT_MAIL_WINDOW_SECONDS", 15 * 60),
        code_failures_per_email=_positive_int(env, "PHR_CODE_FAILURES_PER_EMAIL", 10),
        worker_enabled=_on_off(env, "PHR_WORKER", True),
        job_retry_base_seconds=_positive_seconds(env, "PHR_JOB_RETRY_BASE_SECONDS", 5.0),
        audit_seal_interval_ms=_positive_int(env, "PHR_AUDIT_SEAL_INTERVAL_MS", 250),
        audit_log_key=SecretText(env["PHR_AUDIT_LOG_KEY"])
        if env.get("PHR_AUDIT_LOG_KEY")
        else None,
        serving_database_url=_serving_url(env),
        worker_modules=tuple(
            name.strip()
            for name in (env.get("PHR_WORKER_MODULES") or "").split(",")
            if name.strip()
        ),
        secrets_key=_secrets_key(env),
        share_requests_per_link=_positive_int(env, "PHR_SHARE_REQUESTS_PER_LINK", 30),
        share_requests_per_address=_positive_int(env, "PHR_SHARE_REQUESTS_PER_ADDRESS", 120),
        share_request_window_seconds=_positive_int(env, "PHR_SHARE_REQUEST_WINDOW_SECONDS", 60),
    )


def _viewer_template(env: Mapping[str, str]) -> str | None:
    raw = env.get("PHR_DICOM_VIEWER_URL") or None
    if raw is None:
        return None
    _url("PHR_DICOM_VIEWER_URL", raw, ("http", "https"))
    if "{studyUid}" not in raw:
        raise SettingsError("PHR_DICOM_VIEWER_URL must contain {studyUid}")
    return raw


def _serving_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("PHR_SERVING_DATABASE_URL") or None
    # It holds the serving role's password.
    return (
        SecretText(_url("PHR_SERVING_DATABASE_URL", raw, ("postgres", "postgresql")))
        if raw
        else None
    )


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in {"on", "true", "1", "yes"}:
        return True
    if raw in {"off", "false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _smtp_url(env: Mapping[str, str]) -> SecretText | None:
    from infra.mail.smtp import SmtpUrlError, parse_smtp_url

    raw = env.get("SMTP_URL") or None
    if raw is None:
        return None
    try:
        parse_smtp_url(raw)
    except SmtpUrlError as exc:
        # The URL may hold a password: name the variable, not the value.
        raise SettingsError(f"SMTP_URL {exc}") from None
    return SecretText(raw)


def _existing_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name) or None
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(f"{name} must name a readable file, got {raw!r}")
    return path


def _smtp_from(env: Mapping[str, str]) -> str:
    from email.utils import parseaddr

    raw = env.get("SMTP_FROM") or "phr <no-reply@phr.invalid>"
    _, address = parseaddr(raw)
    if "@" not in address or any(ch in raw for ch in "\r\n"):
        raise SettingsError(
            f"SMTP_FROM must be an address like phr <no-reply@example.org>, got {raw!r}"
        )
    return raw


def _secrets_key(env: Mapping[str, str]) -> SecretText | None:
    raw = env.get("PHR_SECRETS_KEY") or None
    if raw is None:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("PHR_SECRETS_KEY must be base64") from None
    if len(key) != 32:
        raise SettingsError("PHR_SECRETS_KEY must be the base64 of 32 random bytes")
    return SecretText(raw)


def _upload_max_bytes(env: Mapping[str, str]) -> int:
    value = _positive_int(env, "PHR_UPLOAD_MAX_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
    if value > MAX_UPLOAD_BYTES:
        raise SettingsError(f"PHR_UPLOAD_MAX_BYTES must be at most {MAX_UPLOAD_BYTES}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128)."""
    import ipaddress

    found = []
    for part in (env.get(name) or "").split(","):
        if part.strip():
            try:
                found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise SettingsError(
                    f"{name} must be comma-separated CIDRs like 10.0.0.0/8, got {part.strip()!r}"
                ) from None
    return tuple(found)
