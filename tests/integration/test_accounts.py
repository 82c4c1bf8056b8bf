"""The account service through HTTP, with mail delivered to a real SMTP server
(aiosmtpd) started by the test: codes are read from the messages it receives."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Patient, register_patient
from tests.mail_support import SmtpServer, body_html, body_text, code_in

PROBLEM = "application/problem+json"


def new_email() -> str:
    return f"acct-{uuid.uuid4().hex[:12]}@example.org"


def new_password() -> str:
    return f"amber lantern {uuid.uuid4().hex[:8]} harbour"


def problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_settings(settings, smtp):
    return msgspec.structs.replace(settings, smtp_url=smtp.url, smtp_from="phr <no-reply@phr.test>")


@pytest.fixture
async def client(smtp_settings) -> AsyncIterator[AsyncTestClient]:
    """The app sending its mail to the test's SMTP server."""
    from api.app import create_app

    async with AsyncTestClient(
        app=create_app(smtp_settings), base_url="http://testserver.local"
    ) as test_client:
        yield test_client


async def signed_up(client, smtp, **kwargs) -> Patient:
    return await register_patient(client, mailbox=smtp, **kwargs)


async def login(client, email: str, password: str, **extra):
    return await client.post("/v1/auth/login", json={"email": email, "password": password, **extra})


async def audit_actions(superuser_conn, patient_id: str) -> list[tuple[str, str]]:
    rows = await superuser_conn.fetch(
        "SELECT action, outcome FROM audit_event WHERE patient_id = $1::uuid ORDER BY sequence",
        patient_id,
    )
    return [(r["action"], r["outcome"]) for r in rows]


# --- registration and verification -------------------------------------------------


async def test_registering_a_known_address_answers_the_same_and_tells_its_owner(
    client, smtp, superuser_conn
):
    email, password = new_email(), new_password()
    first = await client.post("/v1/auth/register", json={"email": email, "password": password})
    second = await client.post(
        "/v1/auth/register", json={"email": email.upper(), "password": new_password()}
    )
    assert first.status_code == second.status_code == 202
    assert first.content == second.content
    assert first.headers.get("content-length") == second.headers.get("content-length")

    verification = await smtp.next_to(email)
    attempt = await smtp.next_to(email)
    assert code_in(verification)
    assert "someone tried to register" in str(attempt["Subject"]).lower()
    assert "already has one" in body_text(attempt)
    # One account, and the second password did not replace the first.
    count = await superuser_conn.fetchval(
        "SELECT count(*) FROM patient WHERE lower(email) = lower($1)", email
    )
    assert count == 1
    code = code_in(verification)
    assert (
        await client.post("/v1/auth/verify-email", json={"email": email, "code": code})
    ).status_code == 204
    assert (await login(client, email, password)).status_code == 200


async def test_mail_has_text_and_html_and_the_code_in_the_subject(client, smtp):
    email = new_email()
    await client.post("/v1/auth/register", json={"email": email, "password": new_password()})
    message = await smtp.next_to(email)
    code = code_in(message)
    assert code in body_text(message)
    assert code in body_html(message) and "<html" in body_html(message)
    assert message["From"] == "phr <no-reply@phr.test>"
    assert len(code.replace("-", "")) == 8
    assert set(code.replace("-", "")) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


async def test_chinese_mail_for_a_chinese_speaking_client(client, smtp):
    email = new_email()
    response = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": new_password()},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert response.status_code == 202
    message = await smtp.next_to(email)
    assert "验证码" in str(message["Subject"])
    assert "验证码" in body_text(message) and 'lang="zh-CN"' in body_html(message)


