"""What notifies, as pure rules: coalesced results with abnormal counts, refill
and renewal reminders with their dedupe keys, share and sign-in occurrences,
quiet hours in the patient's zone (across midnight and DST), texts in English
and Simplified Chinese, the SSRF guard on push endpoints, retry backoff."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from domain.medications.refill import Medication
from domain.notifications import rules
from domain.notifications.delivery import RetryPolicy
from domain.notifications.devices import OriginPattern, endpoint_allowed
from domain.notifications.model import (
    NewNotification,
    Preferences,
    QuietHours,
    Recipient,
    push_due_at,
    quiet_until,
    visible_at,
)
from domain.notifications.texts import language, push_title, render

HOSPITAL = UUID("00000000-0000-0000-0000-0000000000aa")


def obs(status="final", value=None, low=None, high=None, flag=None, kind="Observation"):
    resource = {"resourceType": kind, "id": str(uuid4()), "status": status}
    if value is not None:
        resource["valueQuantity"] = {"value": value}
    if low is not None or high is not None:
        resource["referenceRange"] = [
            {k: {"value": v} for k, v in (("low", low), ("high", high)) if v is not None}
        ]
    if flag:
        resource["interpretation"] = [{"coding": [{"code": flag}]}]
    return resource


@pytest.mark.parametrize(
    ("resource", "abnormal"),
    [
        (obs(value=5, low=1, high=10), False),
        (obs(value=11, low=1, high=10), True),
        (obs(value=0.5, low=1), True),
        (obs(value=5, flag="N"), False),
        (obs(value=5, flag="HH"), True),
        (obs(flag="POS"), True),
        (obs(value="not a number", high=1), False),
        (obs(), False),
    ],
)
def test_abnormal_by_interpretation_or_reference_range(resource, abnormal):
    assert rules.is_abnormal(resource) is abnormal


def test_results_are_coalesced_per_delivery_and_carry_no_values():
    items = [obs(value=11, high=10), obs(value=3, high=10), obs(kind="DiagnosticReport"),
             obs(status="preliminary"), {"resourceType": "Condition", "id": "c"}]  # fmt: skip
    note = rules.new_results(HOSPITAL, "Ruijin", "d1", items)
    assert note is not None and note.kind == "new-results" and note.abnormal
    assert note.params == {"hospital": "Ruijin", "hospitalId": str(HOSPITAL), "count": 3, "abnormal": 1}  # fmt: skip
    assert note.dedupe_key == f"results:{HOSPITAL}:d1"
    assert rules.new_results(HOSPITAL, "Ruijin", "d2", [obs(status="preliminary")]) is None


def medication(state, run_out, *, fills=1, valid_until=None) -> Medication:
    return Medication(
        record_id=UUID(int=7), hospital_id=HOSPITAL, request_id="rx", name="Metformin",
        code=None, status="active", state=state, fills_used=fills, refills_allowed=2,
        refills_remaining=1, last_filled_on=None, run_out_on=run_out, next_fill_earliest=None,
        valid_until=valid_until, authored_on=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "today", "expected"),
    [
        ("on-track", date(2026, 3, 1), []),
        (
            "refill-due",
            date(2026, 3, 7),
            ["refill:00000000-0000-0000-0000-000000000007:2026-03-10:lead"],
        ),
        ("refill-due", date(2026, 3, 6), []),  # outside the lead days
        (
            "refill-due",
            date(2026, 3, 10),
            ["refill:00000000-0000-0000-0000-000000000007:2026-03-10:day"],
        ),
        (
            "refill-due",
            date(2026, 3, 20),
            ["refill:00000000-0000-0000-0000-000000000007:2026-03-10:day"],
        ),
        (
            "renewal-needed",
            date(2026, 3, 1),
            ["renewal:00000000-0000-0000-0000-000000000007:1:None"],
        ),
        ("stopped", date(2026, 3, 10), []),
        ("expired", date(2026, 3, 10), []),
    ],
)
def test_refill_reminders_and_their_keys(state, today, expected):
    notes = rules.refill_reminders([medication(state, date(2026, 3, 10))], today=today, lead_days=3)
    assert [n.dedupe_key for n in notes] == expected
    assert all(n.params["medication"] == "Metformin" for n in notes)


def test_share_keys_first_opening_once_and_each_recipient_once():
    share = uuid4()
    first = rules.share_accessed(share, "For Dr. Wang", "Dr. Wang")
    again = rules.share_accessed(share, "For Dr. Wang", "  dr. wang")
    other = rules.share_accessed(share, "For Dr. Wang", "Dr. Zhao")
    assert [n.dedupe_key for n in first] == [n.dedupe_key for n in again]
    assert first[0].dedupe_key == other[0].dedupe_key  # opened: once per share
    assert first[1].dedupe_key != other[1].dedupe_key  # each new recipient


def test_sign_in_device_key_follows_the_device():
    a, b = rules.device_fingerprint("Firefox"), rules.device_fingerprint("Safari")
    assert a != b and rules.device_fingerprint(" Firefox ") == a
    assert rules.new_sign_in(a, "Firefox").dedupe_key != rules.new_sign_in(b, "Safari").dedupe_key


SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(start="22:00", end="07:00")


@pytest.mark.parametrize(
    ("local", "zone", "until"),
    [
        (datetime(2026, 3, 1, 23, 0), SHANGHAI, datetime(2026, 3, 2, 7, 0)),
        (datetime(2026, 3, 2, 6, 59), SHANGHAI, datetime(2026, 3, 2, 7, 0)),
        (datetime(2026, 3, 2, 7, 0), SHANGHAI, None),
        (datetime(2026, 3, 2, 12, 0), SHANGHAI, None),
        # New York springs forward at 02:00 on 2026-03-08: 07:00 is still 07:00.
        (datetime(2026, 3, 7, 23, 30), NEW_YORK, datetime(2026, 3, 8, 7, 0)),
    ],
)
def test_quiet_hours_in_the_patients_zone(local, zone, until):
    now = local.replace(tzinfo=zone).astimezone(UTC)
    result = quiet_until(now, NIGHT, zone)
    assert result == (until.replace(tzinfo=zone) if until else None)
    if until is not None and zone is NEW_YORK:
        assert result - now == timedelta(hours=6, minutes=30)  # one hour lost overnight


def test_push_waits_for_quiet_hours_and_the_inbox_does_not():
    recipient = Recipient(uuid4(), "en", "Asia/Shanghai", Preferences(quiet_hours=NIGHT))
    now = datetime(2026, 3, 1, 23, 0, tzinfo=SHANGHAI).astimezone(UTC)
    note = NewNotification(kind="share-opened", dedupe_key="k", params={})
    assert visible_at(now, note, recipient.preferences) == now
    assert push_due_at(now, recipient) == datetime(2026, 3, 2, 7, 0, tzinfo=SHANGHAI)


def test_abnormal_results_wait_when_the_patient_asks():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    abnormal = NewNotification(kind="new-results", dedupe_key="k", params={}, abnormal=True)
    normal = NewNotification(kind="new-results", dedupe_key="k", params={})
    delayed = Preferences(abnormal_results="delayed", abnormal_delay_hours=48)
    assert visible_at(now, abnormal, delayed) == now + timedelta(hours=48)
    assert visible_at(now, normal, delayed) == now
    assert visible_at(now, abnormal, Preferences()) == now


def test_texts_in_english_and_simplified_chinese():
    params = {"hospital": "瑞金医院", "count": 3, "abnormal": 1}
    assert language("zh-CN") == language("zh_Hans") == "zh-Hans"
    assert language("fr") == language(None) == "en"
    title, body = render("new-results", params, "zh-Hans")
    assert title == "新的检查结果" and "瑞金医院" in body and "3" in body and "异常" in body
    title, body = render("new-results", params, "en")
    assert title == "New results" and "flagged" in body
    assert render("refill-due", {"medication": "Metformin", "runOutOn": "2026-03-10", "onTheDay": True}, "en")[0] == "Refill due today"  # fmt: skip
    assert (
        push_title("zh") == "您有一条新通知" and push_title("en") == "You have a new notification"
    )
    assert render("share-recipient", {}, "en")[1].count("\u2014") == 2  # missing params show a dash


ALLOW = [OriginPattern.parse("http://127.0.0.1:*"), OriginPattern.parse("https://*.push.example")]


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", True),
        ("https://updates.push.services.mozilla.com/wpush/v2/x", True),
        ("https://web.push.apple.com/x", True),
        ("https://db5p.notify.windows.com/w/?token=x", True),
        ("http://fcm.googleapis.com/fcm/send/x", False),
        ("https://fcm.googleapis.com:444/x", False),
        ("https://fcm.googleapis.com.evil.example/x", False),
        ("https://evilpush.apple.com.example/x", False),
        ("https://u:p@fcm.googleapis.com/x", False),
        ("http://127.0.0.1:8080/push", True),
        ("http://127.0.0.2:8080/push", False),
        ("https://a.push.example/x", True),
        ("https://push.example.evil/x", False),
        ("http://[::1]:80/x", False),
        ("file:///etc/passwd", False),
        ("https://[bad", False),
    ],
)
def test_push_endpoints_allowed(endpoint, allowed):
    assert endpoint_allowed(endpoint, ALLOW) is allowed


def test_origin_patterns_are_checked():
    with pytest.raises(ValueError):
        OriginPattern.parse("127.0.0.1:*")
    assert OriginPattern.parse("https://push.example") == OriginPattern(
        "https", "push.example", "443"
    )


def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(base_seconds=10, cap_seconds=100)
    rand = random.Random(1)
    for attempt, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        delay = policy.delay(attempt, None, rand)
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(1, 600, rand) == 600
