-- Append-only, hash-chained audit log. One chain per patient; events with no
-- patient (e.g. a login attempt for an unknown email) chain under the nil UUID.
CREATE TABLE audit_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id uuid,
    chain_key uuid NOT NULL,
    sequence bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    action text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    actor_type text NOT NULL,
    actor_id text,
    resource_type text,
    resource_ids text[] NOT NULL DEFAULT '{}',
    purpose text NOT NULL,
    reason text,
    client_address text,
    user_agent text,
    request_id text,
    previous_hash bytea NOT NULL,
    hash bytea NOT NULL,
    UNIQUE (chain_key, sequence)
);

CREATE INDEX audit_event_patient_idx ON audit_event (patient_id, id DESC);

-- The head of each chain, locked while an event is appended so that concurrent
-- appends for one patient line up instead of forking the chain.
CREATE TABLE audit_chain_head (
    chain_key uuid PRIMARY KEY,
    last_sequence bigint NOT NULL,
    last_hash bytea NOT NULL
);

CREATE FUNCTION audit_event_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();

GRANT SELECT, INSERT ON audit_event TO phr_app;
GRANT SELECT, INSERT, UPDATE ON audit_chain_head TO phr_app;
