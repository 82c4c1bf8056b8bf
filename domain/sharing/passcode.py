"""The passcode: a lifetime cap on wrong guesses, not a rate.

Five wrong passcodes over the link's whole life disable it for good. The cap must
hold under parallel guesses, so an attempt is *reserved* (the counter decremented
atomically, and committed) before the passcode is checked, and given back only
when the passcode was right: twenty parallel guesses get at most five checks."""

from __future__ import annotations

from domain.errors import AuthenticationFailed, FieldProblem, InvalidInput

MAX_ATTEMPTS = 5
MIN_LENGTH = 4
MAX_LENGTH = 64


class WrongPasscode(AuthenticationFailed):
    """SHL's 401 for a wrong passcode, with what is left of the lifetime cap."""

    kind = "wrong-passcode"
    title = "The passcode is not correct"

    def __init__(self, remaining_attempts: int):
        super().__init__(
            f"The passcode is not correct; {remaining_attempts} attempts remain."
            if remaining_attempts
            else "The passcode is not correct; the link is now disabled."
        )
        self.remaining_attempts = remaining_attempts


def check_passcode(passcode: str | None) -> str | None:
    if passcode is None:
        return None
    if not MIN_LENGTH <= len(passcode) <= MAX_LENGTH or any(ord(c) < 0x20 for c in passcode):
        raise InvalidInput(
            "The passcode is not acceptable.",
            errors=[
                FieldProblem(
                    "passcode",
                    f"{MIN_LENGTH} to {MAX_LENGTH} characters, no control characters",
                )
            ],
        )
    return passcode
