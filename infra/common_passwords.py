"""The most common passwords, from the breach-frequency list that ships with zxcvbn
(Dropbox's estimator; the list is ranked by how often each password was seen)."""

from __future__ import annotations

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

TOP_N = 10_000


@cache
def common_passwords(top_n: int = TOP_N) -> frozenset[str]:
    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"][:top_n])
