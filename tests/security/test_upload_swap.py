"""Item: an upload could be swapped after its check.

Before: the PUT URL stayed valid for up to 15 minutes after `complete`, so other
bytes (same type, same size) could replace the checked file. Now `complete` moves
the object to a key no upload URL can write before checking it: the local store
refuses any later write to the upload's key (403), and on S3 the copy is kept and
the uploaded object deleted, so a later PUT lands on an object nothing reads.
Both blob stores are tested."""

from __future__ import annotations

from tests.conftest import register_patient, settings_for
from tests.integration.test_uploads import (  # noqa: F401 - `stack` is a fixture
    PDF,
    Stack,
    complete,
    download,
    put_file,
    stack,
)

SWAPPED = PDF.replace(bytes(range(256)), bytes(reversed(range(256))), 1)


async def test_put_through_the_same_url_after_complete__never_replaces_the_checked_file(
    stack: Stack,  # noqa: F811
):
    assert len(SWAPPED) == len(PDF) and SWAPPED != PDF
    patient = await register_patient(stack.client)
    started = await put_file(stack, patient, "report.pdf", "application/pdf", PDF)
    completed = await complete(stack, patient, started["id"])
    assert completed.status_code == 201, completed.text
    record_id = completed.json()["id"]

    swap = await stack.http.request(
        started["method"], started["uploadUrl"], headers=started["headers"], content=SWAPPED
    )
    if stack.kind == "local":
        assert swap.status_code == 403, swap.text
        assert swap.json()["type"].endswith("/blob-url-refused")
    # Whatever the store answered, the record's file is the one that was checked.
    assert (await download(stack, patient, record_id)).content == PDF
    again = await complete(stack, patient, started["id"])
    assert again.status_code == 200 and again.json()["id"] == record_id
    assert (await download(stack, patient, record_id)).content == PDF


async def test_complete__leaves_no_object_under_the_upload_url_key(
    stack: Stack,  # noqa: F811
    settings,
):
    from infra.blobs.factory import open_blob_store

    patient = await register_patient(stack.client)
    started = await put_file(stack, patient, "report.pdf", "application/pdf", PDF)
    assert (await complete(stack, patient, started["id"])).status_code == 201
    store_settings = settings_for(
        settings.database_url, settings.data_dir, stack.s3.env() if stack.s3 else None
    )
    store = await open_blob_store(store_settings, None)  # type: ignore[arg-type]
    try:
        prefix = f"patients/{patient.id}/"
        assert await store.stat(f"{prefix}uploads/{started['id']}") is None
        final = await store.stat(f"{prefix}files/{started['id']}")
        assert final is not None and final.size == len(PDF)
    finally:
        await store.close()
