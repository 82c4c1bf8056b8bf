"""Every route the service exposes. Each feature module adds its handlers here."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from api.routes import (
        accounts,
        audit,
        consents,
        erasure,
        health,
        imaging,
        links,
        local_blobs,
        me,
        records,
        uploads,
        webhooks,
    )

    return [
        health.healthz,
        health.readyz,
        links.create_link,
        links.list_links,
        links.get_link,
        links.get_link_qr,
        links.revoke_link,
        webhooks.receive_webhook,
        accounts.register,
        accounts.login,
        accounts.refresh,
        accounts.logout,
        accounts.jwks,
        me.get_me,
        erasure.erase_account,
        local_blobs.put_local_blob,
        local_blobs.get_local_blob,
        records.list_records,
        records.get_record,
        records.create_record,
        records.export_records,
        imaging.list_imaging,
        uploads.create_upload,
        uploads.complete_upload,
        uploads.get_record_content,
        consents.list_consents,
        consents.revoke_consent,
        audit.list_audit,
        audit.verify_audit,
    ]
