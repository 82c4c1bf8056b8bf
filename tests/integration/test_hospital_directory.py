"""GET /v1/hospitals: the directory for the app's hospital picker."""

from __future__ import annotations

import uuid

from tests.hospital_support import linked, new_hospital


async def test_search_by_chinese_or_english_name_with_keyset_pages(client, settings, patient):
    tag = uuid.uuid4().hex[:8]
    names = [
        f"四川大学华西医院 West China Hospital {tag}",
        f"北京协和医院 Peking Union {tag}",
        f"复旦大学附属中山医院 Zhongshan Hospital {tag}",
    ]
    for name in names:
        await new_hospital(client, settings, name=name)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"q": tag, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/hospitals", params=params, headers=patient.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["name"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == sorted(names)

    for query, expected in (
        ("华西", names[0]),
        ("peking union", names[1]),
        ("ZHONGSHAN", names[2]),
    ):
        response = await client.get(
            "/v1/hospitals", params={"q": f"{query}"}, headers=patient.headers
        )
        found = [item["name"] for item in response.json()["items"]]
        assert expected in found, (query, found)
        assert all(tag in name or query.lower() in name.lower() for name in found)


async def test_linked_is_true_only_for_the_callers_live_links(
    client, settings, patient, other_patient
):
    tag = uuid.uuid4().hex[:8]
    hospital = await new_hospital(client, settings, name=f"华西医院 {tag}")
    await linked(client, patient, hospital, f"MRN-{tag}")

    mine = (await client.get("/v1/hospitals", params={"q": tag}, headers=patient.headers)).json()
    theirs = (
        await client.get("/v1/hospitals", params={"q": tag}, headers=other_patient.headers)
    ).json()
    assert [(i["id"], i["linked"]) for i in mine["items"]] == [(hospital.id, True)]
    assert [(i["id"], i["linked"]) for i in theirs["items"]] == [(hospital.id, False)]


async def test_wildcards_in_q_are_matched_literally(client, settings, patient):
    tag = uuid.uuid4().hex[:8]
    await new_hospital(client, settings, name=f"Plain {tag}")
    response = await client.get(
        "/v1/hospitals", params={"q": f"%{tag[:2]}_"}, headers=patient.headers
    )
    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_directory_needs_a_token_and_refuses_a_forged_cursor(client, patient):
    assert (await client.get("/v1/hospitals")).status_code == 401
    response = await client.get(
        "/v1/hospitals", params={"cursor": "not-a-cursor"}, headers=patient.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
