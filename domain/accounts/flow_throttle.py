"""How the account flows (registration, address verification and its resend,
password reset and change, email change) are throttled, on the one throttle of
`domain.throttle` that sign-in uses too.

- A request that sends mail counts per email and per client address, per flow:
  nobody floods an inbox or probes many addresses from one place.
- A mailed code checked counts per email and per client address across codes and
  flows, and is forgotten when it was right: wrong guesses are limited, however
  many codes are asked for.
- A guess at the current password (a password or email change) counts on the
  sign-in keys of the account: one budget of password guesses, the same
  progressive delays, a stolen access token buys no more of them.
Over a limit: 429 with Retry-After, as for sign-in."""

from __future__ import annotations

import msgspec

from domain.accounts.login_throttle import UNKNOWN_ADDRESS
from domain.throttle import ThrottleKey, subject


class AccountFlowLimits(msgspec.Struct, frozen=True, kw_only=True):
    mail_per_email: int = 5
    mail_per_address: int = 30
    mail_window_seconds: int = 15 * 60
    code_failures_per_email: int = 10
    code_failures_per_address: int = 50
    code_window_seconds: int = 15 * 60


def mail_request_keys(
    limits: AccountFlowLimits, flow: str, email: str, address: str | None
) -> list[ThrottleKey]:
    window = limits.mail_window_seconds
    return [
        ThrottleKey(f"mail.{flow}.email", subject(email.casefold()), limits.mail_per_email, window),
        ThrottleKey(
            f"mail.{flow}.address",
            subject(address or UNKNOWN_ADDRESS),
            limits.mail_per_address,
            window,
        ),
    ]


def code_check_keys(
    limits: AccountFlowLimits, email: str, address: str | None
) -> list[ThrottleKey]:
    window = limits.code_window_seconds
    return [
        ThrottleKey(
            "code.email", subject(email.casefold()), limits.code_failures_per_email, window
        ),
        ThrottleKey(
            "code.address",
            subject(address or UNKNOWN_ADDRESS),
            limits.code_failures_per_address,
            window,
        ),
    ]
