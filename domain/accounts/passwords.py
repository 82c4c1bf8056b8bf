"""Password rules (NIST SP 800-63B / OWASP): a minimum length, a generous maximum,
no composition rules, and a refusal of passwords attackers try first. Hashing is a
port: the domain never sees the algorithm, only "matches" and "needs a new hash"."""

from __future__ import annotations

import unicodedata

import msgspec

from domain.errors import FieldProblem, WeakPassword

MIN_PASSWORD_LENGTH = 8
# Long enough for any passphrase or manager-generated secret; bounded so one
# request cannot make the hasher chew on megabytes.
MAX_PASSWORD_LENGTH = 4096


def normalise_password(password: str) -> str:
    """NFKC, as SP 800-63B advises, so the same passphrase typed on two keyboards
    (composed or decomposed accents, full-width digits) is the same secret."""
    return unicodedata.normalize("NFKC", password)


class PasswordPolicy(msgspec.Struct, frozen=True):
    """`common` holds lower-cased passwords from a breach-frequency corpus."""

    common: frozenset[str]

    def check(self, password: str, *, email: str) -> None:
        """Raises WeakPassword naming the `password` field and the reason."""
        reason = self.problem(password, email=email)
        if reason is not None:
            raise WeakPassword(
                "Choose another password: " + reason + ".",
                errors=[FieldProblem(field="password", message=reason)],
            )

    def problem(self, password: str, *, email: str) -> str | None:
        password = normalise_password(password)
        if len(password) < MIN_PASSWORD_LENGTH:
            return f"must be at least {MIN_PASSWORD_LENGTH} characters long"
        if len(password) > MAX_PASSWORD_LENGTH:
            return f"must be at most {MAX_PASSWORD_LENGTH} characters long"
        folded = password.casefold()
        if folded in self.common:
            return "is one of the most commonly used passwords, which attackers try first"
        if folded == email.casefold() or folded.strip() == email.casefold():
            return "must not be the same as the email address"
        return None


class PasswordCheck(msgspec.Struct, frozen=True):
    matches: bool
    needs_rehash: bool = False
