-- The audit log becomes a transparency log. Events are inserted with no lock
-- (the per-patient hash chain and its head row go); each row keeps the id of the
-- transaction that wrote it, so the sequencer seals only rows whose transaction
-- can no longer be in flight. Sealed events are leaves of one Merkle tree for the
-- whole service (RFC 9162 hashing), stored as its perfect subtrees, with a signed
-- checkpoint per sealed batch.
ALTER TABLE audit_event
    ALTER COLUMN chain_key DROP NOT NULL,
    ALTER COLUMN sequence DROP NOT NULL,
    ALTER COLUMN previous_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- Random bytes inside the leaf: a sibling hash in someone else's proof cannot
    -- be matched against guessed event contents.
    ADD COLUMN salt bytea NOT NULL DEFAULT uuid_send(gen_random_uuid()),
    ADD COLUMN erased_at timestamptz;
ALTER TABLE audit_event DROP CONSTRAINT audit_event_chain_key_sequence_key;
CREATE INDEX audit_event_xid_idx ON audit_event (xid, id);
DROP TABLE audit_chain_head;

CREATE TABLE audit_leaf (
    leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
    event_id bigint NOT NULL UNIQUE,
    patient_id uuid,
    leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX audit_leaf_patient_idx ON audit_leaf (patient_id, leaf_index);

-- Perfect subtrees above the leaves: node (level, node_index) covers leaves
-- [node_index * 2^level, (node_index + 1) * 2^level). Level 0 is audit_leaf.
CREATE TABLE audit_tree_node (
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    node_index bigint NOT NULL CHECK (node_index >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, node_index)
);

CREATE TABLE audit_checkpoint (
    tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
    note text NOT NULL,
    signed_at timestamptz NOT NULL
);

-- The sequencer's position: the tree size and the last (xid, id) sealed.
CREATE TABLE audit_sequencer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tree_size bigint NOT NULL,
    last_xid xid8 NOT NULL,
    last_event_id bigint NOT NULL
);
INSERT INTO audit_sequencer (tree_size, last_xid, last_event_id) VALUES (0, '0', 0);

-- Nothing the application does may change the past. Account erasure blanks the
-- personal fields (address, user agent, request id) of an erased patient's events through audit_erase_patient,
-- which runs as the owner with phr.audit_erasure set; the owner itself is refused
-- any other change. The leaf hashes stay, so the tree and its proofs stay valid.
CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_event'
       AND current_setting('phr.audit_erasure', true) = 'on'
       AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
       AND (NEW.id, NEW.recorded_at, NEW.action, NEW.outcome, NEW.actor_type, NEW.actor_id, NEW.patient_id,
            NEW.resource_type, NEW.resource_ids, NEW.purpose, NEW.reason, NEW.xid, NEW.salt)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.recorded_at, OLD.action, OLD.outcome, OLD.actor_type, OLD.actor_id, OLD.patient_id,
            OLD.resource_type, OLD.resource_ids, OLD.purpose, OLD.reason, OLD.xid, OLD.salt)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_erase_patient(target uuid) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public
SET phr.audit_erasure = 'on'
AS $$
    WITH erased AS (
        UPDATE public.audit_event
        SET client_address = NULL, user_agent = NULL, request_id = NULL, erased_at = now()
        WHERE patient_id = target AND erased_at IS NULL
          -- only once the account is gone: a live patient's history is never blanked
          AND NOT EXISTS (SELECT 1 FROM public.patient WHERE id = target)
        RETURNING 1
    )
    SELECT count(*) FROM erased
$$;
REVOKE ALL ON FUNCTION audit_erase_patient(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_erase_patient(uuid) TO phr_app;

CREATE TRIGGER audit_leaf_append_only BEFORE UPDATE OR DELETE ON audit_leaf
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_leaf_no_truncate BEFORE TRUNCATE ON audit_leaf
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_tree_node_append_only BEFORE UPDATE OR DELETE ON audit_tree_node
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_tree_node_no_truncate BEFORE TRUNCATE ON audit_tree_node
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();

GRANT SELECT, INSERT ON audit_leaf, audit_tree_node, audit_checkpoint TO phr_app;
GRANT SELECT, UPDATE ON audit_sequencer TO phr_app;
