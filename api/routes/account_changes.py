"""Account routes beyond sign-in: verifying the address, resetting and changing the
password, the profile, and moving the account to another address."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import patch, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from api.current_patient import CurrentPatient
from api.deps import PasswordChangesDep, ProfileChangesDep, RegistrationDep, RequestContextDep
from api.routes.accounts import Accepted, Email, Locale, Password, Profile, TimeZone
from domain.accounts.passwords import MAX_PASSWORD_LENGTH

Code = Annotated[
    str,
    msgspec.Meta(
        max_length=32,
        description="The 8-character code from the mail (ABCD-EFGH; case and hyphen do not matter)",
    ),
]
NewPassword = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_PASSWORD_LENGTH,
        description="At least 8 characters; not a commonly used password, not the email.",
    ),
]


class VerifyEmailRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    code: Code


class EmailOnly(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email


class PasswordResetConfirm(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    code: Code
    new_password: NewPassword


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    current_password: Password
    new_password: NewPassword


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    display_name: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    locale: Locale | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET


class EmailChangeRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    new_email: Email
    current_password: Password


class CodeOnly(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    code: Code


_SENT = Accepted(
    status="accepted",
    detail="If the address has an account that needs it, a message is on its way.",
)


@post(
    "/v1/auth/verify-email",
    operation_id="verifyEmail",
    summary="Confirm an email address with the code mailed at registration",
    tags=["auth"],
    status_code=HTTP_204_NO_CONTENT,
    raises=[ValidationException, TooManyRequestsException],
)
async def verify_email(
    data: JSONBody[VerifyEmailRequest], registration: RegistrationDep, context: RequestContextDep
) -> None:
    """A code lives 30 minutes and dies after 5 wrong tries. Every refusal (wrong,
    expired, used, unknown address) is the same 422 `invalid-code`."""
    await registration.verify_email(email=data.email, code=data.code, context=context)


@post(
    "/v1/auth/verify-email/resend",
    operation_id="resendVerificationEmail",
    summary="Mail a new verification code (the old one stops working)",
    tags=["auth"],
    status_code=HTTP_202_ACCEPTED,
    raises=[ValidationException, TooManyRequestsException],
)
async def resend_verification(
    data: JSONBody[EmailOnly], registration: RegistrationDep, context: RequestContextDep
) -> Accepted:
    await registration.resend(email=data.email, context=context)
    return _SENT


@post(
    "/v1/auth/password-reset",
    operation_id="requestPasswordReset",
    summary="Mail a password reset code; answers the same for every address",
    tags=["auth"],
    status_code=HTTP_202_ACCEPTED,
    raises=[ValidationException, TooManyRequestsException],
)
async def request_password_reset(
    data: JSONBody[EmailOnly], password_changes: PasswordChangesDep, context: RequestContextDep
) -> Accepted:
    await password_changes.request_reset(email=data.email, context=context)
    return _SENT


@post(
    "/v1/auth/password-reset/confirm",
    operation_id="confirmPasswordReset",
    summary="Set a new password with the mailed code; every session ends",
    tags=["auth"],
    status_code=HTTP_204_NO_CONTENT,
    raises=[ValidationException, TooManyRequestsException, ServiceUnavailableException],
)
async def confirm_password_reset(
    data: JSONBody[PasswordResetConfirm],
    password_changes: PasswordChangesDep,
    context: RequestContextDep,
) -> None:
    """The code works once. A "your password was changed" mail goes to the address."""
    await password_changes.confirm_reset(
        email=data.email, code=data.code, new_password=data.new_password, context=context
    )


@post(
    "/v1/me/password",
    operation_id="changePassword",
    summary="Change the password; every other session ends",
    tags=["account"],
    security=[{"bearer": []}],
    status_code=HTTP_204_NO_CONTENT,
    raises=[
        ValidationException,
        NotAuthorizedException,
        PermissionDeniedException,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def change_password(
    data: JSONBody[PasswordChange],
    password_changes: PasswordChangesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> None:
    """403 `wrong-password` when the current password is not right (nothing changes);
    wrong guesses count like failed sign-ins."""
    await password_changes.change(
        patient.patient_id,
        current_password=data.current_password,
        new_password=data.new_password,
        current_session=patient.session_id,
        context=context,
    )


@patch(
    "/v1/me",
    operation_id="updateMe",
    summary="Change the display name, language or time zone",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[ValidationException, NotAuthorizedException],
)
async def update_me(
    data: JSONBody[ProfileUpdate],
    profile_changes: ProfileChangesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> Profile:
    """Only the fields sent change. `locale` is `en` or `zh-CN`; `timeZone` an IANA
    name. A refused value answers 422 naming the field."""
    account = await profile_changes.update(
        patient.patient_id,
        display_name=data.display_name,
        locale=data.locale,
        time_zone=data.time_zone,
        context=context,
    )
    return Profile.of(account)


@post(
    "/v1/me/email",
    operation_id="requestEmailChange",
    summary="Move the account to another address: a code goes to the new one",
    tags=["account"],
    security=[{"bearer": []}],
    status_code=HTTP_202_ACCEPTED,
    raises=[
        ValidationException,
        NotAuthorizedException,
        PermissionDeniedException,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def request_email_change(
    data: JSONBody[EmailChangeRequest],
    profile_changes: ProfileChangesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> Accepted:
    """Nothing changes until the code comes back (confirmEmailChange). 403
    `wrong-password` when the current password is not right."""
    await profile_changes.request_email_change(
        patient.patient_id,
        new_email=data.new_email,
        current_password=data.current_password,
        context=context,
    )
    return _SENT


@post(
    "/v1/me/email/confirm",
    operation_id="confirmEmailChange",
    summary="Confirm the new address with the code sent to it; the old address is told",
    tags=["account"],
    security=[{"bearer": []}],
    status_code=200,
    raises=[ValidationException, NotAuthorizedException, ClientException, TooManyRequestsException],
)
async def confirm_email_change(
    data: JSONBody[CodeOnly],
    profile_changes: ProfileChangesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> Profile:
    """409 when another account took the address meanwhile."""
    account = await profile_changes.confirm_email_change(
        patient.patient_id, code=data.code, context=context
    )
    return Profile.of(account)
