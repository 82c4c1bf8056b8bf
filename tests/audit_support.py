"""The patient's app as the audit tests play it: it keeps the last checkpoint it
saw and the leaf hashes of the events it was shown, and checks the log later with
its own code: signatures with PyNaCl (not the library that signed), proofs with
the RFC 9162 verifier that passes the published vectors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import nacl.exceptions
import nacl.signing

from domain.audit.merkle import ProofError, verify_consistency, verify_inclusion


def open_note(note: str, verifier_key: str) -> tuple[int, bytes]:
    """(tree size, root) of a C2SP signed checkpoint, checked with PyNaCl."""
    name, key_id_hex, encoded = verifier_key.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 1 and len(raw) == 33
    public_key = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4].hex() == key_id_hex
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    origin, size, root, _ = body.split("\n")
    assert origin == name
    verified = False
    for line in signatures.strip("\n").split("\n"):
        signer, blob = line.removeprefix("\u2014 ").split(" ")
        blob = base64.b64decode(blob)
        if signer == name and blob[:4].hex() == key_id_hex:
            nacl.signing.VerifyKey(public_key).verify(body.encode(), blob[4:])
            verified = True
    assert verified, "no signature by the log's key"
    return int(size), base64.b64decode(root)


class PatientApp:
    def __init__(self, client, patient):
        self.client = client
        self.patient = patient
        self.verifier_key: str | None = None
        self.kept_note: str | None = None
        self.remembered: dict[int, bytes] = {}

    async def visit(self) -> None:
        """Looks at the history, checks it, and keeps what it saw."""
        key = (await self.client.get("/.well-known/phr-audit-log")).json()
        self.verifier_key = key["verifierKey"]
        assert await self.check() == []
        note = (await self.client.get("/v1/audit/checkpoint")).text
        size, _ = open_note(note, self.verifier_key)
        items = (await self.client.get("/v1/audit?limit=200", headers=self.patient.headers)).json()[
            "items"
        ]
        self.remembered = {
            i["leafIndex"]: base64.b64decode(i["leafHash"])
            for i in items
            if i["leafIndex"] is not None and i["leafIndex"] < size
        }
        self.kept_note = note

    async def check(self) -> list[str]:
        """What the app finds wrong with the log since its last visit."""
        note = (await self.client.get("/v1/audit/checkpoint")).text
        try:
            size, root = open_note(note, self.verifier_key)
        except (AssertionError, nacl.exceptions.BadSignatureError, ValueError):
            return ["checkpoint-signature"]
        if self.kept_note is None:
            return []
        kept_size, kept_root = open_note(self.kept_note, self.verifier_key)
        if size < kept_size:
            return ["log-truncated"]
        # Inclusions come a page at a time; a small page makes the app follow them.
        pages: list[dict] = []
        query = {"from": kept_size, "to": size, "limit": 2}
        while True:
            response = await self.client.get(
                "/v1/audit/proof", params=query, headers=self.patient.headers
            )
            if response.status_code != 200:
                return [f"no-proof-{response.status_code}"]
            pages.append(response.json())
            if pages[-1]["nextAfter"] is None:
                break
            query["after"] = pages[-1]["nextAfter"]
        proof = pages[0]
        for page in pages:
            assert open_note(page["checkpoint"], self.verifier_key) == (size, root)
        found: list[str] = []
        if kept_size:
            try:
                if proof["consistency"] is None:
                    raise ProofError("no consistency proof")
                verify_consistency(
                    kept_size, size, kept_root, root,
                    [base64.b64decode(h) for h in proof["consistency"]],
                )  # fmt: skip
            except ProofError:
                found.append("log-rewritten")
        inclusions = {i["leafIndex"]: i for page in pages for i in page["inclusions"]}
        for index, leaf in sorted(self.remembered.items()):
            got = inclusions.get(index)
            if got is None:
                found.append(f"missing-{index}")
                continue
            if base64.b64decode(got["leafHash"]) != leaf:
                found.append(f"altered-{index}")
                continue
            try:
                verify_inclusion(
                    index, size, leaf, [base64.b64decode(h) for h in got["path"]], root
                )
            except ProofError:
                found.append(f"not-in-tree-{index}")
        return found


async def seal_everything(services, conn, timeout: float = 20) -> None:
    """Runs the sequencer until every committed event is sealed. Other test runs on
    the same server may hold transactions open that keep the horizon back a while."""
    deadline = time.monotonic() + timeout
    while True:
        await services.transparency_log.seal()
        unsealed = await conn.fetchval(
            "SELECT count(*) FROM audit_event e "
            "WHERE NOT EXISTS (SELECT 1 FROM audit_leaf l WHERE l.event_id = e.id)"
        )
        if unsealed == 0:
            return
        assert time.monotonic() < deadline, f"{unsealed} events still unsealed"
        await asyncio.sleep(0.05)
