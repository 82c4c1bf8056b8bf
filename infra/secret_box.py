"""Sealing secrets at rest with a key kept outside the database.

Webhook secrets (and pending link codes) are stored sealed with AES-256-GCM, so a
database dump alone reveals none of them. The key is `PHR_SECRETS_KEY` (base64 of
32 bytes) when set, otherwise `<data dir>/keys/secrets.key`: 32 random bytes made
on first use, readable by the owner only (0600). Every process that talks to the
same database (server, CLI) must see the same key; losing it makes every stored
secret unreadable (rotate each hospital's secret to recover)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"


class SecretKeyError(Exception):
    """The key is missing, malformed, or does not open what was sealed with it."""


class SecretBox:
    def __init__(self, key: bytes):
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secrets key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._key = key

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """version || nonce || ciphertext+tag. `context` (e.g. the row's id) is bound
        as associated data, so a sealed value copied to another row does not open."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SecretKeyError("sealed value has an unknown format")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], context)
        except InvalidTag:
            raise SecretKeyError(
                "a stored secret does not open with this key (PHR_SECRETS_KEY or "
                "keys/secrets.key differs from the one it was sealed with)"
            ) from None

    def derive(self, label: bytes) -> bytes:
        """A separate key for another purpose (e.g. keyed link-code digests)."""
        return hmac.new(self._key, b"phr derive:" + label, hashlib.sha256).digest()


def load_secret_box(data_dir: Path, env_value: str | None) -> SecretBox:
    if env_value:
        try:
            key = base64.b64decode(env_value, validate=True)
        except (binascii.Error, ValueError):
            raise SecretKeyError("PHR_SECRETS_KEY must be base64") from None
        return SecretBox(key)
    return SecretBox(_key_file(data_dir / "keys" / "secrets.key"))


def _key_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole to a temporary file, then linked into place: a process
        # racing us either wins (and we read its key) or loses; nobody reads half a key.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    mode = path.stat().st_mode
    if mode & 0o077:
        # Whoever can read it can open every sealed secret and mint tokens.
        raise SecretKeyError(
            f"{path} can be read or written by group or others (mode {mode & 0o777:o}); "
            f"make it readable by its owner only: chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{path} must hold exactly {KEY_BYTES} bytes")
    return key
