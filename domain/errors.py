"""The domain's error hierarchy. Each error is named for the fact it reports; the
api layer maps every one of them, in one place, to an RFC 9457 problem."""

from __future__ import annotations

import re
from typing import ClassVar

import msgspec


class FieldProblem(msgspec.Struct, frozen=True):
    """One bad input: where it is (a JSON-pointer-like path) and what is wrong."""

    field: str
    message: str


_MSGSPEC_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def split_validation_error(text: str) -> tuple[str, str]:
    """(message, path) of a msgspec ValidationError's text, e.g. ("Expected `str`,
    got `int`", "data.code") for "Expected `str`, got `int` - at `$.data.code`".
    The path is "" when the error is about the whole value."""
    match = _MSGSPEC_ERROR.match(text)
    assert match is not None  # the pattern matches any string
    return match["message"], (match["path"] or "").lstrip(".")


class DomainError(Exception):
    """Base of every error the domain raises on purpose. `kind` is the stable slug
    used in the problem `type` URI; `title` a short human summary."""

    kind: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "Request could not be completed"

    def __init__(self, detail: str | None = None, *, errors: list[FieldProblem] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []


class NotAcceptable(DomainError):
    """The client accepts none of the forms the resource can be sent in."""

    kind = "not-acceptable"
    title = "None of the accepted media types can be served"


class InvalidInput(DomainError):
    kind = "invalid-input"
    title = "The request has invalid fields"


class NotFound(DomainError):
    """Also what another patient's resource looks like: it does not exist for you."""

    kind = "not-found"
    title = "Not found"


class Conflict(DomainError):
    kind = "conflict"
    title = "Conflicts with the current state"


class AuthenticationFailed(DomainError):
    kind = "authentication-failed"
    title = "Authentication failed"


class Forbidden(DomainError):
    kind = "forbidden"
    title = "Not allowed"


class RateLimited(DomainError):
    kind = "rate-limited"
    title = "Too many requests"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after_seconds: int,
        limit: int,
        window_seconds: int,
    ):
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)
        self.limit = limit
        self.window_seconds = window_seconds


class InvalidBlobKey(InvalidInput):
    """An object-storage key outside the allowed shape (traversal, leading "/",
    characters outside the safe set): refused before it reaches any store."""

    kind = "invalid-blob-key"
    title = "The storage key is not allowed"


class PresignExpiryTooLong(InvalidInput):
    """A presigned URL was asked to live longer than the cap for its method."""

    kind = "presign-expiry-too-long"
    title = "The requested URL lifetime is too long"


class BlobUrlRefused(Forbidden):
    """A signed blob URL whose signature does not verify, has expired, or is used
    with a request that differs from what was signed (method, content type)."""

    kind = "blob-url-refused"
    title = "The signed URL is not valid for this request"


class BlobSizeMismatch(InvalidInput):
    """An upload whose body is shorter than the size that was signed."""

    kind = "blob-size-mismatch"
    title = "The upload does not have the announced size"


class Overloaded(DomainError):
    """The service refuses work it cannot start soon (e.g. the password-hashing
    queue is full) instead of piling it up; the client should retry later."""

    kind = "overloaded"
    title = "The service is busy"

    def __init__(self, detail: str | None = None, *, retry_after_seconds: int = 1):
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class WeakPassword(InvalidInput):
    kind = "weak-password"
    title = "The password is not acceptable"


class EmailAlreadyRegistered(Conflict):
    kind = "email-already-registered"
    title = "An account with this email already exists"


class InvalidCredentials(AuthenticationFailed):
    """Unknown email or wrong password: deliberately one error, one body."""

    kind = "invalid-credentials"
    title = "The email or password is not correct"


class RefreshTokenRefused(AuthenticationFailed):
    """Unknown, spent, expired or revoked: one error, since the client's only
    correct reaction is the same (sign in again)."""

    kind = "invalid-refresh-token"
    title = "The refresh token is not valid"


# --- patient uploads (domain/uploads/) ------------------------------------------------


class UnsupportedUploadType(InvalidInput):
    kind = "unsupported-upload-type"
    title = "Files of this type cannot be uploaded"


class UploadTooLarge(InvalidInput):
    """Announced size outside 1 byte .. the configured limit."""

    kind = "upload-size-not-allowed"
    title = "The file size is not allowed"


class UploadNotReceived(Conflict):
    kind = "upload-not-received"
    title = "The file has not been uploaded yet"


class UploadSizeMismatch(InvalidInput):
    kind = "upload-size-mismatch"
    title = "The uploaded file does not have the announced size"


class UploadContentMismatch(InvalidInput):
    """The first bytes are not those of the declared type; the file is deleted."""

    kind = "upload-content-mismatch"
    title = "The file's content does not match its declared type"


class UnreadableDicom(InvalidInput):
    kind = "unreadable-dicom"
    title = "The file is not a readable DICOM file"


class UploadExpired(Conflict):
    kind = "upload-expired"
    title = "The upload has expired"
