"""The audit log's Ed25519 signing key: 32 random bytes in PHR_DATA_DIR/keys/audit-log.key
(made on first use), or PHR_AUDIT_LOG_KEY (base64). Kept apart from the access-token
keys (which live in the database and rotate): a database dump reveals nothing
that could re-sign a rewritten history."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infra.secret_box import _key_file


class LogKeyError(Exception):
    pass


class Ed25519NoteSigner:
    def __init__(self, name: str, seed: bytes):
        if len(seed) != 32:
            raise LogKeyError("the audit log key must be 32 bytes")
        self._name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def load_log_signer(name: str, data_dir: Path, env_value: str | None) -> Ed25519NoteSigner:
    if env_value:
        try:
            seed = base64.b64decode(env_value, validate=True)
        except (binascii.Error, ValueError):
            raise LogKeyError("PHR_AUDIT_LOG_KEY must be base64") from None
        return Ed25519NoteSigner(name, seed)
    return Ed25519NoteSigner(name, _key_file(data_dir / "keys" / "audit-log.key"))


def log_origin(public_url: str) -> str:
    """The log's name: the service's host and path, as C2SP asks (a schema-less URL)."""
    without_scheme = public_url.split("://", 1)[-1].rstrip("/")
    return f"{without_scheme}/audit-log"
