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
    # The background-job worker runs inside `phr serve` unless PHR_WORKER=off
    # (deployments that run `phr worker` separately).
    worker_enabled: bool = True
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
        worker_enabled=_on_off(env, "PHR_WORKER", True),
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


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in {"on", "true", "1", "yes"}:
        return True
    if raw in {"off", "false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


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
