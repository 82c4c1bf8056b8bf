"""Object storage as a port: files the patient uploads (PDFs, photos, DICOM) go
straight from the client to storage through short-lived presigned URLs, so the
API never carries their bytes. Keys are chosen by the caller, e.g.
`patients/<patient uuid>/uploads/<uuid>`, and checked here before any store sees
them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec

from domain.errors import InvalidBlobKey, InvalidInput, PresignExpiryTooLong

# Presigned URLs are bearer credentials: keep them short. An upload URL has to
# survive a slow mobile connection; a download URL is opened at once.
MAX_PUT_EXPIRY = timedelta(minutes=15)
MAX_GET_EXPIRY = timedelta(minutes=5)

# The ceiling of any upload limit: what the blob stores accept at all, and the
# most PHR_UPLOAD_MAX_BYTES may be raised to (a DICOM CD series can be big).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

MAX_KEY_LENGTH = 512
# One path segment: starts with a letter or digit (so never "." or "..", never a
# hidden name), then letters, digits, ".", "_", "-".
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A MIME type as the client will send it in Content-Type: type/subtype with
# optional parameters, printable ASCII only (no CR/LF: it becomes a header).
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,127}"
    r"(?:; ?[A-Za-z0-9!#$&^_.+-]+=(?:[A-Za-z0-9!#$&^_.+-]+|\"[ -~]*\"))*"
)
_MAX_FILENAME_LENGTH = 255


class PresignedRequest(msgspec.Struct, frozen=True):
    """A request the client makes itself, straight to storage."""

    method: Literal["PUT", "GET"]
    url: str
    headers: dict[str, str]  # headers the client must send (e.g. Content-Type)
    expires_at: datetime


class BlobInfo(msgspec.Struct, frozen=True):
    key: str
    size: int
    content_type: str | None


def patient_files_prefix(patient_id: UUID) -> str:
    """Every file of a patient lives under this prefix, so erasing an account
    removes them all with one `delete_prefix`."""
    return f"patients/{patient_id}/"


def validate_key(key: str) -> str:
    """The key unchanged, or InvalidBlobKey: no "..", no leading or trailing "/",
    no empty segment, only letters, digits and `._-` in each segment."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKey(f"A storage key has 1 to {MAX_KEY_LENGTH} characters.")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKey(
                "A storage key is made of '/'-separated segments of letters, digits, "
                "'.', '_' and '-', each starting with a letter or digit."
            )
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix for delete_prefix: a valid key followed by "/". Never empty, so
    no caller can wipe the whole store by passing ""."""
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise InvalidBlobKey("A storage prefix ends with '/'.")
    validate_key(prefix[:-1])
    return prefix


def validate_content_type(content_type: str) -> str:
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidInput(f"{content_type!r} is not a media type the store accepts.")
    return content_type


def validate_filename(filename: str) -> str:
    """A download name travels in Content-Disposition: no control characters, no
    path separators, bounded length."""
    if (
        not filename
        or len(filename) > _MAX_FILENAME_LENGTH
        or any(ord(ch) < 0x20 or ch in '/\\"\x7f' for ch in filename)
    ):
        raise InvalidInput("A download filename has 1 to 255 printable characters, no '/'.")
    return filename


def validate_upload_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_UPLOAD_BYTES:
        raise InvalidInput(f"An upload has 0 to {MAX_UPLOAD_BYTES} bytes.")
    return size


def checked_expiry(method: Literal["PUT", "GET"], expires_in: timedelta) -> int:
    """The lifetime in whole seconds (at least 1), or PresignExpiryTooLong."""
    cap = MAX_PUT_EXPIRY if method == "PUT" else MAX_GET_EXPIRY
    if expires_in > cap:
        raise PresignExpiryTooLong(
            f"A presigned {method} URL lives at most {int(cap.total_seconds())} seconds."
        )
    seconds = int(expires_in.total_seconds())
    if seconds < 1:
        raise PresignExpiryTooLong("A presigned URL lives at least 1 second.")
    return seconds
