"""The audit transparency log in PostgreSQL: the sequencer that seals committed
events into the Merkle tree and signs a checkpoint per batch, and the reads that
proofs are made from.

Events commit out of id order (a transaction that took id 10 may commit after
the one that took id 11). Each row stores the id of the transaction that wrote
it; a row whose xid is below the oldest transaction still running
(`pg_snapshot_xmin`) is committed for good, and every row committed later will
have an xid at or above that horizon. So the sequencer seals in (xid, id) order
up to the horizon and never has to come back for a row it passed."""

from __future__ import annotations

import asyncio
import logging

from domain.access import Permit
from domain.audit.checkpoints import Checkpoint, sign_checkpoint
from domain.audit.events import RecordedAuditEvent
from domain.audit.leaves import PatientLeaf, StoredCheckpoint, event_leaf_hash
from domain.audit.merkle import Node, append_leaves, frontier_positions, frontier_root
from domain.audit.ports import NoteSigner
from infra.pg.audit import recorded_event
from infra.pg.database import Database

log = logging.getLogger("phr.audit.sequencer")

_EVENT_COLUMNS = """
    e.id, e.recorded_at, e.action, e.outcome, e.actor_type, e.actor_id, e.patient_id,
    e.resource_type, e.resource_ids, e.purpose, e.reason, e.client_address, e.user_agent,
    e.request_id, e.salt, e.erased_at
"""


# Events hashed into the tree before the sequencer lets other tasks run.
_HASHED_BETWEEN_YIELDS = 128


class SequencerRaced(Exception):
    """Another sequencer moved the tree while this one built its batch."""


