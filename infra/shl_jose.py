"""JWE for SMART Health Links through joserfc: compact serialization, `alg: dir`,
`enc: A256GCM`, `cty: application/fhir+json`, a fresh IV on every call (the
library draws it). Encryption runs in a worker thread."""

from __future__ import annotations

import asyncio

from joserfc import jwe
from joserfc.jwk import OctKey

PROTECTED_HEADER = {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json"}


class _LargeContentRegistry(jwe.JWERegistry):
    # joserfc refuses ciphertexts over 64 KiB by default (a guard for servers
    # that decrypt untrusted input); a shared record with PDFs is far larger.
    max_ciphertext_length = 64 * 1024 * 1024


_REGISTRY = _LargeContentRegistry(algorithms=["dir", "A256GCM"])


def encrypt_compact(plaintext: bytes, key: bytes) -> str:
    return jwe.encrypt_compact(
        dict(PROTECTED_HEADER), plaintext, OctKey.import_key(key), registry=_REGISTRY
    )


def decrypt_compact(value: str, key: bytes) -> bytes:
    """For reading links made elsewhere (no `cty`, a `kid`): tolerated."""
    result = jwe.decrypt_compact(value, OctKey.import_key(key), registry=_REGISTRY)
    assert result.plaintext is not None
    return result.plaintext


class JoseContentCipher:
    async def encrypt(self, plaintext: bytes, key: bytes) -> str:
        return await asyncio.to_thread(encrypt_compact, plaintext, key)