async def test_login_before_verification_is_403_only_with_the_right_password(
    client, smtp, superuser_conn
):
    email, password = new_email(), new_password()
    await client.post("/v1/auth/register", json={"email": email, "password": password})
    code = await smtp.next_code(email)

    body = problem(await login(client, email, password), 403)
    assert body["type"].endswith("/email-not-verified")
    wrong = problem(await login(client, email, "not the password at all"), 401)
    assert wrong["type"].endswith("/invalid-credentials")

    response = await client.post(
        "/v1/auth/verify-email", json={"email": email, "code": code.lower()}
    )
    assert response.status_code == 204
    assert (await login(client, email, password)).status_code == 200
    patient_id = await superuser_conn.fetchval(
        "SELECT id::text FROM patient WHERE lower(email) = lower($1)", email
    )
    actions = await audit_actions(superuser_conn, patient_id)
    assert ("auth.login", "denied") in actions
    assert ("account.verified", "success") in actions


async def test_five_wrong_codes_kill_the_code(client, smtp):
    email, password = new_email(), new_password()
    await client.post("/v1/auth/register", json={"email": email, "password": password})
    code = await smtp.next_code(email)
    wrong = "0000-0000" if code != "0000-0000" else "1111-1111"
    for _ in range(5):
        body = problem(
            await client.post("/v1/auth/verify-email", json={"email": email, "code": wrong}), 422
        )
        assert body["type"].endswith("/invalid-code")
    # The right code, now too late.
    problem(await client.post("/v1/auth/verify-email", json={"email": email, "code": code}), 422)
    assert (await login(client, email, password)).status_code == 403

    # A new code works (and the old one stays dead).
    assert (
        await client.post("/v1/auth/verify-email/resend", json={"email": email})
    ).status_code == 202
    fresh = await smtp.next_code(email)
    problem(await client.post("/v1/auth/verify-email", json={"email": email, "code": code}), 422)
    assert (
        await client.post("/v1/auth/verify-email", json={"email": email, "code": fresh})
    ).status_code == 204


async def test_unknown_address_and_wrong_code_look_the_same(client, smtp):
    unknown = await client.post(
        "/v1/auth/verify-email", json={"email": new_email(), "code": "ABCD-EFGH"}
    )
    email = new_email()
    await client.post("/v1/auth/register", json={"email": email, "password": new_password()})
    await smtp.next_code(email)
    wrong = await client.post("/v1/auth/verify-email", json={"email": email, "code": "ABCD-EFGH"})
    assert unknown.status_code == wrong.status_code == 422
    assert unknown.json() == wrong.json()


async def test_codes_are_stored_hashed(client, smtp, superuser_conn):
    email = new_email()
    await client.post("/v1/auth/register", json={"email": email, "password": new_password()})
    code = (await smtp.next_code(email)).replace("-", "")
    rows = await superuser_conn.fetch("SELECT * FROM account_code")
    dump = repr([dict(r) for r in rows]) + repr(
        [dict(r) for r in await superuser_conn.fetch("SELECT payload::text FROM job")]
    )
    assert code not in dump and code.lower() not in dump


async def test_resend_is_throttled_per_email_with_retry_after(settings, smtp):
    from api.app import create_app

    tight = msgspec.structs.replace(settings, smtp_url=smtp.url, account_mail_per_email=2)
    async with AsyncTestClient(app=create_app(tight), base_url="http://testserver.local") as app:
        email = new_email()
        await app.post("/v1/auth/register", json={"email": email, "password": new_password()})
        assert (
            await app.post("/v1/auth/verify-email/resend", json={"email": email})
        ).status_code == 202
        assert (
            await app.post("/v1/auth/verify-email/resend", json={"email": email})
        ).status_code == 202
        limited = await app.post("/v1/auth/verify-email/resend", json={"email": email})
        problem(limited, 429)
        assert int(limited.headers["retry-after"]) > 0
        # Another address is not affected.
        other = await app.post("/v1/auth/verify-email/resend", json={"email": new_email()})
        assert other.status_code == 202


