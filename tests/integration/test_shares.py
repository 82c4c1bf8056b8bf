"""Shares through the HTTP API against a real PostgreSQL: what the patient sees
and controls, and every way a doctor's request is refused."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from litestar.testing import AsyncTestClient

from domain.clock import FixedClock
from tests.conftest import TEST_PUBLIC_URL, Patient, register_patient, settings_for
from tests.mail_support import EmlFolder
from tests.records_support import bundle, grant_hospital, observation, push
from tests.share_support import (
    SECURITY_HIV,
    b64url_decode,
    bundle_resources,
    condition,
    decrypt,
    in_days,
    parse_shlink,
)

PUBLIC = TEST_PUBLIC_URL
PROBLEM = "application/problem+json"


@asynccontextmanager
async def app_client(
    database_dsn: str,
    data_dir: Path,
    *,
    clock: FixedClock | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[AsyncTestClient]:
    from api.app import create_app

    app = create_app(settings_for(database_dsn, data_dir, extra_env), clock=clock)
    async with AsyncTestClient(app=app, base_url=PUBLIC) as client:
        yield client


def stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def create_share(client, patient: Patient, **body) -> dict:
    body.setdefault("expiresAt", in_days(1))
    response = await client.post("/v1/shares", json=body, headers=patient.headers)
    assert response.status_code == 201, response.text
    return response.json()


def manifest_path(share: dict) -> str:
    return parse_shlink(share["shlink"])["url"].removeprefix(PUBLIC)


async def open_share(client, share: dict, **body) -> httpx.Response:
    body.setdefault("recipient", "Dr. Zhang")
    return await client.post(manifest_path(share), json=body)


async def shared_resources(client, share: dict, **body) -> list[dict]:
    response = await open_share(client, share, **body)
    assert response.status_code == 200, response.text
    key = parse_shlink(share["shlink"])["key"]
    _, plaintext = decrypt(response.json()["files"][0]["embedded"], key)
    return bundle_resources(plaintext)


def clinical(resources: list[dict]) -> dict[str, str]:
    """Shared records by display text -> resourceType (Patient/Organization aside)."""
    out = {}
    for r in resources:
        if r["resourceType"] in ("Patient", "Organization"):
            continue
        text = r.get("code", {}).get("text") or r["code"]["coding"][0]["display"]
        out[text] = r["resourceType"]
    return out


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


async def seed(services, patient: Patient) -> UUID:
    hospital = await grant_hospital(services, UUID(patient.id))
    await push(
        services,
        UUID(patient.id),
        hospital,
        bundle(
            observation("hr-recent", display="Heart rate recent", when=stamp(20)),
            observation("hr-old", display="Heart rate old", when=stamp(800)),
            observation(
                "bp",
                display="Blood pressure",
                when=stamp(5),
                category=[{"coding": [{"code": "laboratory"}]}],
            ),
            condition("asthma", "Asthma"),
            condition("hiv", "HIV infection", meta={"security": [SECURITY_HIV]}),
            condition(
                "psy",
                "Depression",
                meta={
                    "security": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                            "code": "R",
                        }
                    ]
                },
            ),
        ),
    )
    return hospital


async def test_a_share_records_its_consent_and_audit(client, patient, services):
    await seed(services, patient)
    share = await create_share(client, patient, label="For Dr. Zhang")
    assert share["flag"] == "" and share["label"] == "For Dr. Zhang"
    assert share["viewerUrl"] == f"{PUBLIC}/viewer#{share['shlink']}"
    assert share["qrUrl"] == f"/v1/shares/{share['id']}/qr"
    payload = parse_shlink(share["shlink"])
    assert list(payload) == ["url", "key", "exp", "label", "v"]
    assert len(b64url_decode(payload["key"])) == 32
    token = payload["url"].rsplit("/", 1)[1]
    assert len(b64url_decode(token)) == 32 and share["id"] not in payload["url"]

    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    items = consents["items"] if isinstance(consents, dict) else consents
    ours = [c for c in items if c["kind"] == "share"]
    assert len(ours) == 1 and ours[0]["id"] == share["share"]["consentId"]
    audit = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    created = [e for e in audit if e["action"] == "share.created"]
    assert created and created[0]["resourceIds"] == [share["id"]]

    listed = (await client.get("/v1/shares", headers=patient.headers)).json()
    assert [s["id"] for s in listed["items"]] == [share["id"]]
    assert listed["items"][0]["status"] == "active"


async def test_bad_share_requests_are_refused(client, patient):
    for body, status in [
        ({"expiresAt": in_days(-1)}, 422),
        ({"expiresAt": in_days(400)}, 422),
        ({"expiresAt": in_days(1), "label": "bad\x07label"}, 422),
        ({"expiresAt": in_days(1), "passcode": "12"}, 400),
        ({"expiresAt": in_days(1), "surprise": 1}, 400),
        ({"expiresAt": in_days(1), "scope": {"resourceTypes": ["not a type"]}}, 400),
        ({}, 400),
    ]:
        response = await client.post("/v1/shares", json=body, headers=patient.headers)
        assert_problem(response, status)
    assert (await client.get("/v1/shares", headers=patient.headers)).json()["items"] == []


async def test_scope_selects_exactly_and_sensitive_records_need_opting_in(
    client, patient, services
):
    hospital = await seed(services, patient)
    summary = clinical(await shared_resources(client, await create_share(client, patient)))
    assert summary == {
        "Heart rate recent": "Observation",
        "Blood pressure": "Observation",
        "Asthma": "Condition",
    }
    conditions = await create_share(client, patient, scope={"resourceTypes": ["Condition"]})
    assert clinical(await shared_resources(client, conditions)) == {"Asthma": "Condition"}
    sensitive = await create_share(
        client, patient, scope={"resourceTypes": ["Condition"], "includeSensitive": True}
    )
    assert set(clinical(await shared_resources(client, sensitive))) == {
        "Asthma",
        "HIV infection",
        "Depression",
    }
    labs = await create_share(client, patient, scope={"categories": ["laboratory"]})
    assert clinical(await shared_resources(client, labs)) == {"Blood pressure": "Observation"}
    old = await create_share(
        client, patient, scope={"resourceTypes": ["Observation"], "until": stamp(400)}
    )
    assert clinical(await shared_resources(client, old)) == {"Heart rate old": "Observation"}
    records = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    asthma = next(r["id"] for r in records if r["display"] == "Asthma")
    one = await create_share(client, patient, scope={"recordIds": [asthma]})
    resources = await shared_resources(client, one)
    assert [r["id"] for r in resources if r["resourceType"] == "Condition"] == [asthma]
    # A record id in scope does not lift the sensitivity rule.
    hiv = next(r["id"] for r in records if r["display"] == "HIV infection")
    assert (
        clinical(
            await shared_resources(
                client, await create_share(client, patient, scope={"recordIds": [hiv]})
            )
        )
        == {}
    )
    elsewhere = await create_share(client, patient, scope={"hospitalIds": [str(UUID(int=7))]})
    assert clinical(await shared_resources(client, elsewhere)) == {}
    here = await create_share(
        client, patient, scope={"hospitalIds": [str(hospital)], "resourceTypes": ["Condition"]}
    )
    assert clinical(await shared_resources(client, here)) == {"Asthma": "Condition"}


async def test_wrong_passcodes_count_down_then_the_link_is_disabled(client, patient):
    share = await create_share(client, patient, passcode="right-one")
    assert share["flag"] == "P"
    missing = assert_problem(await open_share(client, share), 401)
    assert missing["remainingAttempts"] == 5
    # A right passcode costs nothing.
    assert (await open_share(client, share, passcode="right-one")).status_code == 200
    remaining = []
    for _ in range(5):
        body = assert_problem(await open_share(client, share, passcode="wrong"), 401)
        remaining.append(body["remainingAttempts"])
    assert remaining == [4, 3, 2, 1, 0]
    assert_problem(await open_share(client, share, passcode="right-one"), 404)
    shown = (await client.get(f"/v1/shares/{share['id']}", headers=patient.headers)).json()
    assert shown["status"] == "disabled" and shown["remainingAttempts"] == 0
    audit = (await client.get("/v1/audit?limit=100", headers=patient.headers)).json()["items"]
    wrong = [e for e in audit if e["reason"] == "wrong-passcode"]
    assert len(wrong) == 5
    assert all(e["actorType"] == "share" and e["actorId"].endswith(" Dr. Zhang") for e in wrong)


async def test_twenty_parallel_wrong_passcodes_get_five_checks(
    database_dsn, data_dir, superuser_conn
):
    from tests.live_server import live_server

    with live_server(database_dsn, data_dir) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            patient = await register_patient(http, mailbox=EmlFolder(data_dir / "mail"))
            share = await create_share(http, patient, passcode="right-one")
            url = parse_shlink(share["shlink"])["url"]
            answers = await asyncio.gather(
                *(
                    http.post(url, json={"recipient": f"guess {i}", "passcode": f"wrong-{i}"})
                    for i in range(20)
                )
            )
            statuses = sorted(a.status_code for a in answers)
            assert statuses.count(401) == 5 and statuses.count(404) == 15, statuses
            left = sorted(a.json()["remainingAttempts"] for a in answers if a.status_code == 401)
            assert left == [0, 1, 2, 3, 4]
            right = await http.post(url, json={"recipient": "Dr. Zhang", "passcode": "right-one"})
            assert right.status_code == 404
    row = await superuser_conn.fetchrow(
        "SELECT attempts_left, disabled_at FROM share WHERE id = $1", UUID(share["id"])
    )
    assert row["attempts_left"] == 0 and row["disabled_at"] is not None


async def test_expired_links_and_locations_are_refused(database_dsn, data_dir):
    clock = FixedClock(datetime.now(UTC))
    async with app_client(database_dsn, data_dir, clock=clock) as client:
        patient = await register_patient(client)
        expires = (clock.now() + timedelta(hours=2)).isoformat()
        share = await create_share(client, patient, expiresAt=expires)
        manifest = await open_share(client, share, embeddedLengthMax=0)
        location = manifest.json()["files"][0]["location"].removeprefix(PUBLIC)
        clock.advance(minutes=31)
        assert_problem(await client.get(location), 404)
        fresh = await open_share(client, share, embeddedLengthMax=0)
        still = fresh.json()["files"][0]["location"].removeprefix(PUBLIC)
        clock.advance(minutes=29)
        assert (await client.get(still)).status_code == 200
        clock.advance(hours=2)
        assert_problem(await open_share(client, share), 404)
        patient = await sign_in_again(client, patient)
        shown = (await client.get(f"/v1/shares/{share['id']}", headers=patient.headers)).json()
        assert shown["status"] == "expired"
        audit = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
        refused = next(e for e in audit if e["action"] == "share.manifest")
        assert refused["outcome"] == "denied" and refused["reason"] == "consent-expired"


async def sign_in_again(client, patient: Patient) -> Patient:
    response = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert response.status_code == 200, response.text
    return Patient(patient.email, patient.password, response.json(), patient.profile)


async def test_a_revoked_share_is_gone_at_once(client, patient, data_dir):
    share = await create_share(client, patient)
    stored = data_dir / "files" / "patients" / patient.id / "shares" / share["id"]
    assert stored.exists()
    assert (await open_share(client, share)).status_code == 200
    assert (
        await client.delete(f"/v1/shares/{share['id']}", headers=patient.headers)
    ).status_code == 204
    assert_problem(await open_share(client, share), 404)
    assert not stored.exists()
    shown = (await client.get(f"/v1/shares/{share['id']}", headers=patient.headers)).json()
    assert shown["status"] == "revoked"
    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    items = consents["items"] if isinstance(consents, dict) else consents
    assert [c["status"] for c in items if c["id"] == shown["consentId"]] == ["revoked"]
    # Revoking twice is not an error; the share stays listed as ended.
    assert (
        await client.delete(f"/v1/shares/{share['id']}", headers=patient.headers)
    ).status_code == 204
    listed = (await client.get("/v1/shares", headers=patient.headers)).json()["items"]
    assert [s["status"] for s in listed] == ["revoked"]


async def test_revoking_the_share_consent_or_erasing_the_account_ends_it(client, patient):
    share = await create_share(client, patient)
    revoked = await client.delete(
        f"/v1/consents/{share['share']['consentId']}", headers=patient.headers
    )
    assert revoked.status_code in (200, 204), revoked.text
    assert_problem(await open_share(client, share), 404)

    other = await create_share(client, patient, longTerm=True)
    assert (await open_share(client, other)).status_code == 200
    erased = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert erased.status_code == 204
    assert_problem(await open_share(client, other), 404)


async def test_the_manifest_token_is_no_bearer_token(client, patient):
    share = await create_share(client, patient)
    token = manifest_path(share).rsplit("/", 1)[1]
    for path in ("/v1/records", "/v1/shares", f"/v1/shares/{share['id']}", "/v1/me"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401)
    # Nor is the share id a manifest url.
    assert_problem(await client.post(f"/shl/{share['id']}", json={"recipient": "Dr. Zhang"}), 404)
    assert_problem(await client.post(f"/shl/{'A' * 43}", json={"recipient": "Dr. Zhang"}), 404)


async def test_another_patients_share_ids_are_404_everywhere_and_audited(
    client, patient, other_patient
):
    share = await create_share(client, patient)
    sid = share["id"]
    for method, path in [
        ("GET", f"/v1/shares/{sid}"),
        ("GET", f"/v1/shares/{sid}/qr"),
        ("GET", f"/v1/shares/{sid}/qr?format=svg"),
        ("GET", f"/v1/shares/{sid}/accesses"),
        ("DELETE", f"/v1/shares/{sid}"),
    ]:
        response = await client.request(method, path, headers=other_patient.headers)
        assert_problem(response, 404)
    audit = (await client.get("/v1/audit", headers=other_patient.headers)).json()["items"]
    refused = [e for e in audit if e["outcome"] == "denied" and e["resourceIds"] == [sid]]
    assert {e["action"] for e in refused} == {
        "share.read",
        "share.qr",
        "share.accesses",
        "share.revoked",
    }
    assert len(refused) == 5
    assert (await client.get("/v1/shares", headers=other_patient.headers)).json()["items"] == []
    assert (await open_share(client, share)).status_code == 200  # untouched


async def test_accesses_and_audit_name_the_recipient(client, patient):
    share = await create_share(client, patient)
    await open_share(client, share, recipient="Dr. Zhang")
    manifest = await open_share(client, share, recipient="Dr. Li", embeddedLengthMax=0)
    location = manifest.json()["files"][0]["location"].removeprefix(PUBLIC)
    assert (await client.get(location, headers={"User-Agent": "viewer/1"})).status_code == 200
    accesses = (
        await client.get(f"/v1/shares/{share['id']}/accesses", headers=patient.headers)
    ).json()["items"]
    assert [(a["kind"], a["recipient"], a["filesServed"]) for a in accesses] == [
        ("file", "Dr. Li", 1),
        ("manifest", "Dr. Li", 0),
        ("manifest", "Dr. Zhang", 1),
    ]
    assert accesses[0]["userAgent"] == "viewer/1"
    audit = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    opened = [e for e in audit if e["action"] in ("share.manifest", "share.file")]
    assert [e["actorId"].split(" ", 1)[1] for e in opened] == ["Dr. Li", "Dr. Li", "Dr. Zhang"]
    assert all(e["actorType"] == "share" and e["purpose"] == "TREAT" for e in opened)


async def test_manifests_are_throttled_per_link(database_dsn, data_dir):
    env = {"PHR_SHARE_REQUESTS_PER_LINK": "3"}
    async with app_client(database_dsn, data_dir, extra_env=env) as client:
        patient = await register_patient(client)
        share = await create_share(client, patient)
        for _ in range(3):
            assert (await open_share(client, share)).status_code == 200
        throttled = await open_share(client, share)
        assert_problem(throttled, 429)
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.headers["access-control-allow-origin"] == "*"
        other = await create_share(client, patient)
        assert (await open_share(client, other)).status_code == 200
    env = {"PHR_SHARE_REQUESTS_PER_ADDRESS": "2"}
    later = FixedClock(datetime.now(UTC) + timedelta(hours=1))  # a window of its own
    async with app_client(database_dsn, data_dir, extra_env=env, clock=later) as client:
        patient = await register_patient(client)
        shares = [await create_share(client, patient) for _ in range(3)]
        assert (await open_share(client, shares[0])).status_code == 200
        assert (await open_share(client, shares[1])).status_code == 200
        assert_problem(await open_share(client, shares[2]), 429)


async def test_the_share_list_is_keyset_paged(client, patient):
    made = [await create_share(client, patient, label=f"share {i}") for i in range(3)]
    first = (await client.get("/v1/shares?limit=2", headers=patient.headers)).json()
    assert [s["label"] for s in first["items"]] == ["share 2", "share 1"]
    second = (
        await client.get(
            f"/v1/shares?limit=2&cursor={first['nextCursor']}", headers=patient.headers
        )
    ).json()
    assert [s["id"] for s in second["items"]] == [made[0]["id"]]
    assert second["nextCursor"] is None


async def test_the_manifest_is_open_to_other_origins(client, patient):
    share = await create_share(client, patient)
    preflight = await client.options(
        manifest_path(share),
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    refused = await client.post(manifest_path(share), json={"passcode": "x"})
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == "*"


async def test_a_snapshot_keeps_only_ciphertext_and_forgets_its_key(
    database_dsn, data_dir, superuser_conn, services
):
    clock = FixedClock(datetime.now(UTC))
    async with app_client(database_dsn, data_dir, clock=clock) as client:
        patient = await register_patient(client)
        await seed(services, patient)
        await push(
            services,
            UUID(patient.id),
            await grant_hospital(services, UUID(patient.id)),
            bundle(condition("rare", "Zyxomycin-resistant Plasmoditis")),
        )
        share = await create_share(client, patient, scope={"resourceTypes": ["Condition"]})
        qr = await client.get(share["qrUrl"], headers=patient.headers)
        assert qr.status_code == 200
        clock.advance(minutes=16)  # past the link's holding time
        patient = await sign_in_again(client, patient)
        assert_problem(await client.get(share["qrUrl"], headers=patient.headers), 404)
        assert (await client.get("/v1/shares", headers=patient.headers)).status_code == 200
        # The doctor still opens it: the ciphertext is all that is needed.
        resources = await shared_resources(client, share)
        assert "Zyxomycin-resistant Plasmoditis" in clinical(resources)

    key = b64url_decode(parse_shlink(share["shlink"])["key"])
    secrets_in = [
        key,
        base64.urlsafe_b64encode(key).rstrip(b"="),
        base64.b64encode(key),
        key.hex().encode(),
        parse_shlink(share["shlink"])["url"].rsplit("/", 1)[1].encode(),
    ]
    plaintexts = [b"Zyxomycin", b"Plasmoditis"]
    rows = []
    for table in ("share", "share_file_ticket", "share_access", "consent"):
        rows += [
            str(r[0]).encode() for r in await superuser_conn.fetch(f"SELECT t::text FROM {table} t")
        ]
    sealed = await superuser_conn.fetchrow(
        "SELECT key_sealed, link_sealed, ciphertext_key FROM share WHERE id = $1",
        UUID(share["id"]),
    )
    assert sealed["key_sealed"] is None and sealed["link_sealed"] is None
    files = [p.read_bytes() for p in (data_dir / "files").rglob("*") if p.is_file()]
    blob = (data_dir / "files" / sealed["ciphertext_key"]).read_bytes()
    assert blob.count(b".") == 4  # JWE compact
    for haystack in rows + files:
        for needle in secrets_in:
            assert needle not in haystack
    for haystack in [*rows, blob]:
        for needle in plaintexts:
            assert needle not in haystack


async def test_a_long_term_share_is_rebuilt_and_drops_revoked_sources(
    client, patient, services, superuser_conn
):
    hospital = await seed(services, patient)
    share = await create_share(
        client, patient, longTerm=True, scope={"resourceTypes": ["Condition"]}
    )
    assert share["flag"] == "L"
    payload = parse_shlink(share["shlink"])
    first = await open_share(client, share)
    assert clinical(
        bundle_resources(decrypt(first.json()["files"][0]["embedded"], payload["key"])[1])
    ) == {"Asthma": "Condition"}
    await push(services, UUID(patient.id), hospital, bundle(condition("new", "Gout")))
    second = await open_share(client, share)
    jwe = second.json()["files"][0]["embedded"]
    assert set(clinical(bundle_resources(decrypt(jwe, payload["key"])[1]))) == {"Asthma", "Gout"}
    # Every encryption has a fresh IV.
    assert jwe.split(".")[2] != first.json()["files"][0]["embedded"].split(".")[2]
    sealed = await superuser_conn.fetchval(
        "SELECT key_sealed FROM share WHERE id = $1", UUID(share["id"])
    )
    assert sealed is not None and b64url_decode(payload["key"]) not in bytes(sealed)
    # The QR stays available for a long-term share.
    assert (await client.get(share["qrUrl"], headers=patient.headers)).status_code == 200

    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    items = consents["items"] if isinstance(consents, dict) else consents
    source = next(c for c in items if c["kind"] == "data-source")
    revoked = await client.delete(f"/v1/consents/{source['id']}", headers=patient.headers)
    assert revoked.status_code in (200, 204)
    third = await open_share(client, share)
    assert (
        clinical(bundle_resources(decrypt(third.json()["files"][0]["embedded"], payload["key"])[1]))
        == {}
    )


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_uploaded_pdfs_travel_inside_the_bundle(storage, database_dsn, data_dir, s3_server):
    from tests.integration.test_uploads import PDF, complete, open_stack, put_file

    async with open_stack(storage, database_dsn, data_dir, s3_server) as stack:
        client = stack.client
        patient = await register_patient(client)
        started = await put_file(stack, patient, "letter.pdf", "application/pdf", PDF)
        completed = await complete(stack, patient, started["id"])
        assert completed.status_code == 201, completed.text
        share = await create_share(client, patient, scope={"resourceTypes": ["DocumentReference"]})
        resources = await shared_resources(client, share)
        documents = [r for r in resources if r["resourceType"] == "DocumentReference"]
        assert [d["id"] for d in documents] == [completed.json()["id"]]
        attachment = documents[0]["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == PDF
        assert "url" not in attachment  # it needs the patient's token; the data is here
        assert (
            await client.delete(f"/v1/shares/{share['id']}", headers=patient.headers)
        ).status_code == 204
        assert_problem(await open_share(client, share), 404)


async def test_hostile_share_input_is_refused_without_a_500(client, patient):
    share = await create_share(
        client, patient, scope={"since": "2020-01-01T00:00:00", "until": "2030-01-01T00:00:00"}
    )
    assert (await open_share(client, share)).status_code == 200
    for body in (
        {"recipient": "Dr.\x00Zhang"},
        {"recipient": ""},
        {"recipient": "x" * 101},
        {"recipient": "Dr. Zhang", "embeddedLengthMax": -1},
        {"recipient": ["Dr. Zhang"]},
    ):
        response = await open_share(client, share, **body)
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    deep = b'{"recipient":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(
        manifest_path(share), content=deep, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == "*"
    deep_share = await client.post(
        "/v1/shares",
        content=b'{"expiresAt":' + b"[" * 5000 + b"]" * 5000 + b"}",
        headers={**patient.headers, "Content-Type": "application/json"},
    )
    assert deep_share.status_code == 400
    assert deep_share.headers["content-type"].startswith(PROBLEM)
    huge = await client.post(
        manifest_path(share),
        content=b'{"recipient":"' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    naive = await client.post(
        "/v1/shares", json={"expiresAt": "2030-01-01T00:00:00"}, headers=patient.headers
    )
    assert naive.status_code == 422
    bad_cursor = await client.get("/v1/shares?cursor=not-ours", headers=patient.headers)
    assert bad_cursor.status_code == 422
    assert (await client.get("/viewer/other.js")).status_code in (400, 404)


async def test_the_patient_hears_of_the_first_opening_and_each_new_recipient(client, patient):
    share = await create_share(client, patient, label="For the cardiologist")
    for doctor in ("Dr. Zhang", "Dr. Zhang", "dr. zhang ", "Dr. Li"):
        assert (await open_share(client, share, recipient=doctor)).status_code == 200
    inbox = (await client.get("/v1/notifications", headers=patient.headers)).json()["items"]
    kinds = sorted(n["kind"] for n in inbox if n["kind"].startswith("share"))
    # one "opened", one per distinct recipient (names compared without case or spaces)
    assert kinds == ["share-opened", "share-recipient", "share-recipient"]
