"""Keyset page cursors on the wire: the position of a page's last item (a small
msgspec Struct), as unpadded URL-safe base64 of its JSON. A cursor that does not
decode to the expected position is the client's error, never ours."""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import msgspec

from domain.errors import FieldProblem, InvalidInput

Position = TypeVar("Position", bound=msgspec.Struct)


def encode_cursor(position: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str, position: type[Position]) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=position)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput(
            "The cursor is not one this service issued.",
            errors=[
                FieldProblem("cursor", "unrecognised cursor; use nextCursor from a previous page")
            ],
        ) from None
