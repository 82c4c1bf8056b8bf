"""The mails the account service sends, in the patient's language (English and
Simplified Chinese), as plain text and HTML. A mail that carries a code also puts
it in the Subject, so the patient sees it in the phone's notification."""

from __future__ import annotations

from html import escape

from domain.mail import MailMessage

SUPPORTED_LOCALES = ("en", "zh-CN")
DEFAULT_LOCALE = "en"

_SIGNATURE = {"en": "— phr, your health record", "zh-CN": "— phr 个人健康档案"}

# kind -> locale -> (subject, body paragraphs); {code} and {minutes} are filled in.
_TEXTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "verify-email": {
        "en": (
            "{code} is your phr verification code",
            (
                "Enter this code in the phr app to confirm your email address: {code}",
                "It is valid for {minutes} minutes. If you did not create a phr account, "
                "ignore this message.",
            ),
        ),
        "zh-CN": (
            "phr 验证码：{code}",
            (
                "请在 phr 应用中输入此验证码以确认您的邮箱地址：{code}",
                "验证码 {minutes} 分钟内有效。如果您没有注册 phr 账户，请忽略此邮件。",
            ),
        ),
    },
    "registration-attempt": {
        "en": (
            "Someone tried to register with your email address",
            (
                "Someone tried to create a phr account with this email address, "
                "which already has one.",
                "If it was you, sign in instead, or reset your password if you forgot it. "
                "If it was not you, you can ignore this message: nothing was changed.",
            ),
        ),
        "zh-CN": (
            "有人尝试用您的邮箱地址注册",
            (
                "有人尝试用此邮箱地址注册 phr 账户，但该地址已有账户。",
                "如果是您本人，请直接登录；如果忘记密码，请重置密码。"
                "如果不是您本人，请忽略此邮件：您的账户没有任何变化。",
            ),
        ),
    },
    "password-reset": {
        "en": (
            "{code} is your phr password reset code",
            (
                "Enter this code in the phr app to choose a new password: {code}",
                "It is valid for {minutes} minutes and can be used once. If you did not ask "
                "to reset your password, ignore this message: your password stays as it is.",
            ),
        ),
        "zh-CN": (
            "phr 密码重置验证码：{code}",
            (
                "请在 phr 应用中输入此验证码以设置新密码：{code}",
                "验证码 {minutes} 分钟内有效，仅可使用一次。如果您没有申请重置密码，"
                "请忽略此邮件：您的密码不会改变。",
            ),
        ),
    },
    "password-changed": {
        "en": (
            "Your phr password was changed",
            (
                "The password of your phr account was just changed, and devices signed in "
                "with the old one were signed out.",
                "If you did not do this, reset your password now.",
            ),
        ),
        "zh-CN": (
            "您的 phr 密码已更改",
            (
                "您的 phr 账户密码刚刚已更改，使用旧密码登录的设备已退出登录。",
                "如果这不是您本人的操作，请立即重置密码。",
            ),
        ),
    },
    "email-change": {
        "en": (
            "{code} is your phr code to confirm this email address",
            (
                "Enter this code in the phr app to use this address for your account: {code}",
                "It is valid for {minutes} minutes. If you did not ask for this, "
                "ignore this message.",
            ),
        ),
        "zh-CN": (
            "phr 邮箱变更验证码：{code}",
            (
                "请在 phr 应用中输入此验证码，将此邮箱地址用于您的账户：{code}",
                "验证码 {minutes} 分钟内有效。如果不是您本人的操作，请忽略此邮件。",
            ),
        ),
    },
    "email-changed": {
        "en": (
            "Your phr account's email address was changed",
            (
                "Your phr account now uses a different email address; this address "
                "no longer receives its mail.",
                "If you did not do this, contact the service that runs phr for you.",
            ),
        ),
        "zh-CN": (
            "您的 phr 账户邮箱已更改",
            (
                "您的 phr 账户现已使用其他邮箱地址；此地址将不再接收该账户的邮件。",
                "如果这不是您本人的操作，请联系为您提供 phr 服务的机构。",
            ),
        ),
    },
    # Told once per throttle window when failed sign-ins reach the alert threshold.
    "sign-in-attack": {
        "en": (
            "Failed sign-ins on your phr account",
            (
                "Someone has repeatedly entered a wrong password for your phr account. "
                "Those attempts are being slowed down and refused; signing in from your "
                "own devices keeps working.",
                "If it was you, nothing needs doing. If not, make sure your password is a "
                "strong one you use nowhere else; you can reset it from the sign-in screen.",
            ),
        ),
        "zh-CN": (
            "您的 phr 账户有多次登录失败",
            (
                "有人多次为您的 phr 账户输入了错误的密码。这些尝试正在被延缓和拒绝；"
                "您在自己的设备上登录不受影响。",
                "如果是您本人，无需任何操作。如果不是，请确认您的密码足够强且未在其他地方使用；"
                "您可以在登录页面重置密码。",
            ),
        ),
    },
}

KINDS = tuple(_TEXTS)


def account_mail(
    kind: str, *, to: str, locale: str, code: str | None = None, minutes: int = 0
) -> MailMessage:
    """Raises KeyError for a kind that does not exist (a programming error)."""
    texts = _TEXTS[kind]
    locale = locale if locale in texts else DEFAULT_LOCALE
    subject, paragraphs = texts[locale]
    values = {"code": code or "", "minutes": minutes}
    subject = subject.format(**values)
    body = [p.format(**values) for p in paragraphs]
    text = "\n\n".join([*body, _SIGNATURE[locale]]) + "\n"
    lang = "zh-CN" if locale == "zh-CN" else "en"
    html_paragraphs = "".join(f"<p>{_html_paragraph(p, code)}</p>" for p in body)
    html = (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>{html_paragraphs}"
        f'<p style="color:#666">{escape(_SIGNATURE[locale])}</p></body></html>'
    )
    return MailMessage(to=to, subject=subject, text=text, html=html, kind=kind)


def _html_paragraph(paragraph: str, code: str | None) -> str:
    escaped = escape(paragraph)
    if code:
        # The code stands out and is easy to select on a phone.
        escaped = escaped.replace(
            escape(code),
            f'<strong style="font-size:1.4em;letter-spacing:.1em">{escape(code)}</strong>',
        )
    return escaped
