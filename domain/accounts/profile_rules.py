"""Profile values a patient may choose: language and time zone."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from domain.accounts.mail_texts import DEFAULT_LOCALE, SUPPORTED_LOCALES
from domain.errors import FieldProblem, InvalidInput

DEFAULT_TIME_ZONE = "Asia/Shanghai"


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validated_locale(raw: str, *, field: str = "locale") -> str:
    if raw not in SUPPORTED_LOCALES:
        raise InvalidInput(
            "The language is not supported.",
            errors=[
                FieldProblem(field=field, message="must be one of " + ", ".join(SUPPORTED_LOCALES))
            ],
        )
    return raw


def validated_time_zone(raw: str, *, field: str = "timeZone") -> str:
    # Membership in the IANA list, never a file look-up with the caller's string.
    if raw not in _time_zones():
        raise InvalidInput(
            "The time zone is not known.",
            errors=[
                FieldProblem(field=field, message="must be an IANA time zone such as Asia/Shanghai")
            ],
        )
    return raw


def locale_from_accept_language(header: str | None) -> str:
    """The first supported language the client prefers (by q-value), else English.
    Any Chinese (zh, zh-CN, zh-Hans, zh-SG) gets Simplified Chinese."""
    if not header:
        return DEFAULT_LOCALE
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        choices.append((-quality, position, tag.strip().lower()))
    for negative_quality, _, tag in sorted(choices):
        if negative_quality >= 0:
            break
        if tag == "zh" or (tag.startswith("zh-") and tag not in ("zh-tw", "zh-hk", "zh-hant")):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-"):
            return "en"
    return DEFAULT_LOCALE
