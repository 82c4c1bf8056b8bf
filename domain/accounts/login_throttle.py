"""How sign-in, registration and refresh are throttled (OWASP ASVS 2.2.1), on the
one throttle mechanism of `domain.throttle`.

Sign-in must stop password guessing without handing a stranger a way to lock the
owner out. So:
- failures are limited per account *and client address*: an attacker at one address
  is refused (429) after `pair_failures`, the owner at another is not;
- failures from one address across accounts are limited too (password spraying);
- per account alone there is no refusal, only progressive delays: once the account
  has `delay_after` failures in the window, a client that has itself been failing
  on it must wait 1, 2, 4, ... seconds (at most `max_delay_seconds`) after the
  account's latest failure. A client with no failures on the account is never
  delayed nor refused, so the right password from the owner's device always works;
- when failures reach `delay_after`, the owner is told once per window.
A successful sign-in forgets the account's failures and that client's."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec

from domain.errors import RateLimited
from domain.throttle import UNLIMITED, Gate, KeyCount, ThrottleKey, subject

UNKNOWN_ADDRESS = "unknown"


class SignInPolicy(msgspec.Struct, frozen=True, kw_only=True):
    pair_failures: int = 5
    address_failures: int = 50
    delay_after: int = 5
    max_delay_seconds: int = 300
    window_seconds: int = 15 * 60
    # Registrations admitted per client address per hour (each costs a hash).
    registrations_per_hour: int = 30
    # Refused refresh tokens per client address in the window.
    refresh_failures: int = 30


class SignInKeys(msgspec.Struct, frozen=True):
    account: ThrottleKey
    pair: ThrottleKey
    address: ThrottleKey
    alert: ThrottleKey

    @property
    def counted(self) -> list[ThrottleKey]:
        return [self.account, self.pair, self.address]


def sign_in_keys(policy: SignInPolicy, email: str, address: str | None) -> SignInKeys:
    account = email.casefold()
    address = address or UNKNOWN_ADDRESS
    window = policy.window_seconds
    return SignInKeys(
        account=ThrottleKey("login.account", subject(account), UNLIMITED, window),
        pair=ThrottleKey("login.pair", subject(account, address), policy.pair_failures, window),
        address=ThrottleKey("login.address", subject(address), policy.address_failures, window),
        # Admitted once per window: the owner gets one notice, not one per guess.
        alert=ThrottleKey("login.alert", subject(account), 1, window),
    )


def delay_seconds(policy: SignInPolicy, account_failures: int) -> int:
    """The wait a failing client owes after the account's latest failure."""
    if account_failures < policy.delay_after:
        return 0
    return min(2 ** (account_failures - policy.delay_after), policy.max_delay_seconds)


def progressive_delay(policy: SignInPolicy, keys: SignInKeys, now: datetime) -> Gate:
    def gate(counts: Mapping[tuple[str, str], KeyCount]) -> None:
        account = counts[(keys.account.scope, keys.account.subject)]
        pair = counts[(keys.pair.scope, keys.pair.subject)]
        if pair.attempts == 0 or account.latest is None:
            return  # this client has not been failing: never delayed
        wait = delay_seconds(policy, account.attempts)
        until = account.latest + timedelta(seconds=wait)
        if wait and now < until:
            raise RateLimited(
                "Too many failed sign-in attempts on this account; wait before trying again.",
                retry_after_seconds=int((until - now).total_seconds()) + 1,
                limit=policy.delay_after,
                window_seconds=policy.window_seconds,
            )

    return gate


def registration_key(policy: SignInPolicy, address: str | None) -> ThrottleKey:
    return ThrottleKey(
        "register.address", subject(address or UNKNOWN_ADDRESS), policy.registrations_per_hour, 3600
    )


def refresh_key(policy: SignInPolicy, address: str | None) -> ThrottleKey:
    return ThrottleKey(
        "refresh.address",
        subject(address or UNKNOWN_ADDRESS),
        policy.refresh_failures,
        policy.window_seconds,
    )