class PgTransparencyLog:
    def __init__(self, database: Database, signer: NoteSigner):
        self._database = database
        self._signer = signer

    # --- sealing (the single writer) -------------------------------------------
    _STATE = "SELECT tree_size, last_xid::text AS last_xid, last_event_id FROM audit_sequencer"
    _BATCH = f"""
        SELECT {_EVENT_COLUMNS}, NULL::bigint AS leaf_index, e.xid::text AS xid
        FROM audit_event e
        WHERE (e.xid, e.id) > ($1::text::xid8, $2::bigint)
          AND e.xid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.xid, e.id
        LIMIT $3
    """
    _ADD_LEAVES = """
        INSERT INTO audit_leaf (leaf_index, event_id, patient_id, leaf_hash)
        SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bytea[])
    """
    _ADD_NODES = """
        INSERT INTO audit_tree_node (level, node_index, hash)
        SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
    """
    _ADD_CHECKPOINT = """
        INSERT INTO audit_checkpoint (tree_size, root_hash, note, signed_at)
        VALUES ($1, $2, $3, clock_timestamp())
    """
    _ADVANCE = """
        UPDATE audit_sequencer SET tree_size = $1, last_xid = $2::text::xid8, last_event_id = $3
        WHERE tree_size = $4
        RETURNING true
    """

    async def seal(self, *, batch_size: int = 5000) -> int:
        """Seals every event committed for good, in batches; one signed checkpoint
        per batch. Returns how many events were sealed."""
        sealed = 0
        while True:
            count = await self._seal_batch(batch_size)
            sealed += count
            if count < batch_size:
                return sealed

    async def _seal_batch(self, batch_size: int) -> int:
        async with self._database.transaction() as conn:
            state = await conn.fetchrow(self._STATE)
            rows = await conn.fetch(
                self._BATCH, state["last_xid"], state["last_event_id"], batch_size
            )
            if not rows:
                return 0
            size = state["tree_size"]
            positions = frontier_positions(size)
            known = await self.node_hashes(set(positions))
            frontier = [Node(level, index, known[(level, index)]) for level, index in positions]
            events: list[RecordedAuditEvent] = []
            made: list[Node] = []
            for start in range(0, len(rows), _HASHED_BETWEEN_YIELDS):
                chunk = [
                    recorded_event(row) for row in rows[start : start + _HASHED_BETWEEN_YIELDS]
                ]
                made += append_leaves(
                    frontier, size + len(events), [event_leaf_hash(e) for e in chunk]
                )
                events += chunk
                # The sequencer shares its event loop with requests in `phr serve`:
                # a batch of a few thousand events is tens of milliseconds of
                # hashing, which requests would otherwise wait out (the p99).
                await asyncio.sleep(0)
            leaves = [node for node in made if node.level == 0]
            inner = [node for node in made if node.level > 0]
            await conn.execute(
                self._ADD_LEAVES,
                [node.index for node in leaves],
                [e.id for e in events],
                [e.event.patient_id for e in events],
                [node.hash for node in leaves],
            )
            if inner:
                await conn.execute(
                    self._ADD_NODES,
                    [node.level for node in inner],
                    [node.index for node in inner],
                    [node.hash for node in inner],
                )
            new_size = size + len(events)
            root = frontier_root(frontier)
            note = sign_checkpoint(
                Checkpoint(origin=self._signer.name, size=new_size, root_hash=root), self._signer
            )
            await conn.execute(self._ADD_CHECKPOINT, new_size, root, note)
            last = rows[-1]
            if not await conn.fetchval(self._ADVANCE, new_size, last["xid"], last["id"], size):
                raise SequencerRaced("the audit tree moved while a batch was being sealed")
        log.debug("sealed audit events", extra={"sealed": len(events), "treeSize": new_size})
        return len(events)

    async def thin_checkpoints(self, *, batch: int = 10000) -> int:
        """Drops superseded checkpoints past the last day, keeping each hour's last
        (the rule is the database's: see migration 0019). Returns how many went."""
        thinned = 0
        while True:
            async with self._database.transaction() as conn:
                count = await conn.fetchval("SELECT audit_thin_checkpoints($1)", batch)
            thinned += count
            if count < batch:
                return thinned

    # --- reads for proofs ------------------------------------------------------
    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                "SELECT tree_size, root_hash, note FROM audit_checkpoint "
                "ORDER BY tree_size DESC LIMIT 1"
            )
        return _checkpoint(row)

    async def checkpoint(self, size: int) -> StoredCheckpoint | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                "SELECT tree_size, root_hash, note FROM audit_checkpoint WHERE tree_size = $1", size
            )
        return _checkpoint(row)

    _NODES = """
        SELECT 0::smallint AS level, leaf_index AS node_index, leaf_hash AS hash
        FROM audit_leaf WHERE leaf_index = ANY($1::bigint[])
        UNION ALL
        SELECT n.level, n.node_index, n.hash
        FROM audit_tree_node n
        JOIN unnest($2::smallint[], $3::bigint[]) AS wanted (level, node_index)
          USING (level, node_index)
    """

    async def node_hashes(self, positions: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        leaves = [index for level, index in positions if level == 0]
        inner = [(level, index) for level, index in positions if level > 0]
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._NODES, leaves, [lv for lv, _ in inner], [ix for _, ix in inner]
            )
        return {(row["level"], row["node_index"]): bytes(row["hash"]) for row in rows}

    _PATIENT_LEAVES = f"""
        SELECT l.leaf_index AS sealed_index, l.leaf_hash, {_EVENT_COLUMNS},
               l.leaf_index
        FROM audit_leaf l LEFT JOIN audit_event e ON e.id = l.event_id
        WHERE l.patient_id = $1 AND l.leaf_index < $2 AND l.leaf_index > $3
        ORDER BY l.leaf_index
        LIMIT $4
    """

    async def patient_leaves(
        self, permit: Permit, below_size: int, *, after_index: int, limit: int
    ) -> list[PatientLeaf]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._PATIENT_LEAVES, permit.patient_id, below_size, after_index, limit
            )
        return [
            PatientLeaf(
                leaf_index=row["sealed_index"],
                stored_hash=bytes(row["leaf_hash"]),
                event=recorded_event(row) if row["id"] is not None else None,
            )
            for row in rows
        ]

    async def leaf_count(self, from_index: int, below_size: int) -> int:
        async with self._database.transaction() as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM audit_leaf WHERE leaf_index >= $1 AND leaf_index < $2",
                from_index,
                below_size,
            )


def _checkpoint(row) -> StoredCheckpoint | None:
    if row is None:
        return None
    return StoredCheckpoint(row["tree_size"], bytes(row["root_hash"]), row["note"])
