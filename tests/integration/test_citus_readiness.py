"""Is the schema ready to be distributed by patient_id (Citus) when one
PostgreSQL server is not enough? Checked on the migrated schema and on the SQL
the repositories run (README, "Past one machine").

1. Every table either carries patient_id (distributed by it) or says in its
   comment (migration 0070) how it would be placed: reference, local, or
   distributed by another key, and why.
2. Every statement in infra/ that reads or changes a patient-data table names
   the patient: `patient_id = $n` (or `= ANY($n)`) in its conditions, or
   patient_id among the columns it inserts. The few that cannot (a login knows
   an e-mail, a refresh a token, a hospital its code) are listed below with what
   Citus needs for them; a new one fails here until it is reasoned about.
3. Unique keys and foreign keys of patient-data tables: Citus enforces them only
   when they include the distribution column. Today's gaps are listed (the
   migration that closes them is the first step of distributing); a new one fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = {"hospital", "hospital_secret", "signing_key"}

# file, a piece of the statement -> why it cannot name the patient, and the remedy.
KNOWN_CROSS_PATIENT = {
    ("infra/pg/accounts.py", "FROM patient WHERE lower(email)"): (
        "sign-in knows only the address: a routing table email -> patient_id, "
        "distributed by email (it also carries the unique address constraint)"
    ),
    ("infra/pg/refresh_tokens.py", "WHERE t.token_hash = $1"): (
        "a refresh presents only the token: put the patient id in the token "
        "(routes to the shard) or route through a token-hash table"
    ),
    ("infra/pg/links.py", "l.code_digest = $2"): (
        "a hospital redeems a link code it got from the patient: a routing table "
        "(hospital_id, code_digest) -> patient_id, distributed by hospital_id"
    ),
    ("infra/pg/links.py", "l.patient_ref = $2"): (
        "a hospital pushes for its own MRN: the same routing table keyed by "
        "(hospital_id, patient_ref) -> patient_id"
    ),
    ("infra/pg/consents.py", "FROM consent WHERE id = $1"): (
        "the consent a link relies on, by id: the caller holds the link's "
        "patient_id and can pass it"
    ),
    ("infra/pg/uploads.py", "u.status = 'pending' AND u.expires_at"): (
        "the sweep of expired uploads covers every patient by design: Citus runs "
        "it on every shard in parallel"
    ),
    ("infra/pg/notifications.py", "FROM record WHERE resource_type = 'MedicationRequest'"): (
        "the refill scan walks every patient with an active prescription by design "
        "(keyset by patient_id): a parallel scan of every shard"
    ),
    ("infra/pg/notifications.py", "WHERE status = 'pending' AND due_at <= $1"): (
        "the push dispatcher claims due deliveries of every patient: a queue sweep, run per shard"
    ),
    ("infra/pg/notifications.py", "SET status = 'gone', finished_at = $2, last_error"): (
        "deliveries updated by id after sending: the claimed rows carry "
        "patient_id, which the update can add to route to one shard"
    ),
    ("infra/pg/notifications.py", "SET status = 'delivered'"): (
        "as above: by delivery id; add the claimed row's patient_id"
    ),
    ("infra/pg/notifications.py", "SET due_at = $2, claimed_until = NULL"): (
        "as above: by delivery id; add the claimed row's patient_id"
    ),
    ("infra/pg/notifications.py", "SET status = 'dead'"): (
        "as above: by delivery id; add the claimed row's patient_id"
    ),
    ("infra/pg/notifications.py", "SET status = 'gone', finished_at = $2, claimed_until"): (
        "as above: by delivery id; add the claimed row's patient_id"
    ),
    ("infra/pg/shares.py", "FROM share WHERE token_digest = $1"): (
        "a doctor presents only the link: a routing table token_digest -> "
        "patient_id, or the patient id carried in the link's token"
    ),
    ("infra/pg/shares.py", "UPDATE share_file_ticket SET used_at"): (
        "a file location presents only its one-time ticket, which leads to the share: "
        "like share links, a routing table token_digest -> patient_id (the ticket "
        "table's own patient_id is a known gap below)"
    ),
    ("infra/pg/shares.py", "SET link_sealed = NULL WHERE link_sealed IS NOT NULL"): (
        "the sweep that forgets held links covers every patient by design: per shard"
    ),
    ("infra/pg/notifications.py", "INSERT INTO notification_delivery"): (
        "one notification fanned out to many patients' devices in one statement: "
        "on Citus, one statement per shard's patients"
    ),
    ("infra/pg/notifications.py", "WHERE status = 'dead' ORDER BY finished_at"): (
        "the operator's list of dead deliveries spans patients by design"
    ),
    # The transparency log is one tree for the whole service (migration 0073).
    ("infra/pg/audit_log.py", "e.xid < pg_snapshot_xmin(pg_current_snapshot())"): (
        "the sequencer seals every patient's events in (xid, id) order below the "
        "oldest running transaction: on Citus each worker has its own xids and "
        "snapshots, so this watermark means nothing across shards. Needs a "
        "cluster-wide order stamped at insert (a coordinator sequence, or "
        "Citus's distributed transaction ids) and a watermark per shard"
    ),
    ("infra/pg/audit_log.py", "FROM audit_leaf WHERE leaf_index = ANY($1::bigint[])"): (
        "a proof's sibling leaves belong to other patients by construction: keep "
        "audit_leaf's hashes on the coordinator (a local table; patient_id only "
        "indexes a patient's leaves), or read them from every shard"
    ),
    (
        "infra/pg/audit_log.py",
        "SELECT count(*) FROM audit_leaf WHERE leaf_index >= $1 AND leaf_index < $2",
    ): "leaves of the service-wide tree in a range: as above, a coordinator-local table",
}

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
_TABLES = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_][a-z_0-9]*)", re.I)
_NAMES_PATIENT = re.compile(r"\b(?:\w+\.)?patient_id\s*=\s*(?:\$\d+|ANY\s*\(\s*\$\d+)", re.I)
_INSERT = re.compile(r"INSERT INTO (\w+)(?: AS \w+)? \(([^)]*)\)", re.I)


async def table_roles(conn: asyncpg.Connection) -> dict[str, tuple[bool, str | None]]:
    rows = await conn.fetch(
        """
        SELECT c.relname AS name,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'patient_id' AND NOT a.attisdropped) AS has_patient,
               obj_description(c.oid, 'pg_class') AS comment
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        """
    )
    return {r["name"]: (r["has_patient"], r["comment"]) for r in rows}


def patient_tables(roles: dict[str, tuple[bool, str | None]]) -> set[str]:
    return {name for name, (has_patient, _) in roles.items() if has_patient} | {"patient"}


# Tables that hold patient data but do not carry patient_id yet (a gap against
# the rule), with the remedy. A new one fails; a fixed one must leave the list.
KNOWN_TABLE_GAPS = {
    "share_access": "who opened a patient's share: add patient_id (the share's)",
    "share_file_ticket": "one-time file tickets of a patient's share: add patient_id",
}


async def test_every_table_is_distributed_by_patient_or_says_why_not(superuser_conn):
    roles = await table_roles(superuser_conn)
    unplaced = [
        name
        for name, (has_patient, comment) in roles.items()
        if not has_patient
        and not (comment or "").startswith("citus: ")
        and name not in KNOWN_TABLE_GAPS
    ]
    fixed = [name for name in KNOWN_TABLE_GAPS if name in roles and roles[name][0]]
    assert not fixed, f"these carry patient_id now; remove them from KNOWN_TABLE_GAPS: {fixed}"
    assert not unplaced, (
        f"tables without patient_id and without a 'citus: ...' comment: {unplaced}. "
        "Add patient_id if they hold patient data; otherwise COMMENT ON TABLE saying "
        "'citus: reference|local|distributed by <column> (why)'"
    )
    for name in REFERENCE:
        assert roles[name][1].startswith("citus: reference"), name
    assert roles["patient"][1].startswith("citus: distributed by id")


def sql_statements() -> list[tuple[str, int, str]]:
    """Every SQL literal (f-strings with their holes as {}) under infra/."""
    found = []
    for path in sorted((ROOT / "infra").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                text = "".join(
                    v.value if isinstance(v, ast.Constant) else "{}" for v in node.values
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if _SQL_START.match(text):
                found.append((relative, node.lineno, " ".join(text.split())))
    return found


_READS = re.compile(r"\b(?:FROM|JOIN|UPDATE)\s+([a-z_][a-z_0-9]*)", re.I)


def names_the_patient(sql: str, distributed: set[str]) -> bool:
    """Rows inserted carry patient_id; rows read or changed are picked by it."""
    for table, columns in _INSERT.findall(sql):
        if columns.strip() == "{}":
            continue  # a column list from a constant: not readable here
        if table.lower() in distributed and not (
            "patient_id" in columns or (table == "patient" and re.search(r"\bid\b", columns))
        ):
            return False
    # What the statement reads or changes, beyond its ON CONFLICT clause. In a
    # data-modifying CTE they end at the CTE's closing parenthesis, not at the end
    # of the statement: what the statements after it read is still read.
    body = re.sub(r"ON CONFLICT \([^()]*\) DO NOTHING", "", sql, flags=re.I)
    body = re.sub(r"RETURNING [^()]*", "", body, flags=re.I)
    body = re.sub(r"ON CONFLICT.*", "", body, flags=re.I)
    read = {t.lower() for t in _READS.findall(body)} & distributed
    if not read:
        return True
    if _NAMES_PATIENT.search(body):
        return True
    # The patient table's id is the distribution key; joins to the others go by
    # patient_id (co-located).
    return "patient" in read and (
        re.search(r"\b(?:\w+\.)?id\s*=\s*(?:\$\d+|ANY\s*\(\s*\$\d+)", body) is not None
    )


async def test_every_query_on_patient_data_names_the_patient(superuser_conn):
    distributed = patient_tables(await table_roles(superuser_conn))
    statements = sql_statements()
    assert len(statements) > 50, "the scan found too few statements to be looking right"
    offenders = []
    for path, line, sql in statements:
        tables = {t.lower() for t in _TABLES.findall(sql)} & distributed
        if tables and not names_the_patient(sql, distributed):
            offenders.append((path, line, sql))
    known = {
        key
        for key in KNOWN_CROSS_PATIENT
        for path, _, sql in offenders
        if path == key[0] and key[1] in sql
    }
    unexplained = [
        f"{path}:{line}: {sql[:200]}"
        for path, line, sql in offenders
        if not any(path == k[0] and k[1] in sql for k in KNOWN_CROSS_PATIENT)
    ]
    assert not unexplained, (
        "queries on patient data that do not filter by patient_id:\n" + "\n".join(unexplained)
    )
    assert known == set(KNOWN_CROSS_PATIENT), (
        f"listed as cross-patient but no longer found (remove them): "
        f"{set(KNOWN_CROSS_PATIENT) - known}"
    )


# Unique keys and foreign keys of patient tables that lack patient_id: what the
# first migration of a distribution must change (e.g. record's key becomes
# (patient_id, id) and record_version's reference to it (patient_id, record_id)).
KNOWN_KEY_GAPS = {
    "unique audit_event (id)",
    "unique consent (id)",
    "unique hospital_link (hospital_id, code_digest) WHERE (linked_at IS NULL)",
    "unique hospital_link (id)",
    "unique patient (lower(email))",
    "unique record (id)",
    "unique record_version (record_id, version)",
    "unique refresh_token (token_hash)",
    "unique refresh_token_family (id)",
    "unique upload (id)",
    "unique upload (key)",
    "foreign key hospital_link (consent_id) -> consent",
    "foreign key record_version (record_id) -> record",
    "foreign key refresh_token (family_id) -> refresh_token_family",
    "foreign key upload (record_id) -> record",
    "unique notification (id)",
    "unique notification_delivery (id)",
    "unique notification_delivery (notification_id, device_id)",
    "unique push_device (id)",
    "unique share (id)",
    "unique share (token_digest)",
    "foreign key share (consent_id) -> consent",
    # The service-wide tree's leaves (0073): unique in the one tree, not per
    # patient; kept on the coordinator they need no change.
    "unique audit_leaf (event_id)",
    "unique audit_leaf (leaf_index)",
    # Imaging: the study's record and the import's upload and the instance's blob
    # key become (patient_id, ...) like record_version's reference to record.
    "foreign key imaging_study (record_id) -> record",
    "unique imaging_import (upload_id)",
    "unique imaging_instance (key)",
}


async def key_gaps(conn: asyncpg.Connection, distributed: set[str]) -> set[str]:
    gaps = set()
    uniques = await conn.fetch(
        """
        SELECT t.relname AS table_name, pg_get_indexdef(ix.indexrelid) AS definition,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid
                       AND a.attname = 'patient_id' AND a.attnum = ANY(ix.indkey)) AS has_patient
        FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND ix.indisunique
        """
    )
    for row in uniques:
        name = row["table_name"]
        if name in distributed and not row["has_patient"] and name != "patient":
            columns = re.search(r"USING \w+ \((.*)\)", row["definition"]).group(1)
            gaps.add(f"unique {name} ({columns})")
        elif name == "patient" and "(id)" not in row["definition"]:
            columns = re.search(r"USING \w+ \((.*)\)", row["definition"]).group(1)
            gaps.add(f"unique patient ({columns})")
    foreign = await conn.fetch(
        """
        SELECT c.conrelid::regclass::text AS source, c.confrelid::regclass::text AS target,
               pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c WHERE c.contype = 'f'
        """
    )
    for row in foreign:
        source, target = row["source"], row["target"]
        if source not in distributed or target in REFERENCE:
            continue
        columns = re.search(r"FOREIGN KEY \(([^)]*)\)", row["definition"]).group(1)
        if "patient_id" not in columns:
            gaps.add(f"foreign key {source} ({columns}) -> {target}")
    return gaps


async def test_keys_of_patient_tables_include_patient_id_or_are_known_gaps(superuser_conn):
    distributed = patient_tables(await table_roles(superuser_conn))
    gaps = await key_gaps(superuser_conn, distributed)
    new = gaps - KNOWN_KEY_GAPS
    assert not new, (
        f"new unique or foreign keys on patient tables without patient_id: {sorted(new)}; "
        "include patient_id (Citus enforces keys only with the distribution column)"
    )
    closed = KNOWN_KEY_GAPS - gaps
    assert not closed, f"closed gaps, remove them from KNOWN_KEY_GAPS: {sorted(closed)}"
