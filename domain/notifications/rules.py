"""What notifies, as pure functions from facts to `NewNotification`s. Each names
its occurrence in a dedupe key, so emitting twice (a scan run twice, two workers
racing, a retried transaction) tells the patient once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from domain.medications.refill import Medication
from domain.notifications.model import NewNotification

RESULT_TYPES = frozenset({"Observation", "DiagnosticReport"})
FINAL_STATUSES = frozenset({"final", "amended", "corrected"})
# v3 ObservationInterpretation codes that mean "not normal".
_ABNORMAL_CODES = frozenset(
    {"A", "AA", "H", "HH", "HU", "L", "LL", "LU", ">", "<", "POS", "DET", "R", "RR", "W", "CAR"}
)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def is_abnormal(resource: dict[str, Any]) -> bool:
    """Flagged by its interpretation, or a quantity outside its reference range."""
    for concept in resource.get("interpretation") or []:
        for coding in (concept or {}).get("coding") or []:
            if isinstance(coding, dict) and str(coding.get("code", "")).upper() in _ABNORMAL_CODES:
                return True
    quantity = resource.get("valueQuantity")
    value = _decimal(quantity.get("value")) if isinstance(quantity, dict) else None
    if value is None:
        return False
    for reference in resource.get("referenceRange") or []:
        if not isinstance(reference, dict):
            continue
        low = _decimal((reference.get("low") or {}).get("value"))
        high = _decimal((reference.get("high") or {}).get("value"))
        if (low is not None and value < low) or (high is not None and value > high):
            return True
    return False


def is_final_result(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") in RESULT_TYPES and resource.get("status") in FINAL_STATUSES


def new_results(
    hospital_id: UUID, hospital_name: str, delivery_key: str, resources: Iterable[dict[str, Any]]
) -> NewNotification | None:
    """One notification per delivery, however many results it holds: how many
    and how many flagged, never which or their values."""
    results = [r for r in resources if is_final_result(r)]
    if not results:
        return None
    abnormal = sum(1 for r in results if is_abnormal(r))
    return NewNotification(
        kind="new-results",
        dedupe_key=f"results:{hospital_id}:{delivery_key}",
        params={
            "hospital": hospital_name,
            "hospitalId": str(hospital_id),
            "count": len(results),
            "abnormal": abnormal,
        },
        abnormal=abnormal > 0,
    )


def _medication_params(medication: Medication) -> dict[str, Any]:
    return {
        "medication": medication.name or "",
        "medicationId": str(medication.record_id),
        "runOutOn": medication.run_out_on.isoformat() if medication.run_out_on else None,
    }


def refill_reminders(
    medications: Iterable[Medication], *, today: date, lead_days: int
) -> list[NewNotification]:
    """A refill reminder N days before the supply runs out, and another on the day
    (only that one, if the first moment we see it is the day itself or later);
    "ask your doctor to renew" once per prescription and fill count."""
    out: list[NewNotification] = []
    for medication in medications:
        run_out = medication.run_out_on
        if medication.state == "refill-due" and run_out is not None:
            if today >= run_out:
                out.append(
                    NewNotification(
                        kind="refill-due",
                        dedupe_key=f"refill:{medication.record_id}:{run_out}:day",
                        params={**_medication_params(medication), "onTheDay": True},
                    )
                )
            elif today >= run_out - timedelta(days=lead_days):
                out.append(
                    NewNotification(
                        kind="refill-due",
                        dedupe_key=f"refill:{medication.record_id}:{run_out}:lead",
                        params=_medication_params(medication),
                    )
                )
        elif medication.state == "renewal-needed":
            out.append(
                NewNotification(
                    kind="renewal-needed",
                    dedupe_key=(
                        f"renewal:{medication.record_id}:{medication.fills_used}:"
                        f"{medication.valid_until}"
                    ),
                    params=_medication_params(medication),
                )
            )
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def share_accessed(share_id: UUID, label: str | None, recipient: str) -> list[NewNotification]:
    """Every access of a share yields these two; the keys make the first opening
    and each new recipient notify once, so the caller need not know which it is."""
    name = recipient.strip()[:100] or "?"
    return [
        NewNotification(
            kind="share-opened",
            dedupe_key=f"share-opened:{share_id}",
            params={"shareId": str(share_id), "label": label or ""},
        ),
        NewNotification(
            kind="share-recipient",
            dedupe_key=f"share-recipient:{share_id}:{_digest(name.casefold())}",
            params={"shareId": str(share_id), "label": label or "", "recipient": name},
        ),
    ]


def device_fingerprint(user_agent: str | None) -> bytes:
    """What we can tell a device by without tracking it: its user agent."""
    return hashlib.sha256((user_agent or "").strip().encode()).digest()


def describe_device(user_agent: str | None) -> str:
    text = (user_agent or "").strip()
    return text[:80] if text else "unknown"


def new_sign_in(fingerprint: bytes, user_agent: str | None) -> NewNotification:
    return NewNotification(
        kind="new-sign-in",
        dedupe_key=f"sign-in:{fingerprint.hex()}",
        params={"device": describe_device(user_agent)},
    )