async def test_registration_is_throttled_per_client_address(settings, smtp):
    from api.app import create_app
    from tests.app_in_loop import client_from, running

    tight = msgspec.structs.replace(settings, smtp_url=smtp.url, account_mail_per_address=3)
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    async with running(create_app(tight)) as app, client_from(app, address) as http:
        statuses = [
            (
                await http.post(
                    "/v1/auth/register", json={"email": new_email(), "password": new_password()}
                )
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        async with client_from(app, "198.51.100.77") as elsewhere:
            response = await elsewhere.post(
                "/v1/auth/register", json={"email": new_email(), "password": new_password()}
            )
            assert response.status_code == 202


async def test_code_guesses_are_throttled_across_codes(settings, smtp):
    from api.app import create_app

    tight = msgspec.structs.replace(settings, smtp_url=smtp.url, code_failures_per_email=3)
    async with AsyncTestClient(app=create_app(tight), base_url="http://testserver.local") as app:
        email = new_email()
        await app.post("/v1/auth/register", json={"email": email, "password": new_password()})
        code = await smtp.next_code(email)
        for _ in range(3):
            wrong = "0000-0000" if code != "0000-0000" else "1111-1111"
            await app.post("/v1/auth/verify-email", json={"email": email, "code": wrong})
        limited = await app.post("/v1/auth/verify-email", json={"email": email, "code": code})
        problem(limited, 429)
        assert limited.headers["retry-after"]


async def test_verification_off_lets_a_new_account_sign_in_at_once(settings, smtp):
    from api.app import create_app

    off = msgspec.structs.replace(settings, smtp_url=smtp.url, email_verification=False)
    async with AsyncTestClient(app=create_app(off), base_url="http://testserver.local") as app:
        email, password = new_email(), new_password()
        assert (
            await app.post("/v1/auth/register", json={"email": email, "password": password})
        ).status_code == 202
        response = await login(app, email, password)
        assert response.status_code == 200
        me = await app.get("/v1/me", headers=bearer(response.json()["accessToken"]))
        assert me.json()["emailVerified"] is True
        assert smtp.to(email) == []


# --- password reset and change ------------------------------------------------------


async def test_reset_sets_the_password_ends_every_session_and_the_code_works_once(
    client, smtp, superuser_conn
):
    patient = await signed_up(client, smtp)
    second = (await login(client, patient.email, patient.password)).json()
    assert (
        await client.post("/v1/auth/password-reset", json={"email": patient.email})
    ).status_code == 202
    code = await smtp.next_code(patient.email)
    new = new_password()
    confirm = {"email": patient.email, "code": code, "newPassword": new}
    assert (await client.post("/v1/auth/password-reset/confirm", json=confirm)).status_code == 204

    # Every session ended: refresh tokens and access tokens.
    for tokens in (patient.tokens, second):
        refreshed = await client.post(
            "/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        problem(refreshed, 401)
        problem(await client.get("/v1/me", headers=bearer(tokens["accessToken"])), 401)
    assert (await login(client, patient.email, patient.password)).status_code == 401
    assert (await login(client, patient.email, new)).status_code == 200

    # Used once: the same code again is refused.
    again = {**confirm, "newPassword": new_password()}
    problem(await client.post("/v1/auth/password-reset/confirm", json=again), 422)
    assert (await login(client, patient.email, new)).status_code == 200

    changed = await smtp.next_to(patient.email)
    assert "password was changed" in str(changed["Subject"]).lower()
    assert ("password.changed", "success") in await audit_actions(superuser_conn, patient.id)


async def test_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(client, smtp):
    known = await signed_up(client, smtp)
    unknown = new_email()
    a = await client.post("/v1/auth/password-reset", json={"email": known.email})
    b = await client.post("/v1/auth/password-reset", json={"email": unknown})
    assert (a.status_code, a.content) == (b.status_code, b.content)
    await smtp.next_to(known.email)
    assert smtp.to(unknown) == []


async def test_reset_refuses_a_weak_new_password_naming_the_field(client, smtp):
    patient = await signed_up(client, smtp)
    await client.post("/v1/auth/password-reset", json={"email": patient.email})
    code = await smtp.next_code(patient.email)
    body = problem(
        await client.post(
            "/v1/auth/password-reset/confirm",
            json={"email": patient.email, "code": code, "newPassword": "password123"},
        ),
        422,
    )
    assert body["errors"][0]["field"] == "newPassword"


async def test_change_with_a_wrong_current_password_is_403_and_changes_nothing(client, smtp):
    patient = await signed_up(client, smtp)
    other = (await login(client, patient.email, patient.password)).json()
    response = await client.post(
        "/v1/me/password",
        json={"currentPassword": "not my password", "newPassword": new_password()},
        headers=patient.headers,
    )
    assert problem(response, 403)["type"].endswith("/wrong-password")
    assert (await login(client, patient.email, patient.password)).status_code == 200
    assert (
        await client.post("/v1/auth/refresh", json={"refreshToken": other["refreshToken"]})
    ).status_code == 200


async def test_change_ends_every_other_session_and_keeps_this_one(client, smtp):
    patient = await signed_up(client, smtp)
    other = (await login(client, patient.email, patient.password)).json()
    new = new_password()
    response = await client.post(
        "/v1/me/password",
        json={"currentPassword": patient.password, "newPassword": new},
        headers=patient.headers,
    )
    assert response.status_code == 204
    problem(
        await client.post("/v1/auth/refresh", json={"refreshToken": other["refreshToken"]}), 401
    )
    problem(await client.get("/v1/me", headers=bearer(other["accessToken"])), 401)
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200
    assert (
        await client.post("/v1/auth/refresh", json={"refreshToken": patient.tokens["refreshToken"]})
    ).status_code == 200
    assert (await login(client, patient.email, new)).status_code == 200
    assert "password was changed" in str((await smtp.next_to(patient.email))["Subject"]).lower()


# --- sessions --------------------------------------------------------------------


async def test_sessions_list_names_devices_and_marks_the_current_one(client, smtp):
    patient = await signed_up(client, smtp)
    phone = await client.post(
        "/v1/auth/login",
        json={"email": patient.email, "password": patient.password},
        headers={
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
        },
    )
    named = await login(client, patient.email, patient.password, deviceName="Grandma's tablet")
    response = await client.get("/v1/me/sessions", headers=bearer(named.json()["accessToken"]))
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 3
    names = {item["deviceName"] for item in items}
    assert {"Safari on iPhone", "Grandma's tablet"} <= names
    current = [item for item in items if item["current"]]
    assert [item["deviceName"] for item in current] == ["Grandma's tablet"]
    for item in items:
        assert item["createdAt"] and item["lastUsedAt"] and item["clientAddress"]
    assert phone.status_code == 200


async def test_a_session_ended_from_another_device_can_no_longer_refresh(
    client, smtp, superuser_conn
):
    patient = await signed_up(client, smtp)
    stolen = (await login(client, patient.email, patient.password, deviceName="lost phone")).json()
    created = await client.post(
        "/v1/records",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "weight"}},
        headers=patient.headers,
    )
    assert created.status_code == 201
    record = f"/v1/records/{created.json()['id']}"
    # The timeline and a record are read in one statement that checks liveness itself.
    assert (await client.get(record, headers=bearer(stolen["accessToken"]))).status_code == 200
    sessions = (await client.get("/v1/me/sessions", headers=patient.headers)).json()["items"]
    lost = next(s for s in sessions if s["deviceName"] == "lost phone")
    response = await client.delete(f"/v1/me/sessions/{lost['id']}", headers=patient.headers)
    assert response.status_code == 204
    problem(
        await client.post("/v1/auth/refresh", json={"refreshToken": stolen["refreshToken"]}), 401
    )
    # Its access token stops at once, not in 15 minutes.
    problem(await client.get("/v1/me", headers=bearer(stolen["accessToken"])), 401)
    problem(await client.get(record, headers=bearer(stolen["accessToken"])), 401)
    problem(await client.get("/v1/records", headers=bearer(stolen["accessToken"])), 401)
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200
    assert (await client.get(record, headers=patient.headers)).status_code == 200
    assert ("session.ended", "success") in await audit_actions(superuser_conn, patient.id)


async def test_ending_all_other_sessions_keeps_the_current_one(client, smtp):
    patient = await signed_up(client, smtp)
    others = [(await login(client, patient.email, patient.password)).json() for _ in range(2)]
    response = await client.delete("/v1/me/sessions", headers=patient.headers)
    assert response.status_code == 200 and response.json() == {"ended": 2}
    for tokens in others:
        problem(
            await client.post("/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}),
            401,
        )
    items = (await client.get("/v1/me/sessions", headers=patient.headers)).json()["items"]
    assert len(items) == 1 and items[0]["current"]


async def test_another_patients_session_is_404_and_audited(client, smtp, superuser_conn):
    alice = await signed_up(client, smtp)
    bob = await signed_up(client, smtp)
    alice_session = (await client.get("/v1/me/sessions", headers=alice.headers)).json()["items"][0]
    response = await client.delete(f"/v1/me/sessions/{alice_session['id']}", headers=bob.headers)
    problem(response, 404)
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200
    assert ("session.ended", "denied") in await audit_actions(superuser_conn, bob.id)


# --- profile -----------------------------------------------------------------------


async def test_profile_defaults_and_patch(client, smtp, superuser_conn):
    patient = await signed_up(client, smtp)
    me = (await client.get("/v1/me", headers=patient.headers)).json()
    assert (me["locale"], me["timeZone"], me["emailVerified"]) == ("en", "Asia/Shanghai", True)

    response = await client.patch(
        "/v1/me",
        json={"displayName": "李雷", "locale": "zh-CN", "timeZone": "Europe/Berlin"},
        headers=patient.headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["displayName"], response.json()["locale"]) == ("李雷", "zh-CN")
    # Only what is sent changes.
    response = await client.patch("/v1/me", json={"timeZone": "UTC"}, headers=patient.headers)
    assert (response.json()["locale"], response.json()["timeZone"]) == ("zh-CN", "UTC")
    assert response.json()["displayName"] == "李雷"
    assert ("account.updated", "success") in await audit_actions(superuser_conn, patient.id)


async def test_registration_may_choose_locale_and_time_zone(client, smtp):
    email, password = new_email(), new_password()
    await client.post(
        "/v1/auth/register",
        json={"email": email, "password": password, "locale": "zh-CN", "timeZone": "Asia/Tokyo"},
    )
    code = await smtp.next_code(email)
    await client.post("/v1/auth/verify-email", json={"email": email, "code": code})
    token = (await login(client, email, password)).json()["accessToken"]
    me = (await client.get("/v1/me", headers=bearer(token))).json()
    assert (me["locale"], me["timeZone"]) == ("zh-CN", "Asia/Tokyo")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timeZone": "Mars/Olympus_Mons"}, "timeZone"),
        ({"timeZone": "../../etc/passwd"}, "timeZone"),
        ({"locale": "fr"}, "locale"),
        ({"locale": "zh-TW"}, "locale"),
    ],
)
async def test_patch_refuses_unknown_time_zone_and_locale_naming_the_field(
    client, smtp, change, field
):
    patient = await signed_up(client, smtp)
    body = problem(await client.patch("/v1/me", json=change, headers=patient.headers), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    me = (await client.get("/v1/me", headers=patient.headers)).json()
    assert (me["locale"], me["timeZone"]) == ("en", "Asia/Shanghai")


async def test_email_change_needs_the_code_from_the_new_address_and_tells_the_old(
    client, smtp, superuser_conn
):
    patient = await signed_up(client, smtp)
    new_address = new_email()
    response = await client.post(
        "/v1/me/email",
        json={"newEmail": new_address, "currentPassword": patient.password},
        headers=patient.headers,
    )
    assert response.status_code == 202
    code = await smtp.next_code(new_address)
    # Nothing changed yet.
    assert (await client.get("/v1/me", headers=patient.headers)).json()["email"] == patient.email
    response = await client.post(
        "/v1/me/email/confirm", json={"code": code}, headers=patient.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == new_address and response.json()["emailVerified"]
    notice = await smtp.next_to(patient.email)
    assert "email address was changed" in str(notice["Subject"]).lower()
    assert (await login(client, new_address, patient.password)).status_code == 200
    assert (await login(client, patient.email, patient.password)).status_code == 401
    assert ("account.email-changed", "success") in await audit_actions(superuser_conn, patient.id)


async def test_email_change_with_a_wrong_password_is_403_and_sends_nothing(client, smtp):
    patient = await signed_up(client, smtp)
    new_address = new_email()
    response = await client.post(
        "/v1/me/email",
        json={"newEmail": new_address, "currentPassword": "not my password"},
        headers=patient.headers,
    )
    problem(response, 403)
    assert smtp.to(new_address) == []


# --- deletion ----------------------------------------------------------------------


async def test_deletion_needs_the_current_password(client, smtp, superuser_conn):
    patient = await signed_up(client, smtp)
    no_body = await client.request("DELETE", "/v1/me", headers=patient.headers)
    problem(no_body, 400)
    wrong = await client.request(
        "DELETE", "/v1/me", json={"password": "not my password"}, headers=patient.headers
    )
    assert problem(wrong, 403)["type"].endswith("/wrong-password")
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM patient WHERE id = $1::uuid", patient.id
        )
        == 1
    )

    right = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert right.status_code == 204
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM patient WHERE id = $1::uuid", patient.id
        )
        == 0
    )


