"""The hospital webhook over HTTP: signatures, timestamps, rotation, delivery ids,
linking codes and their limits, pushes (parked, applied, refused), sizes, rates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.cli.hospitals import rotate_hospital_secret
from domain.clock import FixedClock
from tests.conftest import register_patient, settings_for
from tests.hospital_support import Hospital, linked, new_hospital, new_link
from tests.records_support import bundle, observation

PROBLEM = "application/problem+json"


@pytest.fixture
async def make_client(database_dsn, data_dir):
    """An app with its own settings and clock, for limits and time travel."""
    opened: list[AsyncTestClient] = []

    async def make(env: dict[str, str] | None = None, clock=None):
        settings = settings_for(database_dsn, data_dir, env)
        client = AsyncTestClient(
            app=create_app(settings, clock=clock), base_url="http://testserver.local"
        )
        await client.__aenter__()
        opened.append(client)
        return client, settings

    yield make
    for client in opened:
        await client.__aexit__(None, None, None)


async def count_records(conn, patient) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM record WHERE patient_id = $1::uuid", patient.id
    )


async def audit_of(client, patient) -> list[tuple[str, str, str | None]]:
    items = (await client.get("/v1/audit?limit=200", headers=patient.headers)).json()["items"]
    return [(e["action"], e["outcome"], e.get("actorType")) for e in items]


def problem(response) -> dict:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return response.json()


# --- authentication --------------------------------------------------------


async def test_bad_signature_is_401_and_unknown_hospital_404(client, settings):
    hospital = await new_hospital(client, settings)
    body = json.dumps({"type": "records.push", "data": {"patientRef": "X", "bundle": {}}}).encode()
    forged = await hospital.send_raw(body, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    stranger = Hospital(client, str(uuid4()), hospital.secret)
    unknown = await stranger.send_raw(body)
    assert forged.status_code == 401
    # Known before the body is read (tests/security/test_webhook_body.py).
    assert unknown.status_code == 404 and problem(unknown)["type"].endswith("hospital-not-found")

    headers = hospital.sign(body)
    tampered = await client.post(hospital.url, content=body + b" ", headers=headers)
    assert tampered.status_code == 401 and problem(tampered) == problem(forged)
    missing = await client.post(
        hospital.url, content=body, headers={"content-type": "application/json"}
    )
    assert missing.status_code == 401


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
async def test_stale_or_future_timestamps_are_refused(client, settings, skew):
    hospital = await new_hospital(client, settings)
    response = await hospital.link("ABCD-1234", "MRN", at=datetime.now(UTC) + skew)
    assert response.status_code == 401
    assert problem(response)["type"].endswith("webhook-timestamp-out-of-range")


async def test_a_rotated_secret_works_during_the_grace_period_only(make_client):
    clock = FixedClock(datetime.now(UTC))
    client, settings = await make_client(clock=clock)
    hospital = await new_hospital(client, settings, clock=clock)
    old_secret = hospital.secret
    rotated = await rotate_hospital_secret(
        settings.database_url, settings, hospital.id, timedelta(hours=1), clock=clock
    )
    new_secret = rotated["webhookSecret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret

    assert (
        await hospital.push("MRN-R", bundle(observation("a")), secret=old_secret)
    ).status_code == 202
    assert (
        await hospital.push("MRN-R", bundle(observation("b")), secret=new_secret)
    ).status_code == 202

    clock.advance(hours=1, seconds=1)
    refused = await hospital.push("MRN-R", bundle(observation("c")), secret=old_secret)
    assert refused.status_code == 401 and problem(refused)["type"].endswith(
        "webhook-signature-invalid"
    )
    assert (
        await hospital.push("MRN-R", bundle(observation("d")), secret=new_secret)
    ).status_code == 202


async def test_rotating_an_unknown_hospital_fails_clearly(settings):
    from domain.hospitals.hospital import UnknownHospital

    with pytest.raises(UnknownHospital):
        await rotate_hospital_secret(settings.database_url, settings, uuid4(), timedelta(hours=1))


# --- delivery ids ------------------------------------------------------------


async def test_a_redelivery_gets_the_first_reply_and_stores_nothing_twice(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, "MRN-1")
    body = json.dumps(
        {
            "type": "records.push",
            "data": {"patientRef": "MRN-1", "bundle": bundle(observation("a"), observation("b"))},
        }
    ).encode()
    first = await hospital.send_raw(body, msg_id="msg_fixed")
    assert first.status_code == 200 and first.json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "stale": 0,
    }
    ingests = [a for a in await audit_of(client, patient) if a[0] == "record.ingest"]

    again = await hospital.send_raw(body, msg_id="msg_fixed")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert await count_records(superuser_conn, patient) == 2
    assert [a for a in await audit_of(client, patient) if a[0] == "record.ingest"] == ingests

    other_body = body.replace(b'"a"', b'"z"')
    conflict = await hospital.send_raw(other_body, msg_id="msg_fixed")
    assert conflict.status_code == 409 and problem(conflict)["type"].endswith("webhook-id-reused")
    assert await count_records(superuser_conn, patient) == 2


async def test_delivery_ids_are_per_hospital(client, settings, patient):
    first = await new_hospital(client, settings, name="First")
    second = await new_hospital(client, settings, name="Second")
    body = json.dumps(
        {"type": "records.push", "data": {"patientRef": "P", "bundle": bundle(observation("a"))}}
    )
    assert (await first.send_raw(body.encode(), msg_id="same")).status_code == 202
    assert (
        await second.send_raw(body.replace('"a"', '"b"').encode(), msg_id="same")
    ).status_code == 202


# --- linking -----------------------------------------------------------------


async def test_wrong_reused_and_other_hospitals_codes_are_422(
    client, settings, patient, other_patient
):
    hospital = await new_hospital(client, settings)
    elsewhere = await new_hospital(client, settings, name="Elsewhere")
    link = await new_link(client, patient, hospital)

    wrong = await hospital.link("0000-0000", "MRN-1")
    assert wrong.status_code == 422 and problem(wrong)["type"].endswith("link-code-invalid")
    garbage = await hospital.link("not a code", "MRN-1")
    assert garbage.status_code == 422
    foreign = await elsewhere.link(link["code"], "MRN-1")
    assert foreign.status_code == 422 and problem(foreign)["type"].endswith("link-code-invalid")

    # Typed sloppily (lower case, no hyphen, O for 0) it still works.
    sloppy = link["code"].replace("-", "").lower().replace("0", "o")
    ok = await hospital.link(sloppy, "MRN-1")
    assert ok.status_code == 200 and ok.json() == {"status": "linked", "parkedApplied": 0}
    reused = await hospital.link(link["code"], "MRN-2")
    assert reused.status_code == 422 and problem(reused)["type"].endswith("link-code-used")

    actions = await audit_of(client, patient)
    assert ("link.completed", "success", "hospital") in actions
    assert ("link.completed", "denied", "hospital") in actions

    # An MRN already linked to another patient is not re-pointed.
    theirs = await new_link(client, other_patient, hospital)
    taken = await hospital.link(theirs["code"], "MRN-1")
    assert taken.status_code == 409 and problem(taken)["type"].endswith("patient-ref-taken")


async def test_an_expired_code_is_422(make_client):
    clock = FixedClock(datetime.now(UTC))
    client, settings = await make_client(clock=clock)
    hospital = await new_hospital(client, settings, clock=clock)
    someone = await register_patient(client)
    link = await new_link(client, someone, hospital)
    clock.advance(hours=24, seconds=1)
    response = await hospital.link(link["code"], "MRN-E")
    assert response.status_code == 422 and problem(response)["type"].endswith("link-code-expired")


async def test_wrong_codes_are_limited_per_hospital(make_client):
    client, settings = await make_client({"PHR_LINK_CODE_FAILURES_PER_HOUR": "3"})
    hospital = await new_hospital(client, settings)
    other = await new_hospital(client, settings, name="Other")
    someone = await register_patient(client)
    link = await new_link(client, someone, hospital)
    for _ in range(3):
        assert (await hospital.link("ZZZZ-ZZZZ", "MRN")).status_code == 422
    limited = await hospital.link(link["code"], "MRN")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert problem(limited)["status"] == 429
    # Even the right code waits; the link stays pending; other hospitals are unaffected.
    assert (await client.get(f"/v1/links/{link['id']}", headers=someone.headers)).json()[
        "status"
    ] == "pending"
    assert (await other.link("ZZZZ-ZZZZ", "MRN")).status_code == 422


# --- pushes ------------------------------------------------------------------


async def test_a_push_parked_before_linking_is_applied_when_the_link_completes(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    early = await hospital.push("MRN-P", bundle(observation("early-1"), observation("early-2")))
    assert early.status_code == 202 and early.json() == {"status": "parked"}
    later = await hospital.push("MRN-P", bundle(observation("early-1", value=99)))
    assert later.status_code == 202
    assert await count_records(superuser_conn, patient) == 0

    link = await new_link(client, patient, hospital)
    done = await hospital.link(link["code"], "MRN-P")
    assert done.status_code == 200 and done.json() == {"status": "linked", "parkedApplied": 2}
    items = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert sorted(i["value"] for i in items) == ["72", "99"]
    assert all(i["source"]["hospitalId"] == hospital.id for i in items)
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM webhook_parked_push WHERE hospital_id = $1::uuid", hospital.id
        )
        == 0
    )
    ingests = [a for a in await audit_of(client, patient) if a[:2] == ("record.ingest", "success")]
    assert len(ingests) == 2 and all(a[2] == "hospital" for a in ingests)


async def test_an_invalid_bundle_is_422_naming_the_entry_and_stores_nothing(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, "MRN-V")
    broken = observation("bad")
    broken["status"] = "not-a-status"
    response = await hospital.push("MRN-V", bundle(observation("good"), broken))
    body = problem(response)
    assert (
        response.status_code == 422 and "entry 1" in body["detail"] and "status" in body["detail"]
    )
    assert await count_records(superuser_conn, patient) == 0
    # Not parked either, for an unlinked MRN.
    assert (await hospital.push("MRN-unlinked", bundle(broken))).status_code == 422
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM webhook_parked_push WHERE hospital_id = $1::uuid", hospital.id
        )
        == 0
    )


async def test_a_push_for_a_revoked_link_is_403_and_stores_nothing(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    link = await linked(client, patient, hospital, "MRN-X")
    assert (await hospital.push("MRN-X", bundle(observation("kept")))).status_code == 200
    assert (
        await client.delete(f"/v1/links/{link['id']}", headers=patient.headers)
    ).status_code == 204

    refused = await hospital.push("MRN-X", bundle(observation("refused")))
    assert refused.status_code == 403 and problem(refused)["type"].endswith("link-revoked")
    assert await count_records(superuser_conn, patient) == 1, "records already received stay"
    assert ("record.ingest", "denied", "hospital") in await audit_of(client, patient)


async def test_malformed_and_misshapen_bodies_are_400(client, settings):
    hospital = await new_hospital(client, settings)
    malformed = await hospital.send_raw(b'{"type": "records.push", ')
    assert malformed.status_code == 400 and problem(malformed)["type"].endswith("malformed-body")
    unknown_type = await hospital.send("patient.deleted", {"patientRef": "X"})
    assert unknown_type.status_code == 400
    missing = await hospital.send("records.push", {"bundle": {}})
    assert missing.status_code == 400 and problem(missing)["errors"]


async def test_bodies_over_20_mib_are_413(client, settings):
    hospital = await new_hospital(client, settings)
    body = (
        b'{"type":"records.push","data":{"patientRef":"X","bundle":{"pad":"'
        + b"x" * (20 * 1024 * 1024)
        + b'"}}}'
    )
    response = await client.post(hospital.url, content=body, headers=hospital.sign(body))
    assert response.status_code == 413 and problem(response)["status"] == 413


async def test_deliveries_beyond_the_rate_limit_are_429_with_retry_after(make_client):
    client, settings = await make_client(
        {"PHR_WEBHOOK_RATE_LIMIT": "3", "PHR_WEBHOOK_RATE_WINDOW_SECONDS": "3600"}
    )
    hospital = await new_hospital(client, settings)
    other = await new_hospital(client, settings, name="Other")
    statuses = [
        (await hospital.push("MRN", bundle(observation(f"o{i}")))).status_code for i in range(3)
    ]
    assert statuses == [202, 202, 202]
    limited = await hospital.push("MRN", bundle(observation("o4")))
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 3601
    assert (await other.push("MRN", bundle(observation("o1")))).status_code == 202


async def test_an_unused_codes_consent_lapses_with_it_and_a_used_ones_stays(make_client):
    clock = FixedClock(datetime.now(UTC))
    client, settings = await make_client(clock=clock)
    hospital = await new_hospital(client, settings, clock=clock)
    someone = await register_patient(client)
    await new_link(client, someone, hospital)
    used = await new_link(client, someone, hospital)
    assert (await hospital.link(used["code"], "MRN-K")).status_code == 200

    clock.advance(hours=24, seconds=1)
    login = await client.post(
        "/v1/auth/login", json={"email": someone.email, "password": someone.password}
    )
    headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    consents = (await client.get("/v1/consents", headers=headers)).json()
    assert sorted(c["status"] for c in consents) == ["active", "expired"]
    pushed = await hospital.push(
        "MRN-K",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Observation",
                        "id": "late-1",
                        "status": "final",
                        "code": {"text": "Pulse"},
                    }
                }
            ],
        },
    )
    assert pushed.status_code == 200, pushed.text
