"""What a notification says, in the patient's language. Rendered when read, so a
change of language applies to the whole inbox. Push carries only `push_title`."""

from __future__ import annotations

from typing import Any

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "new-results": ("New results", "New results from {hospital}."),
        "refill-due": ("Refill due", "{medication} runs out on {runOutOn}. Time to refill."),
        "refill-due-today": ("Refill due today", "{medication} runs out today. Refill it now."),
        "renewal-needed": (
            "Ask your doctor to renew",
            "{medication} has no refills left. Ask your doctor to renew it.",
        ),
        "share-opened": ("Your share was opened", "Your share \u201c{label}\u201d was opened."),
        "share-recipient": (
            "New viewer of your share",
            "{recipient} opened your share \u201c{label}\u201d.",
        ),
        "new-sign-in": (
            "New sign-in",
            "Your account was signed in from a new device ({device}). "
            "If this was not you, change your password.",
        ),
        "push-title": ("You have a new notification", ""),
    },
    "zh-Hans": {
        "new-results": ("新的检查结果", "{hospital}有新的检查结果。"),
        "refill-due": ("需要续药", "{medication}将于{runOutOn}用完，请及时续药。"),
        "refill-due-today": ("今天需要续药", "{medication}今天用完，请尽快续药。"),
        "renewal-needed": ("请医生续开处方", "{medication}已无剩余续药次数，请联系医生续开处方。"),
        "share-opened": ("您的分享已被打开", "您的分享“{label}”已被打开。"),
        "share-recipient": ("您的分享有新的查看者", "{recipient}打开了您的分享“{label}”。"),
        "new-sign-in": (
            "新设备登录",
            "您的账户在新设备（{device}）上登录。如果不是您本人，请修改密码。",
        ),
        "push-title": ("您有一条新通知", ""),
    },
}

_ABNORMAL = {
    "en": " {abnormal} flagged outside the normal range.",
    "zh-Hans": "其中{abnormal}项标记为异常。",
}
_COUNT = {"en": " ({count} new)", "zh-Hans": "（{count}项）"}


def language(locale: str | None) -> str:
    """zh, zh-CN, zh-Hans, zh_Hans_CN... read Simplified Chinese; anything else English."""
    if locale and locale.replace("_", "-").lower().split("-")[0] == "zh":
        return "zh-Hans"
    return "en"


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "\u2014"


def render(kind: str, params: dict[str, Any], locale: str | None) -> tuple[str, str]:
    """(title, body) for the inbox."""
    lang = language(locale)
    key = "refill-due-today" if kind == "refill-due" and params.get("onTheDay") else kind
    title, body = _TEXTS[lang].get(key, _TEXTS[lang]["push-title"])
    values = _Missing({k: v for k, v in params.items() if v is not None})
    body = body.format_map(values)
    if kind == "new-results":
        if params.get("count", 0) > 1:
            body = (
                body.rstrip(".\u3002")
                + _COUNT[lang].format_map(values)
                + ("." if lang == "en" else "\u3002")
            )
        if params.get("abnormal"):
            body += _ABNORMAL[lang].format_map(values)
    return title, body


def push_title(locale: str | None) -> str:
    """The one title push shows: it says nothing about health."""
    return _TEXTS[language(locale)]["push-title"][0]
