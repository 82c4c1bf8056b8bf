"""The patient's side of the transparency log: the latest signed checkpoint, proofs
an app checks on its own (consistency with the checkpoint it kept, inclusion of
each of the patient's events), and a yes/no verification done here for apps
that only want that.

An app that keeps the last checkpoint it saw and the leaf hashes of the events it
was shown detects any rewrite since: a truncated log has no consistency proof to
its checkpoint, an edited or swapped event hashes to another leaf whose
inclusion proof fails, and a deleted one (or a deleted history) is simply
missing from the proofs it asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from domain.access import PatientActor
from domain.audit.checkpoints import (
    Checkpoint,
    CheckpointError,
    open_signed_checkpoint,
    sign_checkpoint,
    verifier_key,
)
from domain.audit.events import RequestContext
from domain.audit.leaf_census import LeafCensus
from domain.audit.leaves import PatientLeaf, StoredCheckpoint, event_leaf_hash
from domain.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    inclusion_proof,
    needed_nodes,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from domain.audit.ports import NoteSigner, TransparencyLogStore
from domain.audited_access import authorize_audited
from domain.errors import InvalidInput, NotFound
from domain.ports import AuditLog, Clock, UnitOfWork


class Inclusion(msgspec.Struct, frozen=True):
    leaf_index: int
    event_id: int
    leaf_hash: bytes
    path: list[bytes]


class AuditProof(msgspec.Struct, frozen=True):
    checkpoint: StoredCheckpoint
    from_size: int
    # None when the stored tree cannot produce one (it was tampered with)
    consistency: list[bytes] | None
    inclusions: list[Inclusion]
    # The leaf index to ask the next page of inclusions after; None on the last.
    next_after: int | None


# A patient's history grows with every read of their record: proofs and checks go
# through it a bounded page at a time.
PROOF_PAGE_MAX = 1000
_VERIFY_CHUNK = 1000


Problem = Literal[
    "checkpoint-forged",
    "tree-altered",
    "your-checkpoint-invalid",
    "log-truncated",
    "log-rewritten",
    "leaves-missing",
    "entry-missing",
    "entry-altered",
    "not-in-tree",
]


class Finding(msgspec.Struct, frozen=True):
    problem: Problem
    leaf_index: int | None = None
    event_id: int | None = None


class Verification(msgspec.Struct, frozen=True):
    valid: bool
    checked: int
    tree_size: int
    findings: list[Finding]


class CheckpointNotPublished(NotFound):
    pass


class _Nodes:
    """Fetches exactly the stored nodes some proofs need, in one look-up."""

    def __init__(self, store: TransparencyLogStore):
        self._store = store
        self._known: dict[tuple[int, int], bytes] = {}

    async def load(self, *makers: Callable[[Callable[[int, int], bytes]], object]) -> None:
        wanted: set[tuple[int, int]] = set()
        for make in makers:
            wanted |= needed_nodes(make)
        wanted -= self._known.keys()
        if wanted:
            self._known.update(await self._store.node_hashes(wanted))

    def __call__(self, level: int, index: int) -> bytes:
        try:
            return self._known[(level, index)]
        except KeyError:
            raise ProofError(f"stored tree node ({level}, {index}) is missing") from None


class AuditTrail:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        store: TransparencyLogStore,
        audit: AuditLog,
        signer: NoteSigner,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._store = store
        self._audit = audit
        self._signer = signer
        self._clock = clock
        self._census = LeafCensus(store, clock)

    @property
    def origin(self) -> str:
        return self._signer.name

    @property
    def verifier_key(self) -> str:
        return verifier_key(self._signer.name, self._signer.public_key)

    async def checkpoint(self) -> StoredCheckpoint:
        latest = await self._store.latest_checkpoint()
        if latest is not None:
            return latest
        # Nothing sealed yet: the empty tree, signed now (nothing to store).
        empty = Checkpoint(origin=self.origin, size=0, root_hash=EMPTY_ROOT)
        return StoredCheckpoint(0, EMPTY_ROOT, sign_checkpoint(empty, self._signer))

    async def proof(
        self,
        patient: PatientActor,
        from_size: int,
        to_size: int | None,
        *,
        after_index: int = -1,
        limit: int = PROOF_PAGE_MAX,
        context: RequestContext,
    ) -> AuditProof:
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                "audit.list",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            target = (
                await self.checkpoint()
                if to_size is None
                else await self._store.checkpoint(to_size)
            )
            if target is None:
                raise CheckpointNotPublished("No checkpoint of that tree size was published.")
            if not 0 <= from_size <= target.size:
                raise InvalidInput("from must be between 0 and the tree size of `to`.")
            if not 1 <= limit <= PROOF_PAGE_MAX:
                raise InvalidInput(f"limit must be between 1 and {PROOF_PAGE_MAX}.")
            leaves = await self._store.patient_leaves(
                permit, target.size, after_index=after_index, limit=limit + 1
            )
            await self._audit.append(permit.event("AuditEvent"))
            await uow.commit()

        next_after = leaves[limit - 1].leaf_index if len(leaves) > limit else None
        leaves = leaves[:limit]
        nodes = _Nodes(self._store)
        size = target.size
        present = [leaf for leaf in leaves if leaf.event is not None]
        await nodes.load(
            *(lambda n, i=leaf.leaf_index: inclusion_proof(i, size, n) for leaf in present),
            *([lambda n: consistency_proof(from_size, size, n)] if 0 < from_size < size else []),
        )
        consistency: list[bytes] | None = []
        if 0 < from_size < size:
            try:
                consistency = consistency_proof(from_size, size, nodes)
            except ProofError:
                consistency = None
        inclusions = []
        for leaf in present:
            try:
                path = inclusion_proof(leaf.leaf_index, size, nodes)
            except ProofError:
                continue
            inclusions.append(
                Inclusion(leaf.leaf_index, leaf.event.id, _current_hash(leaf), path)  # type: ignore[union-attr]
            )
        return AuditProof(target, from_size, consistency, inclusions, next_after)

    async def verify(
        self, patient: PatientActor, previous_note: str | None, *, context: RequestContext
    ) -> Verification:
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                "audit.verified",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            await self._audit.append(permit.event("AuditEvent"))
            latest = await self.checkpoint()
            leaf_count = await self._census.leaves_below(latest.size)
            findings = await self._check_log(latest, previous_note, leaf_count)
            # The patient's leaves a chunk at a time: memory stays bounded however
            # long the history, and every chunk is read under the one permit.
            checked, after = 0, -1
            while True:
                chunk = await self._store.patient_leaves(
                    permit, latest.size, after_index=after, limit=_VERIFY_CHUNK
                )
                findings += await self._check_leaves(latest, chunk)
                checked += len(chunk)
                if len(chunk) < _VERIFY_CHUNK:
                    break
                after = chunk[-1].leaf_index
            await uow.commit()
        return Verification(
            valid=not findings, checked=checked, tree_size=latest.size, findings=findings
        )

    async def _check_log(
        self, latest: StoredCheckpoint, previous_note: str | None, leaf_count: int
    ) -> list[Finding]:
        """The log as a whole: its signature, its stored tree, its consistency with
        the caller's checkpoint, and that no leaf row is gone."""
        findings: list[Finding] = []
        size = latest.size
        try:
            signed = open_signed_checkpoint(latest.note, self.verifier_key, self._signer.verify)
            if (signed.size, signed.root_hash) != (size, latest.root_hash):
                raise CheckpointError("stored checkpoint differs from its note")
        except CheckpointError:
            findings.append(Finding("checkpoint-forged"))
        previous: Checkpoint | None = None
        if previous_note is not None:
            try:
                previous = open_signed_checkpoint(
                    previous_note, self.verifier_key, self._signer.verify
                )
            except CheckpointError:
                findings.append(Finding("your-checkpoint-invalid"))
        nodes = _Nodes(self._store)
        makers = [lambda n: root_hash(size, n)]
        if previous is not None and 0 < previous.size < size:
            makers.append(lambda n: consistency_proof(previous.size, size, n))
        await nodes.load(*makers)
        try:
            if root_hash(size, nodes) != latest.root_hash:
                findings.append(Finding("tree-altered"))
        except ProofError:
            findings.append(Finding("tree-altered"))
        if previous is not None and previous.size > size:
            findings.append(Finding("log-truncated"))
        elif previous is not None and previous.size > 0:
            try:
                proof = consistency_proof(previous.size, size, nodes)
                verify_consistency(previous.size, size, previous.root_hash, latest.root_hash, proof)
            except ProofError:
                findings.append(Finding("log-rewritten"))
        if leaf_count != size:
            findings.append(Finding("leaves-missing"))
        return findings

    async def _check_leaves(
        self, latest: StoredCheckpoint, leaves: list[PatientLeaf]
    ) -> list[Finding]:
        """Each of the patient's leaves: its row unchanged and in the signed tree."""
        findings: list[Finding] = []
        size = latest.size
        nodes = _Nodes(self._store)
        sealed = [leaf for leaf in leaves if leaf.event is not None]
        await nodes.load(
            *(lambda n, i=leaf.leaf_index: inclusion_proof(i, size, n) for leaf in sealed)
        )
        for leaf in leaves:
            if leaf.event is None:
                findings.append(Finding("entry-missing", leaf.leaf_index))
                continue
            current = _current_hash(leaf)
            if current != leaf.stored_hash:
                findings.append(Finding("entry-altered", leaf.leaf_index, leaf.event.id))
                continue
            try:
                path = inclusion_proof(leaf.leaf_index, size, nodes)
                verify_inclusion(leaf.leaf_index, size, current, path, latest.root_hash)
            except ProofError:
                findings.append(Finding("not-in-tree", leaf.leaf_index, leaf.event.id))
        return findings


def _current_hash(leaf: PatientLeaf) -> bytes:
    """The hash of the event row as it is now; an erased event's contents are gone,
    so its stored leaf hash stands in."""
    assert leaf.event is not None
    return leaf.stored_hash if leaf.event.erased else event_leaf_hash(leaf.event)
