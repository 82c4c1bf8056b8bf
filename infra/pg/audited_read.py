"""A read and the audit row that records it, in one statement: one round trip and
one transaction (a statement outside BEGIN commits on its own, before the rows
come back), with `synchronous_commit` as configured. The statement also says
whether the patient's account still exists, so a token's holder needs no
separate look-up per request.

    WITH found AS MATERIALIZED (<the read>),
         logged AS (INSERT INTO audit_event ... FROM found ... WHERE account exists)
    SELECT <whether the event was written: the account exists>, found.* ...

The audit row's fields come from the domain: the event to write when rows were
found and the one to write when none were (a refusal, for a single record)."""

from __future__ import annotations

import functools
from datetime import datetime
from uuid import UUID

from domain.audit.events import AuditEvent

_FIELDS = 18


# Built once per shape (the timeline has a few dozen), not per request.
@functools.lru_cache(maxsize=256)
def audited_statement(
    select_sql: str, first: int, *, single: bool, order_by: str = "", listed: str = "true"
) -> str:
    """Wraps `select_sql` (which uses $1..$first-1, $1 being the patient id) with the
    account check and the audit insert; the audit fields are $first.. onwards
    (see `audit_args`). `single`: the read names one resource (its type comes from
    the row); otherwise the event lists the ids of the rows found (those matching
    the SQL condition `listed`), in `order_by` order, at most as many as the last
    audit parameter says (a page reads one row more than it shows, to know whether
    a next page exists: the row not shown is not listed as read)."""
    a = [f"${first + i}" for i in range(_FIELDS)]
    # The account check is the insert's condition: the event is written exactly
    # when the account (or the session) is live, so whether it was written is
    # the answer, and the check runs once.
    account_live = f"""CASE WHEN {a[16]}::uuid IS NULL
                THEN EXISTS (SELECT 1 FROM patient WHERE id = $1)
                ELSE EXISTS (SELECT 1 FROM refresh_token_family
                             WHERE id = {a[16]}::uuid AND patient_id = $1
                               AND revoked_at IS NULL)
            END"""
    if single:
        # At most one row: no aggregate, the row itself says whether it was found
        # (and its type). {a[17]} (how many ids to list) is unused but typed, so
        # every shape takes the same parameters.
        found = "found.id IS NOT NULL"
        resource_type = f"CASE WHEN {found} THEN coalesce({a[7]}::text, found.resource_type) ELSE {a[8]}::text END"
        source = f"(SELECT {a[17]}::int AS listed_max) AS one LEFT JOIN found ON true"
        ids = f"{a[15]}::text[]"
    else:
        aggregate_order = f" ORDER BY {order_by}" if order_by else ""
        found = "hit.n > 0"
        resource_type = f"CASE WHEN {found} THEN {a[7]}::text ELSE {a[8]}::text END"
        source = f"""(
                SELECT count(*) AS n,
                       (array_agg(id::text{aggregate_order}) FILTER (WHERE {listed}))
                           [1:coalesce({a[17]}::int, 2147483647)] AS ids
                FROM found
            ) AS hit"""
        ids = f"coalesce(hit.ids, {a[15]}::text[])"
    outer_order = (
        "ORDER BY " + ", ".join(f"found.{part.strip()}" for part in order_by.split(","))
        if order_by
        else ""
    )
    return f"""
        WITH found AS MATERIALIZED ({select_sql}),
        logged AS (
            INSERT INTO audit_event (
                patient_id, recorded_at, action, outcome, actor_type, actor_id, resource_type,
                resource_ids, purpose, reason, client_address, user_agent, request_id)
            SELECT {a[0]}::uuid, {a[1]}::timestamptz, {a[2]}::text,
                   CASE WHEN {found} THEN {a[3]}::text ELSE {a[4]}::text END,
                   {a[5]}::text, {a[6]}::text, {resource_type}, {ids}, {a[9]}::text,
                   CASE WHEN {found} THEN {a[10]}::text ELSE {a[11]}::text END,
                   {a[12]}::text, {a[13]}::text, {a[14]}::text
            FROM {source}
            WHERE {account_live}
            RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM logged) AS account_active, found.*
        FROM (SELECT 1) AS one LEFT JOIN found ON true
        {outer_order}
    """


def audit_args(
    found: AuditEvent,
    missing: AuditEvent,
    now: datetime,
    session_id: UUID | None = None,
    *,
    listed_max: int | None = None,
) -> list[object]:
    """The audit parameters: `found` is written when the read found rows,
    `missing` (outcome, reason, resource type) when it found none; then the
    session whose liveness the statement checks (None: the account's) and how
    many of the ids found the event lists (None: all)."""
    return [
        found.patient_id,
        now,
        found.action,
        found.outcome,
        missing.outcome,
        found.actor_type,
        found.actor_id,
        found.resource_type,
        missing.resource_type,
        found.purpose,
        found.reason,
        missing.reason,
        found.context.client_address,
        found.context.user_agent,
        found.context.request_id,
        list(found.resource_ids),
        session_id,
        listed_max,
    ]
