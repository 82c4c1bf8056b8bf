"""Standard Webhooks verification and link codes, as pure functions; signatures
are made by the independent `standardwebhooks` package."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.hospitals.link_codes import (
    LINK_CODE_ALPHABET,
    format_link_code,
    link_code_digest,
    new_link_code,
    normalise_link_code,
)
from domain.hospitals.webhook_signature import (
    WebhookHeadersMissing,
    WebhookSignatureInvalid,
    WebhookTimestampOutOfRange,
    new_webhook_secret,
    verify_webhook,
)
from tests.webhook_signing import signed_headers

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
BODY = b'{"type":"records.push","data":{"patientRef":"MRN-1","bundle":{}}}'


def signed(
    secret: str, body: bytes = BODY, at: datetime = NOW, msg_id: str = "msg_1"
) -> dict[str, str]:
    return signed_headers(secret, body, msg_id=msg_id, at=at, content_type=None)


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def test_secret_format_is_whsec_base64_of_at_least_24_bytes():
    text, key = new_webhook_secret()
    assert text.startswith("whsec_") and len(key) >= 24
    assert key_of(text) == key


def test_a_signature_from_the_reference_library_verifies():
    text, key = new_webhook_secret()
    delivery = verify_webhook([key], signed(text), BODY, NOW)
    assert delivery.id == "msg_1" and delivery.timestamp == NOW


def test_any_live_key_and_any_listed_signature_may_match():
    old, old_key = new_webhook_secret()
    _new, new_key = new_webhook_secret()
    headers = signed(old)
    headers["webhook-signature"] = "v1,AAAA v2,whatever " + headers["webhook-signature"]
    assert verify_webhook([new_key, old_key], headers, BODY, NOW).id == "msg_1"
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook([new_key], headers, BODY, NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),  # body changed by one byte
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,not-base64!!"}, b),
    ],
)
def test_any_change_breaks_the_signature(tamper):
    text, key = new_webhook_secret()
    headers, body = tamper(signed(text), BODY)
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook([key], headers, body, NOW)


def test_no_keys_unknown_hospital_looks_like_a_bad_signature():
    text, _ = new_webhook_secret()
    with pytest.raises(WebhookSignatureInvalid) as unknown:
        verify_webhook([], signed(text), BODY, NOW)
    _, other_key = new_webhook_secret()
    with pytest.raises(WebhookSignatureInvalid) as wrong:
        verify_webhook([other_key], signed(text), BODY, NOW)
    assert (unknown.value.kind, unknown.value.detail) == (wrong.value.kind, wrong.value.detail)


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)]
)
def test_timestamps_beyond_five_minutes_either_way_are_refused(offset):
    text, key = new_webhook_secret()
    with pytest.raises(WebhookTimestampOutOfRange):
        verify_webhook([key], signed(text, at=NOW + offset), BODY, NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_timestamps_at_the_edge_of_the_tolerance_pass(offset):
    text, key = new_webhook_secret()
    assert verify_webhook([key], signed(text, at=NOW + offset), BODY, NOW).id == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing):
    text, key = new_webhook_secret()
    headers = signed(text)
    del headers[missing]
    with pytest.raises(WebhookHeadersMissing):
        verify_webhook([key], headers, BODY, NOW)


def test_link_codes_are_8_crockford_characters_shown_as_two_groups():
    codes = {new_link_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == 8 and set(c) <= set(LINK_CODE_ALPHABET) for c in codes)
    assert not set("ILOU") & set(LINK_CODE_ALPHABET)
    assert format_link_code("ABCD1234") == "ABCD-1234"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ABCD-1234", "ABCD1234"),
        ("abcd 1234", "ABCD1234"),
        (" ab-cd-12-34 ", "ABCD1234"),
        ("oIlL-0000", "0111" + "0000"),
        ("ABCD-123", None),
        ("ABCD-12345", None),
        ("ABCU-1234", None),  # U is not in Crockford's alphabet
        ("ABCD_1234", None),
        ("", None),
    ],
)
def test_typed_codes_are_normalised(typed, expected):
    assert normalise_link_code(typed) == expected


def test_code_digests_are_keyed_and_bound_to_the_hospital():
    hospital, other = uuid4(), uuid4()
    key = b"k" * 32
    assert link_code_digest(key, hospital, "ABCD1234") == link_code_digest(
        key, hospital, "ABCD1234"
    )
    assert link_code_digest(key, hospital, "ABCD1234") != link_code_digest(key, other, "ABCD1234")
    assert link_code_digest(key, hospital, "ABCD1234") != link_code_digest(
        b"j" * 32, hospital, "ABCD1234"
    )
