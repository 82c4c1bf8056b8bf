"""GET /v1/hospitals: the directory for the app's hospital picker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

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


def _phr(database_dsn: str, data_dir, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=database_dsn, PHR_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )


async def test_phr_hospital_add_with_city_and_list(database_dsn, data_dir, client, patient):
    tag = uuid.uuid4().hex[:8]
    added = _phr(database_dsn, data_dir, "hospital", "add", "--name", f"华西医院 {tag}",
                 "--city", "成都")  # fmt: skip
    assert added.returncode == 0, added.stderr
    hospital = json.loads(added.stdout)
    assert hospital["name"] == f"华西医院 {tag}" and hospital["city"] == "成都"
    assert hospital["webhookSecret"].startswith("whsec_")

    listed = _phr(database_dsn, data_dir, "hospital", "list")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    mine = [e for e in entries if e["id"] == hospital["id"]]
    assert len(mine) == 1
    assert (mine[0]["name"], mine[0]["city"]) == (f"华西医院 {tag}", "成都")
    assert mine[0]["createdAt"].endswith("Z")
    assert all("webhookSecret" not in e for e in entries)

    # The app finds it by its city too.
    response = await client.get("/v1/hospitals", params={"q": "成都"}, headers=patient.headers)
    assert hospital["id"] in [item["id"] for item in response.json()["items"]]
    found = next(i for i in response.json()["items"] if i["id"] == hospital["id"])
    assert found["city"] == "成都"


async def test_every_hospital_id_the_api_returns_comes_with_its_name(client, settings, patient):
    """Links, the timeline (also when filtered by hospital) and a record's source."""
    from tests.records_support import bundle, observation

    name = f"四川大学华西医院 {uuid.uuid4().hex[:6]}"
    hospital = await new_hospital(client, settings, name=name)
    link = await linked(client, patient, hospital, "MRN-NAMES")
    pushed = await hospital.push("MRN-NAMES", bundle(observation("obs-names")))
    assert pushed.status_code == 200, pushed.text

    links = (await client.get("/v1/links", headers=patient.headers)).json()
    assert [(x["hospitalId"], x["hospitalName"]) for x in links] == [(hospital.id, name)]
    one = (await client.get(f"/v1/links/{link['id']}", headers=patient.headers)).json()
    assert one["hospitalName"] == name

    timeline = (
        await client.get("/v1/records", params={"hospitalId": hospital.id}, headers=patient.headers)
    ).json()["items"]
    assert timeline and all(item["source"]["hospitalName"] == name for item in timeline)
    record = (await client.get(f"/v1/records/{timeline[0]['id']}", headers=patient.headers)).json()
    assert record["source"] == {"kind": "hospital", "hospitalId": hospital.id, "hospitalName": name}
