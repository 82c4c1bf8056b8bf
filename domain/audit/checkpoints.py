"""Signed checkpoints of the audit log, in the C2SP `tlog-checkpoint` format inside a
C2SP `signed-note` (the format Go's sumdb, Sigstore and the transparency-dev
witnesses read):

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    \u2014 <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\\n

The signature covers the body (the first three lines, newline included). The key
id is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key), and
the published verifier key is `<name>+<hex key id>+<base64(0x01 || public key)>`."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable

import msgspec

from domain.audit.ports import NoteSigner

ED25519_ALGORITHM = b"\x01"
_SIGNATURE_PREFIX = "\u2014 "


class CheckpointError(Exception):
    """A checkpoint that is malformed, or not signed by the key expected."""


class Checkpoint(msgspec.Struct, frozen=True):
    origin: str
    size: int
    root_hash: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALGORITHM + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    encoded = base64.b64encode(ED25519_ALGORITHM + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, bytes, bytes]:
    """(name, key id, public key) from a verifier key string."""
    try:
        name, hex_id, encoded = text.split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        wanted_id = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error):
        raise CheckpointError("malformed verifier key") from None
    if raw[:1] != ED25519_ALGORITHM or len(raw) != 33 or key_id(name, raw[1:]) != wanted_id:
        raise CheckpointError("verifier key is not an Ed25519 key matching its id")
    return name, wanted_id, raw[1:]


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    body = checkpoint.body()
    signature = signer.sign(body.encode())
    blob = base64.b64encode(key_id(signer.name, signer.public_key) + signature).decode()
    return f"{body}\n{_SIGNATURE_PREFIX}{signer.name} {blob}\n"


def parse_checkpoint_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    # origin, size, root, then extension lines, and the final newline's empty string
    if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
        raise CheckpointError("malformed checkpoint body")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("malformed tree size")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("malformed root hash") from None
    if len(root) != 32:
        raise CheckpointError("root hash must be 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root_hash=root)


Ed25519Verify = Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)


def open_signed_checkpoint(note: str, verifier: str, verify: Ed25519Verify) -> Checkpoint:
    """The checkpoint in `note` if it carries a valid signature by `verifier`'s key
    and names that key's origin; raises CheckpointError otherwise."""
    name, wanted_id, public_key = parse_verifier_key(verifier)
    body, separator, signatures = note.partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("malformed signed note")
    body += "\n"
    signed = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(_SIGNATURE_PREFIX):
            raise CheckpointError("malformed signature line")
        signer_name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("malformed signature") from None
        if signer_name == name and blob[:4] == wanted_id and len(blob) == 68:
            if not verify(public_key, body.encode(), blob[4:]):
                raise CheckpointError("checkpoint signature does not verify")
            signed = True
    if not signed:
        raise CheckpointError("checkpoint is not signed by the log's key")
    checkpoint = parse_checkpoint_body(body)
    if checkpoint.origin != name:
        raise CheckpointError("checkpoint origin is not the log's")
    return checkpoint
