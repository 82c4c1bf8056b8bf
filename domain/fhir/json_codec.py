"""FHIR JSON with decimals kept exactly as written.

FHIR decimals carry their precision: 1.50 mg is not 1.5 mg, and a record must come
back as it was received. Numbers with a fraction or an exponent are read as
`Decimal` (never float) and written back as JSON numbers, digit for digit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")
_canonical = msgspec.json.Encoder(decimal_format="number", order="sorted")


def decode(data: bytes | str) -> Any:
    return _decoder.decode(data)


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def encode_canonical(value: Any) -> bytes:
    """Sorted keys: the same content encodes the same way whatever its key order."""
    return _canonical.encode(value)
