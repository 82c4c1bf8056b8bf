"""Item 1's alert, end to end: when failed sign-ins on an account reach the alert
threshold, the owner gets a mail (a `mail.send` job, read here from the `.eml`
folder the service writes by default), in the language of their account, once per
throttle window; an email with no account alerts nobody."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from tests.app_in_loop import client_from, running
from tests.mail_support import Mailbox, body_text, mailbox_of

SUBJECTS = {
    "en": "Failed sign-ins on your phr account",
    "zh-CN": "您的 phr 账户有多次登录失败",
}


async def register_in(client, locale: str) -> tuple[str, str, Mailbox]:
    """Registered and verified; the mailbox has handed out the code's mail."""
    email = f"alerted-{uuid.uuid4().hex[:10]}@example.org"
    password = f"correct horse {uuid.uuid4().hex[:8]} battery"
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "locale": locale}
    )
    assert response.status_code == 202, response.text
    mailbox = mailbox_of(client)
    code = await mailbox.next_code(email)
    response = await client.post("/v1/auth/verify-email", json={"email": email, "code": code})
    assert response.status_code == 204, response.text
    return email, password, mailbox


async def attack(service, email: str, guesses: int, network: int) -> None:
    for i in range(1, guesses + 1):
        async with client_from(service, f"198.18.{network}.{i}") as attacker:
            response = await attacker.post(
                "/v1/auth/login", json={"email": email, "password": "wrong wrong"}
            )
            assert response.status_code == 401, response.text


async def test_account_under_attack__owner_mailed_once_in_their_language(settings):
    from api.app import create_app

    app = create_app(msgspec.structs.replace(settings, trusted_proxies=()))
    async with running(app) as service:
        for network, locale in enumerate(("zh-CN", "en"), start=10):
            async with client_from(service, "192.0.2.40") as home:
                email, password, mailbox = await register_in(home, locale)
            await attack(service, email, 7, network)

            alert = await mailbox.next_to(email)
            assert alert["Subject"] == SUBJECTS[locale]
            assert "wrong password" in body_text(alert) or "错误的密码" in body_text(alert)
            # Neither the guessed password nor the owner's appears in it.
            assert "wrong wrong" not in body_text(alert)
            assert password not in body_text(alert)
            # Once per window: more failures send no second mail.
            await attack(service, email, 3, network + 100)
            async with client_from(service, "192.0.2.40") as home:
                response = await home.post(
                    "/v1/auth/login", json={"email": email, "password": password}
                )
                assert response.status_code == 200, response.text
            await asyncio.sleep(1)  # time for a second mail job, were one queued
            assert [m["Subject"] for m in mailbox.to(email)].count(SUBJECTS[locale]) == 1

        # Failures on an address with no account mail nobody.
        nobody = f"nobody-{uuid.uuid4().hex}@example.org"
        await attack(service, nobody, 7, 30)
        await asyncio.sleep(1)
        assert mailbox.to(nobody) == []
