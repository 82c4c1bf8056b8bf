"""What the fault tests need around a running `phr serve`: a patient and a linked
hospital made through the public API and the operator CLI, and steady traffic
from threads that records every answer (status, time taken, Retry-After,
content type) while the test breaks something underneath."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from tests.e2e.service import REPO_ROOT, Service, service_env
from tests.mail_support import code_from_folder

PASSWORD = "correct horse fault battery"
PROBLEM = "application/problem+json"


def phr_cli(service: Service, args: list[str], env: dict[str, str] | None = None) -> dict:
    port = int(service.base_url.rsplit(":", 1)[1])
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO_ROOT,
        env=service_env(service.data_dir, port, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@dataclass
class Answer:
    kind: str
    status: int  # -1: no HTTP answer at all
    seconds: float
    retry_after: str | None
    content_type: str
    at: float


@dataclass
class World:
    service: Service
    headers: dict[str, str]
    hospital_id: str
    secret: str
    patient_ref: str
    record_id: str


def signed(secret: str, body: bytes, msg_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "content-type": "application/json",
    }


def observation(source_id: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": source_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "effectiveDateTime": "2025-03-01T08:00:00Z",
        "valueQuantity": {"value": 61, "unit": "/min"},
    }


def push_body(patient_ref: str, source_id: str) -> bytes:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation(source_id)}],
    }
    return json.dumps(
        {"type": "records.push", "data": {"patientRef": patient_ref, "bundle": bundle}}
    ).encode()


def make_world(service: Service, cli_env: dict[str, str] | None = None) -> World:
    hospital = phr_cli(service, ["hospital", "add", "--name", "Fault General"], cli_env)
    email = f"fault-{uuid.uuid4().hex[:10]}@example.org"
    with service.client() as client:
        made = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert made.status_code == 202, made.text
        # The code comes by mail: an .eml file written by the worker inside `phr serve`.
        code = code_from_folder(service.data_dir / "mail", email)
        verified = client.post("/v1/auth/verify-email", json={"email": email, "code": code})
        assert verified.status_code == 204, verified.text
        tokens = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
        link = client.post("/v1/links", json={"hospitalId": hospital["id"]}, headers=headers)
        assert link.status_code == 201, link.text
        ref = "MRN-FAULT-1"
        body = json.dumps(
            {"type": "patient.linked", "data": {"code": link.json()["code"], "patientRef": ref}}
        ).encode()
        url = f"/v1/hospitals/{hospital['id']}/webhook"
        linked = client.post(
            url, content=body, headers=signed(hospital["webhookSecret"], body, "l1")
        )
        assert linked.status_code == 200, linked.text
        first = push_body(ref, "obs-first")
        pushed = client.post(
            url, content=first, headers=signed(hospital["webhookSecret"], first, "p0")
        )
        assert pushed.status_code == 200, pushed.text
        records = client.get("/v1/records", headers=headers).json()["items"]
    return World(service, headers, hospital["id"], hospital["webhookSecret"], ref, records[0]["id"])


@dataclass
class Traffic:
    """Readers (timeline, one record, profile) and one hospital pushing a new
    result per delivery, each delivery retried with the same webhook-id until
    it is answered 200, honouring Retry-After, as a Standard Webhooks sender does."""

    world: World
    readers: int = 2
    answers: list[Answer] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Traffic:
        for n in range(self.readers):
            self._threads.append(threading.Thread(target=self._read, args=(n,), daemon=True))
        self._threads.append(threading.Thread(target=self._push, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "traffic threads did not stop"

    def _call(
        self, client: httpx.Client, kind: str, method: str, url: str, **kw
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.request(method, url, **kw)
        except httpx.TransportError:
            response = None
        answer = Answer(
            kind,
            response.status_code if response is not None else -1,
            time.monotonic() - started,
            response.headers.get("retry-after") if response is not None else None,
            response.headers.get("content-type", "") if response is not None else "",
            time.monotonic(),
        )
        with self._lock:
            self.answers.append(answer)
        return response

    def _read(self, n: int) -> None:
        w = self.world
        paths = ["/v1/records?limit=20", f"/v1/records/{w.record_id}", "/v1/me"]
        with httpx.Client(base_url=w.service.base_url, timeout=60) as client:
            i = n
            while not self._stop.is_set():
                self._call(client, "read", "GET", paths[i % len(paths)], headers=w.headers)
                i += 1
                time.sleep(0.02)

    def _push(self) -> None:
        w = self.world
        url = f"/v1/hospitals/{w.hospital_id}/webhook"
        with httpx.Client(base_url=w.service.base_url, timeout=60) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                source_id = f"obs-during-{i}"
                body = push_body(w.patient_ref, source_id)
                for _ in range(200):  # bounded; the test stops long before
                    if self._stop.is_set():
                        self.undelivered.append(source_id)
                        return
                    response = self._call(
                        client,
                        "push",
                        "POST",
                        url,
                        content=body,
                        headers=signed(w.secret, body, f"fault-{i}"),
                    )
                    if response is not None and response.status_code == 200:
                        self.delivered.append(source_id)
                        break
                    wait = 0.2
                    if response is not None and response.headers.get("retry-after"):
                        wait = min(float(response.headers["retry-after"]), 2.0)
                    time.sleep(wait)
                else:
                    self.undelivered.append(source_id)
                    return
                time.sleep(0.05)

    def first_ok_after(self, moment: float) -> float | None:
        with self._lock:
            times = [a.at for a in self.answers if a.status == 200 and a.at > moment]
        return min(times) if times else None


def assert_only_ok_or_unavailable(
    answers: list[Answer], *, max_seconds: float, log: str = ""
) -> None:
    """Every answer a 200, or a 503 problem+json with Retry-After; none slow."""
    assert answers, "no traffic was recorded"
    wrong = [a for a in answers if a.status not in (200, 503)]
    errors = [line[-2500:] for line in log.splitlines() if '"unhandled error"' in line]
    assert not wrong, f"answers other than 200/503: {wrong[:5]}\n" + "\n".join(errors[:2])
    for a in answers:
        if a.status == 503:
            assert a.retry_after and a.retry_after.isdigit(), a
            assert a.content_type.startswith(PROBLEM), a
    slowest = max(a.seconds for a in answers)
    assert slowest < max_seconds, f"an answer took {slowest:.1f}s"


def wait_for(predicate, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def timeline_ids(world: World) -> list[str]:
    ids: list[str] = []
    cursor = None
    with world.service.client() as client:
        for _ in range(100):
            url = "/v1/records?limit=200" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(url, headers=world.headers)
            assert page.status_code == 200, page.text
            ids += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["nextCursor"]
            if cursor is None:
                return ids
    raise AssertionError("the timeline did not end")