# --- transport security ------------------------------------------------------------


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_mail_goes_over_tls_with_the_url_credentials(settings, tmp_path, tls):
    from api.app import create_app
    from tests.mail_support import self_signed_certificate

    certificate = self_signed_certificate(tmp_path)
    server = SmtpServer(tls=tls, certificate=certificate, login=("phr-relay", "s3cret:/@x")).start()
    try:
        secure = msgspec.structs.replace(settings, smtp_url=server.url, smtp_ca_file=certificate[0])
        async with AsyncTestClient(
            app=create_app(secure), base_url="http://testserver.local"
        ) as app:
            patient = await register_patient(app, mailbox=server)
            assert patient.profile["emailVerified"]
        assert server.logins and set(server.logins) == {"phr-relay"}
    finally:
        server.stop()


async def test_an_untrusted_certificate_is_refused(settings, tmp_path, superuser_conn):
    """Without the CA file the self-signed server is not trusted: nothing is sent
    in clear instead, and the job waits for a retry."""
    from api.app import create_app
    from tests.mail_support import self_signed_certificate

    certificate = self_signed_certificate(tmp_path)
    server = SmtpServer(tls="starttls", certificate=certificate).start()
    try:
        untrusting = msgspec.structs.replace(settings, smtp_url=server.url)
        async with AsyncTestClient(
            app=create_app(untrusting), base_url="http://testserver.local"
        ) as app:
            email = new_email()
            await app.post("/v1/auth/register", json={"email": email, "password": new_password()})
            import asyncio

            for _ in range(200):
                error = await superuser_conn.fetchval(
                    "SELECT last_error FROM job WHERE kind = 'mail.send' AND last_error IS NOT NULL "
                    "AND payload->>'kind' = 'verify-email' ORDER BY id DESC LIMIT 1"
                )
                if error and "CERTIFICATE" in error.upper():
                    break
                await asyncio.sleep(0.05)
            assert error and "certificate" in error.lower()
        assert server.to(email) == []
    finally:
        server.stop()
