"""Password and email rules, and the hasher's parameters and bounds (no database)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import argon2
import pytest

from domain.accounts.account import email_problem, normalise_email, validated_email
from domain.accounts.passwords import PasswordPolicy
from domain.errors import InvalidInput, Overloaded, WeakPassword
from infra.common_passwords import common_passwords
from infra.password_hasher import ThreadPoolPasswordHasher

POLICY = PasswordPolicy(common_passwords())


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 8"),
        ("password123", "commonly used"),
        ("PASSWORD123", "commonly used"),
        ("sunshine", "commonly used"),
        ("someone@example.org", "same as the email"),
        ("x" * 4097, "at most 4096"),
    ],
)
def test_policy_refuses_with_a_reason(password, reason):
    with pytest.raises(WeakPassword) as refused:
        POLICY.check(password, email="Someone@example.org")
    assert refused.value.errors[0].field == "password"
    assert reason in refused.value.errors[0].message


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "8 chars!", "pässwörd-ümlaut-long", "y" * 1024, "z" * 129],
)
def test_policy_accepts_long_and_unusual_passwords(password):
    POLICY.check(password, email="someone@example.org")


def test_common_list_is_the_top_ten_thousand_of_zxcvbn():
    assert len(common_passwords()) >= 9_900
    assert {"123456", "password", "qwerty", "password123"} <= common_passwords()


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ada@Example.ORG ", "Ada@example.org"),
        ("ada@EXAMPLE.org", "ada@example.org"),
        ('weird"@local"@Example.Org', 'weird"@local"@example.org'),
    ],
)
def test_email_normalisation(raw, normal):
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "no-at-sign",
        "@example.org",
        "a@b",
        "a b@example.org",
        "a@.example.org",
        "a@" + "x" * 260 + ".org",
    ],
)
def test_bad_emails_are_refused(raw):
    assert email_problem(normalise_email(raw)) is not None
    with pytest.raises(InvalidInput):
        validated_email(raw)


async def test_hasher_uses_owasp_minimum_argon2id_and_detects_rehash():
    hasher = ThreadPoolPasswordHasher(workers=2, queue_limit=4)
    try:
        stored = await hasher.hash("a perfectly fine passphrase")
        params = argon2.extract_parameters(stored)
        assert params.type is argon2.Type.ID
        assert (params.memory_cost, params.time_cost, params.parallelism) >= (19456, 2, 1)
        check = await hasher.verify(stored, "a perfectly fine passphrase")
        assert check.matches and not check.needs_rehash
        assert not (await hasher.verify(stored, "another passphrase")).matches
        assert not (await hasher.verify(None, "a perfectly fine passphrase")).matches
        weak = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw-pw-pw")
        check = await hasher.verify(weak, "pw-pw-pw")
        assert check.matches and check.needs_rehash
        assert not (await hasher.verify("not a hash", "pw-pw-pw")).matches
    finally:
        hasher.close()


async def test_hasher_runs_off_the_event_loop_and_refuses_beyond_its_queue():
    hasher = ThreadPoolPasswordHasher(workers=1, queue_limit=1)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = hasher._check

    def spy(stored, password):
        seen.append(threading.get_ident())
        return original(stored, password)

    hasher._check = spy  # type: ignore[method-assign]
    try:
        stored = await hasher.hash("queue test passphrase")
        results = await asyncio.gather(
            *(hasher.verify(stored, "queue test passphrase") for _ in range(5)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, Overloaded)]
        done = [r for r in results if not isinstance(r, BaseException)]
        assert len(done) == 2 and len(refused) == 3  # one running + one waiting
        assert all(r.matches for r in done)
        assert seen and loop_thread not in seen
    finally:
        hasher.close()


_HASHING_RSS_PROBE = """
import asyncio
from infra.password_hasher import ThreadPoolPasswordHasher

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

async def rounds(hasher, count):
    for round in range(count):
        await asyncio.gather(*(hasher.hash(f"passphrase {round} {n}") for n in range(4)))

async def main():
    hasher = ThreadPoolPasswordHasher(workers=2, queue_limit=8)
    await rounds(hasher, 6)  # warm: every hashing thread has hashed more than once
    before = rss_kib()
    await rounds(hasher, 8)
    print(before, rss_kib())
    hasher.close()

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_hashing_memory_is_bounded_once_warm():
    """Each hash takes 19 MiB. glibc keeps it in the hashing thread's arena once
    that thread has hashed twice (bounded: threads x 19 MiB, what a soak's warm-up
    must include); past that, more sign-ins must not grow the process."""
    done = subprocess.run(
        [sys.executable, "-c", _HASHING_RSS_PROBE],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = (int(value) for value in done.stdout.split())
    assert after - before < 8 * 1024, f"RSS grew {(after - before) / 1024:.0f} MiB over 32 hashes"
